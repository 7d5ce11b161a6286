#!/usr/bin/env python3
"""`make bench` on the one-node cluster: what dbinit costs where users run it.

  1. pod start: create -> Ready of the example app's pod (deploy/app-deployment.yaml's pod
     template) with its `dbinit wait` init container, against the same pod whose init
     container does nothing (`/dbinit --version`, same image), interleaved, on an up-to-date
     database; the overhead is the difference of the medians (and the median of pairwise
     differences). Also the init container's own "ready after N ms".
  2. the migration Job (deploy/job.yaml, `dbinit-job`, the chart's hook Job's container):
     create -> Complete on an up-to-date database, interleaved with the same Job whose
     container does nothing (the floor); the first, migrating run is reported apart.
  3. the image's size (target/image/dbinit.oci.tar).

Runs on the cluster of $DBINIT_NODE_DIR/env (make cluster-up, make image-load first; the
Makefile does). PostgreSQL 15 and Redis run inside the node's network namespace at the node
address and are reached through selector-less Services, as a managed database would be.
Writes target/bench/node.{md,json}.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NS = "dbinit-bench"
PASSWORD = "bench-node-pw"
PG_PORT = 15433
REDIS_PORT = 16380


def node_env():
    """The cluster's environment file, as a dict."""
    path = Path(os.environ.get("DBINIT_NODE_DIR", "/tmp/dbinit-node")) / "env"
    if not path.exists():
        sys.exit(f"bench-node: no cluster ({path} is missing): run make cluster-up")
    env = {}
    for line in path.read_text().splitlines():
        m = re.match(r"export (\w+)=(.*)$", line)
        if m:
            env[m.group(1)] = m.group(2)
    return env


class Node:
    """kubectl and the node's network namespace."""

    def __init__(self, env):
        self.env = env
        self.dir = Path(env["DBINIT_NODE_DIR"])
        self.ip = env["DBINIT_NODE_IP"]
        self.nsenter = ["nsenter", f"--net=/run/netns/{env['DBINIT_NETNS']}"]
        self.kenv = dict(os.environ, KUBECONFIG=env["KUBECONFIG"])

    def kc(self, *args, stdin=None, check=True):
        r = subprocess.run(["kubectl", "-n", NS, *args], input=stdin, capture_output=True, text=True,
                           env=self.kenv, timeout=180)
        if check and r.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def as_json(self, manifest):
        """A manifest file as the JSON object kubectl reads from it."""
        out = subprocess.run(["kubectl", "create", "--dry-run=client", "-o", "json", "-f", str(manifest)],
                             capture_output=True, text=True, env=self.kenv, check=True).stdout
        obj = json.loads(out)
        obj["metadata"].pop("namespace", None)
        return obj


class Servers:
    """PostgreSQL and Redis inside the node's network namespace, below the node's state dir."""

    def __init__(self, node):
        self.node = node
        self.dir = node.dir / "bench-servers"
        self.pgbin = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))[-1]
        self.redis = None

    def pg(self, *cmd):
        return subprocess.run(self.node.nsenter + ["runuser", "-u", "postgres", "--", *cmd], check=True,
                              capture_output=True, text=True)

    def start(self):
        if self.dir.exists():
            self.stop()
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        shutil.chown(self.dir, "postgres")
        pw = self.dir / "pw"
        pw.write_text(PASSWORD)
        shutil.chown(pw, "postgres")
        self.pg(str(self.pgbin / "initdb"), "-D", str(self.dir / "pg"), "-U", "postgres", "--auth-local=trust",
                "--auth-host=scram-sha-256", f"--pwfile={pw}", "-E", "UTF8", "--locale=C", "-N")
        with open(self.dir / "pg" / "pg_hba.conf", "a") as f:
            f.write("host all all 0.0.0.0/0 scram-sha-256\n")
        opts = (f"-p {PG_PORT} -k {self.dir} -c listen_addresses={self.node.ip} -c max_connections=200")
        self.pg(str(self.pgbin / "pg_ctl"), "-D", str(self.dir / "pg"), "-l", str(self.dir / "pg.log"), "-w",
                "-o", opts, "start")
        self.pg(str(self.pgbin / "psql"), "-h", str(self.dir), "-p", str(PG_PORT), "-U", "postgres", "-qc",
                f"CREATE ROLE app LOGIN CREATEDB PASSWORD '{PASSWORD}'")
        log = open(self.dir / "redis.log", "w")
        self.redis = subprocess.Popen(self.node.nsenter + [
            "redis-server", "--bind", self.node.ip, "--port", str(REDIS_PORT), "--save", "", "--appendonly", "no",
            "--protected-mode", "no",
            "--dir", str(self.dir)], stdout=log, stderr=log, stdin=subprocess.DEVNULL)

    def stop(self):
        if self.redis:
            self.redis.terminate()
            self.redis.wait(timeout=10)
            self.redis = None
        if (self.dir / "pg" / "postmaster.pid").exists():
            subprocess.run(self.node.nsenter + ["runuser", "-u", "postgres", "--", str(self.pgbin / "pg_ctl"),
                                                "-D", str(self.dir / "pg"), "-m", "immediate", "stop"],
                           capture_output=True)


