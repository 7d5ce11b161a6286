#!/usr/bin/env python3
"""Drives the real Helm engine (PyPI helm-sdkpy: Helm 4 as a library) for the tests.

    helm.py ACTION --kubeconfig K --namespace NS --release R [--chart DIR] [--values JSON]
            [--timeout S]

ACTION is install, upgrade, uninstall, test (`helm test`) or lint (`helm lint`, which renders
with Helm's default Kubernetes version, newer than the test apiserver's). Prints the engine's answer (for
install/upgrade the release: rendered manifest and hooks) as JSON on stdout; on failure the
engine's error on stderr and exit code 1.
"""
import argparse
import asyncio
import json
import sys

import helm_sdkpy


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("action", choices=["install", "upgrade", "uninstall", "test", "lint"])
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--namespace", required=True)
    ap.add_argument("--release", required=True)
    ap.add_argument("--chart")
    ap.add_argument("--values", default="{}")
    ap.add_argument("--timeout", type=int, default=120)
    a = ap.parse_args()
    cfg = helm_sdkpy.Configuration(namespace=a.namespace, kubeconfig=a.kubeconfig)
    values = json.loads(a.values)
    if a.action == "install":
        run = helm_sdkpy.Install(cfg).run(
            a.release, a.chart, values=values, wait=False, timeout=a.timeout)
    elif a.action == "upgrade":
        run = helm_sdkpy.Upgrade(cfg).run(
            a.release, a.chart, values=values, wait=False, timeout=a.timeout)
    elif a.action == "uninstall":
        run = helm_sdkpy.Uninstall(cfg).run(a.release, wait=True, timeout=a.timeout)
    elif a.action == "lint":
        run = helm_sdkpy.Lint(cfg).run(a.chart)
    else:
        run = helm_sdkpy.ReleaseTest(cfg).run(a.release)
    try:
        result = asyncio.run(run)
    except helm_sdkpy.HelmError as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    json.dump(result, sys.stdout, default=str)


if __name__ == "__main__":
    main()
