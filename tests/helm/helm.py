#!/usr/bin/env python3
"""Installs a chart with the real Helm engine (PyPI helm-sdkpy) for the tests.

    helm.py --kubeconfig K --namespace NS --release R --chart DIR [--values JSON] [--timeout S]

Prints the release (rendered manifest and hooks) as JSON on stdout; on failure the engine's
error on stderr and exit code 1.
"""
import argparse
import asyncio
import json
import sys

import helm_sdkpy


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--namespace", required=True)
    ap.add_argument("--release", required=True)
    ap.add_argument("--chart", required=True)
    ap.add_argument("--values", default="{}")
    ap.add_argument("--timeout", type=int, default=120)
    a = ap.parse_args()
    cfg = helm_sdkpy.Configuration(namespace=a.namespace, kubeconfig=a.kubeconfig)
    try:
        release = asyncio.run(helm_sdkpy.Install(cfg).run(
            a.release, a.chart, values=json.loads(a.values), wait=False, timeout=a.timeout))
    except helm_sdkpy.HelmError as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    json.dump(release, sys.stdout, default=str)


if __name__ == "__main__":
    main()