def services(node):
    """Selector-less Services + Endpoints for the servers; returns (pg ClusterIP, redis ClusterIP)."""
    items = []
    for name, port in (("postgres", PG_PORT), ("redis", REDIS_PORT)):
        items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                      "spec": {"ports": [{"name": name, "port": port, "targetPort": port}]}})
        items.append({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name},
                      "subsets": [{"addresses": [{"ip": node.ip}], "ports": [{"name": name, "port": port}]}]})
    node.kc("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    ip = lambda n: node.kc("get", "svc", n, "-o", "jsonpath={.spec.clusterIP}")
    return ip("postgres"), ip("redis")


def set_env(container, values):
    for e in container.get("env", []):
        if e["name"] in values:
            e["value"] = values[e["name"]]


def job_run(node, job, name, noop=False):
    """Create the Job (with noop, its container only runs `/dbinit --version`); seconds until
    condition Complete (client side)."""
    job = json.loads(json.dumps(job))
    job["metadata"].pop("generateName", None)
    job["metadata"]["name"] = name
    if noop:
        job["spec"]["template"]["spec"]["containers"][0]["command"] = ["/dbinit", "--version"]
    t = time.monotonic()
    node.kc("create", "-f", "-", stdin=json.dumps(job))
    try:
        node.kc("wait", "--for=condition=complete", f"job/{name}", "--timeout=120s")
    except RuntimeError as e:
        why = node.kc("get", "pods", "-l", f"job-name={name}", "-o",
                      "jsonpath={.items[*].status.containerStatuses[*].state.terminated.message}", check=False)
        raise RuntimeError(f"Job {name} did not complete: {why or e}") from None
    return time.monotonic() - t


def pod_start(node, template, name, with_wait):
    """Create the pod; (seconds until Ready, the init container's own ms or None)."""
    spec = json.loads(json.dumps(template["spec"]))
    init = spec["initContainers"][0]
    if not with_wait:
        init["command"] = ["/dbinit", "--version"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "podstart"}},
           "spec": spec}
    t = time.monotonic()
    node.kc("create", "-f", "-", stdin=json.dumps(pod))
    node.kc("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=60s")
    took = time.monotonic() - t
    own = None
    if with_wait:
        msg = node.kc("get", "pod", name, "-o",
                      "jsonpath={.status.initContainerStatuses[0].state.terminated.message}", check=False)
        m = re.search(r"(?:in |after |\()(\d+) ms", msg)
        own = int(m.group(1)) if m else None
        if own is None:
            print(f"bench-node: no time in the termination message: {msg!r}", file=sys.stderr)
    node.kc("delete", "pod", name, "--wait=true", "--grace-period=1")
    return took, own


