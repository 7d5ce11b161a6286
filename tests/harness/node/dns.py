#!/usr/bin/env python3
"""Service names for the e2e tests' pods on a node without cluster DNS.

    dns.py ADDRESS HOSTS_FILE

The one-node cluster has no cluster DNS: its pods' resolv.conf names the node's address, where
nothing answers. This UDP server answers there, the way cluster DNS answers a pod: an A query
for a Service's name (`postgres`, `postgres.NS`, `postgres.NS.svc`,
`postgres.NS.svc.cluster.local`) gets the Service's ClusterIP. HOSTS_FILE has one
`NAMESPACE NAME IP` line per Service the tests created; it is read on every query. A bare name
is looked up in the namespace registered last (the tests run one at a time). Anything else is
NXDOMAIN at once; known names have no AAAA records.
"""
import socket
import struct
import sys


def load(path):
    entries = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3:
                    entries.append(tuple(p.lower() for p in parts))
    except OSError:
        pass
    return entries


def lookup(entries, name):
    labels = name.lower().rstrip(".").split(".")
    if len(labels) > 1:
        rest = ".".join(labels[2:])
        if rest not in ("", "svc", "svc.cluster.local"):
            return None
        for ns, svc, ip in reversed(entries):
            if svc == labels[0] and ns == labels[1]:
                return ip
        return None
    for ns, svc, ip in reversed(entries):
        if svc == labels[0]:
            return ip
    return None


def parse_question(msg):
    labels, i = [], 12
    while i < len(msg) and msg[i] != 0:
        n = msg[i]
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    qtype, qclass = struct.unpack("!HH", msg[i + 1:i + 5])
    return ".".join(labels), qtype, qclass, msg[12:i + 5]


def answer(msg, hosts_file):
    (qid, flags, qd) = struct.unpack("!HHH", msg[:6])
    if qd != 1:
        return struct.pack("!HHHHHH", qid, 0x8000 | 0x0100 | 4, 0, 0, 0, 0)
    name, qtype, qclass, question = parse_question(msg)
    ip = lookup(load(hosts_file), name)
    rd = flags & 0x0100
    if ip is None:
        return struct.pack("!HHHHHH", qid, 0x8480 | rd | 3, 1, 0, 0, 0) + question
    if qtype != 1 or qclass != 1:
        return struct.pack("!HHHHHH", qid, 0x8480 | rd, 1, 0, 0, 0) + question
    rr = struct.pack("!HHHIH", 0xC00C, 1, 1, 5, 4) + socket.inet_aton(ip)
    return struct.pack("!HHHHHH", qid, 0x8480 | rd, 1, 1, 0, 0) + question + rr


def main():
    address, hosts_file = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, 53))
    print(f"dns: answering on {address}:53 from {hosts_file}", flush=True)
    while True:
        msg, peer = s.recvfrom(2048)
        try:
            s.sendto(answer(msg, hosts_file), peer)
        except (struct.error, IndexError, ValueError) as e:
            print(f"dns: bad query from {peer}: {e}", flush=True)


if __name__ == "__main__":
    main()
