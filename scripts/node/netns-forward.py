#!/usr/bin/env python3
"""Forward TCP from the host's 127.0.0.1:PORT to HOST:PORT inside a network namespace.

Usage: netns-forward.py PORT /run/netns/NAME HOST

The node's apiserver lives in its own network namespace, which has no link to the host at all.
This lets `kubectl` and the tests on the host use the same KUBECONFIG (server
https://127.0.0.1:PORT) as the processes inside the namespace, where 127.0.0.1:PORT is the
apiserver itself. Only loopback is used on the host side.
"""

import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000


def pump(src, dst):
    """Copy bytes one way until EOF or error, then half-close the other side."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(conn, host, port):
    """Connect one accepted host connection to HOST:PORT in the namespace."""
    try:
        up = socket.create_connection((host, port), timeout=10)
        up.settimeout(None)
    except OSError:
        conn.close()
        return
    t = threading.Thread(target=pump, args=(up, conn), daemon=True)
    t.start()
    pump(conn, up)
    t.join()
    conn.close()
    up.close()


def main():
    port, netns, host = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(128)
    # From here on every new socket (and thread) of this process is in the node's namespace;
    # the listening socket stays in the host's, where it was made.
    fd = os.open(netns, os.O_RDONLY)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        sys.exit(f"netns-forward: setns {netns}: {os.strerror(err)}")
    os.close(fd)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, host, port), daemon=True).start()


if __name__ == "__main__":
    main()