def ms(v):
    return f"{v * 1000:.0f} ms"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=20, help="pod starts per variant (>= 20)")
    ap.add_argument("--jobs", type=int, default=10, help="no-op Job runs")
    a = ap.parse_args()
    node = Node(node_env())
    servers = Servers(node)
    node.kc("delete", "namespace", NS, "--ignore-not-found", "--wait=true", check=False)
    subprocess.run(["kubectl", "create", "namespace", NS], env=node.kenv, check=True, capture_output=True)
    try:
        servers.start()
        for _ in range(60):
            if node.kc("get", "serviceaccount", "default", check=False):
                break
            time.sleep(0.5)
        node.kc("apply", "-f", str(ROOT / "deploy/rbac.yaml"))
        node.kc("create", "secret", "generic", "agentic-deals-db", f"--from-literal=password={PASSWORD}")
        pg_ip, redis_ip = services(node)
        hosts = {"POSTGRES_HOST": pg_ip, "POSTGRES_PORT": str(PG_PORT), "REDIS_HOST": redis_ip,
                 "REDIS_PORT": str(REDIS_PORT)}
        job = node.as_json(ROOT / "deploy/job.yaml")
        set_env(job["spec"]["template"]["spec"]["containers"][0], hosts)
        deploy = node.as_json(ROOT / "deploy/app-deployment.yaml")
        template = deploy["spec"]["template"]
        set_env(template["spec"]["initContainers"][0], hosts)

        cold = job_run(node, job, "migrate-cold")
        print(f"Job, migrating (7 migrations + 2 seeds): create -> Complete {ms(cold)}", file=sys.stderr)
        jobs, floor_jobs = [], []
        for i in range(a.jobs):
            floor_jobs.append(job_run(node, job, f"do-nothing-{i}", noop=True))
            jobs.append(job_run(node, job, f"migrate-{i}"))
            print(f"Job {i}: dbinit-job (up to date) {ms(jobs[-1])}, do-nothing Job {ms(floor_jobs[-1])}",
                  file=sys.stderr)

        pod_start(node, template, "warmup-0", False)
        pod_start(node, template, "warmup-1", True)
        bare, wait, own, diffs = [], [], [], []
        if a.pods == 0:
            bare, wait, diffs = [0.0], [0.0], [0.0]
        for i in range(a.pods):
            b, _ = pod_start(node, template, f"noop-{i}", False)
            w, o = pod_start(node, template, f"wait-{i}", True)
            bare.append(b)
            wait.append(w)
            diffs.append(w - b)
            if o is not None:
                own.append(o)
            print(f"pod {i}: do-nothing init {ms(b)}, dbinit wait {ms(w)} (own {o} ms)", file=sys.stderr)
    finally:
        node.kc("delete", "namespace", NS, "--wait=false", check=False)
        servers.stop()

    size = subprocess.run([sys.executable, str(ROOT / "scripts/image/check.py"), "--size",
                           str(ROOT / os.environ.get("IMAGE_ARCHIVE", "target/image/dbinit.oci.tar"))],
                          capture_output=True, text=True).stdout.strip()
    med = statistics.median
    res = {
        "pod_starts_per_variant": a.pods,
        "pod_ready_do_nothing_init_median_s": med(bare),
        "pod_ready_dbinit_wait_median_s": med(wait),
        "dbinit_wait_overhead_median_of_pairs_s": med(diffs),
        "dbinit_wait_own_work_median_ms": med(own) if own else None,
        "job_migrating_s": cold,
        "job_noop_median_s": med(jobs),
        "job_noop_min_s": min(jobs),
        "job_noop_max_s": max(jobs),
        "job_do_nothing_median_s": med(floor_jobs),
        "image": size,
    }
    md = (
        f"One-node cluster (Kubernetes 1.20.2, containerd 1.6, this machine); {a.pods} interleaved pod starts "
        f"per variant, {a.jobs} no-op Jobs; client-side times (kubectl create -> wait).\n\n"
        "| measure | median | goal |\n|---|---|---|\n"
        f"| pod create -> Ready, do-nothing init container (same image) | {ms(med(bare))} | |\n"
        f"| pod create -> Ready, `dbinit wait` init container | {ms(med(wait))} | |\n"
        f"| overhead of `dbinit wait` (median of pairwise differences) | {ms(med(diffs))} | <= 50 ms |\n"
        f"| `dbinit wait`'s own work (its termination message) | {res['dbinit_wait_own_work_median_ms']} ms | |\n"
        f"| migration Job create -> Complete, up-to-date database | {ms(med(jobs))} (min {ms(min(jobs))}, "
        f"max {ms(max(jobs))}) | <= 2 s |\n"
        f"| the same Job doing nothing (`/dbinit --version`, same image) | {ms(med(floor_jobs))} | |\n"
        f"| migration Job create -> Complete, first run (migrates) | {ms(cold)} | |\n"
        f"| image size | {size} | <= 15 MB |\n"
    )
    out = ROOT / "target/bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "node.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "node.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
