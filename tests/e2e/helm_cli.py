#!/usr/bin/env python3
"""`helm` for README's commands in the e2e tests: the helm command line, driving the real Helm
engine (PyPI helm-sdkpy: Helm 4 as a library), because this machine has no helm binary.

    helm install NAME CHART [flags]          helm upgrade [--install] NAME CHART [flags]
    helm test NAME [flags]                   helm uninstall NAME [flags]
    helm status NAME [flags]

Flags: --set, --set-string (a.b=c, comma-separated, `\\,` and `\\.` escapes; list syntax is
refused), -f/--values FILE (JSON; YAML needs PyYAML, refused without it), -n/--namespace,
--kubeconfig, --kube-context, --wait, --wait-for-jobs, --timeout (Go duration), --install,
--create-namespace, --atomic/--rollback-on-failure, --reuse-values, --reset-values.
Anything else is an error naming the flag, never silently ignored.

Namespace as helm resolves it: --namespace, else $HELM_NAMESPACE, else the kubeconfig's
current context, else "default". Output follows helm's (NAME/NAMESPACE/STATUS/REVISION/NOTES);
exit 1 with the engine's error. With $DBINIT_E2E_HELM_LOG set, appends one JSON line per call:
argv, action, release, namespace, ok, error, and the release the engine returned.
"""
import asyncio
import json
import os
import re
import subprocess
import sys

import helm_sdkpy

BOOL_FLAGS = {"--wait", "--wait-for-jobs", "--install", "--create-namespace", "--atomic",
              "--rollback-on-failure", "--reuse-values", "--reset-values", "--debug"}
VALUE_FLAGS = {"--set", "--set-string", "-f", "--values", "-n", "--namespace", "--kubeconfig",
               "--kube-context", "--timeout"}


def fail(msg):
    print(f"Error: {msg}", file=sys.stderr)
    sys.exit(1)


def parse_args(argv):
    pos, flags = [], []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-"):
            name, eq, val = a.partition("=")
            if name in BOOL_FLAGS:
                flags.append((name, val if eq else "true"))
            elif name in VALUE_FLAGS:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        fail(f"flag needs an argument: {name}")
                    val = argv[i]
                flags.append((name, val))
            else:
                fail(f"unknown flag: {name} (this test helm supports {sorted(BOOL_FLAGS | VALUE_FLAGS)})")
        else:
            pos.append(a)
        i += 1
    return pos, flags


def split_unescaped(s, sep):
    parts, cur, i = [], "", 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s) and s[i + 1] in ",.=\\":
            cur += "\\" + s[i + 1]
            i += 2
            continue
        if s[i] == sep:
            parts.append(cur)
            cur = ""
        else:
            cur += s[i]
        i += 1
    parts.append(cur)
    return parts


def unescape(s):
    return re.sub(r"\\(.)", r"\1", s)


def typed(v):
    """helm's strvals typing: true/false, null, int64 without leading zeros, else string."""
    if v.lower() == "true":
        return True
    if v.lower() == "false":
        return False
    if v.lower() == "null":
        return None
    if re.fullmatch(r"-?(0|[1-9][0-9]*)", v) and -2**63 <= int(v) < 2**63:
        return int(v)
    return v


def apply_set(values, expr, as_string):
    for item in split_unescaped(expr, ","):
        if not item:
            continue
        key, eq, val = item.partition("=")
        if not eq:
            fail(f"key {item!r} has no value")
        if any(c in key for c in "[]{}") or val.startswith("{"):
            fail(f"--set list syntax is not supported here: {item!r}")
        path = [unescape(k) for k in split_unescaped(key, ".")]
        node = values
        for k in path[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {}
            node = node[k]
        v = unescape(val)
        node[path[-1]] = v if as_string else typed(v)


def merge(base, over):
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


def load_values_file(path):
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        import yaml  # noqa: PLC0415
    except ImportError:
        fail(f"{path}: only JSON values files are supported here (PyYAML is not installed)")
    return yaml.safe_load(text) or {}


def duration(s):
    total, rest = 0.0, s
    for num, unit in re.findall(r"([0-9.]+)(h|ms|m|s)", s):
        total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
        rest = rest.replace(num + unit, "", 1)
    if rest or not s:
        fail(f'invalid duration "{s}"')
    return max(1, int(total))


def kubeconfig_namespace(kubeconfig, context):
    cmd = ["kubectl", "config", "view", "--minify", "-o", "jsonpath={..namespace}"]
    if kubeconfig:
        cmd += ["--kubeconfig", kubeconfig]
    if context:
        cmd += ["--context", context]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


def print_release(r, action):
    info = r.get("info", {}) if isinstance(r, dict) else {}
    print(f"NAME: {r.get('name')}")
    print(f"LAST DEPLOYED: {info.get('last_deployed', '')}")
    print(f"NAMESPACE: {r.get('namespace')}")
    print(f"STATUS: {info.get('status')}")
    print(f"REVISION: {r.get('version')}")
    if action == "test":
        for h in r.get("hooks") or []:
            if "test" in (h.get("events") or []):
                lr = h.get("last_run") or {}
                print(f"TEST SUITE:     {h.get('name')}")
                print(f"Last Started:   {lr.get('started_at', '')}")
                print(f"Last Completed: {lr.get('completed_at', '')}")
                print(f"Phase:          {lr.get('phase', '')}")
    elif info.get("notes"):
        print("NOTES:")
        print(info["notes"])


def main(argv):
    if not argv:
        fail("no command (install, upgrade, test, uninstall, status)")
    action, (pos, flags) = argv[0], parse_args(argv[1:])
    opt = {}
    values = {}
    for name, val in flags:
        if name in ("-f", "--values"):
            merge(values, load_values_file(val))
        else:
            opt.setdefault(name, []).append(val)
    for name, val in flags:
        if name in ("--set", "--set-string"):
            apply_set(values, val, name == "--set-string")
    one = lambda k, d=None: (opt.get(k) or [d])[-1]  # noqa: E731
    kubeconfig = one("--kubeconfig") or (os.environ.get("KUBECONFIG", "").split(":")[0] or None)
    context = one("--kube-context")
    ns = (one("--namespace") or one("-n") or os.environ.get("HELM_NAMESPACE")
          or kubeconfig_namespace(kubeconfig, context) or "default")
    timeout = duration(one("--timeout", "5m0s"))
    flag = lambda k: one(k, "false") == "true"  # noqa: E731
    need = {"install": 2, "upgrade": 2, "test": 1, "uninstall": 1, "status": 1}
    if action not in need:
        fail(f'unknown command "{action}" for "helm"')
    if len(pos) != need[action]:
        fail(f'"helm {action}" requires {need[action]} arguments, got {pos}')
    cfg = helm_sdkpy.Configuration(namespace=ns, kubeconfig=kubeconfig, kubecontext=context)
    rollback = flag("--atomic") or flag("--rollback-on-failure")
    if action == "install":
        run = helm_sdkpy.Install(cfg).run(
            pos[0], pos[1], values=values, wait=flag("--wait"), timeout=timeout,
            wait_for_jobs=flag("--wait-for-jobs"), create_namespace=flag("--create-namespace"),
            rollback_on_failure=rollback)
    elif action == "upgrade":
        run = helm_sdkpy.Upgrade(cfg).run(
            pos[0], pos[1], values=values, install=flag("--install"), wait=flag("--wait"),
            timeout=timeout, wait_for_jobs=flag("--wait-for-jobs"),
            create_namespace=flag("--create-namespace"), rollback_on_failure=rollback,
            reuse_values=flag("--reuse-values"), reset_values=flag("--reset-values"))
    elif action == "test":
        run = helm_sdkpy.ReleaseTest(cfg).run(pos[0])
    elif action == "uninstall":
        run = helm_sdkpy.Uninstall(cfg).run(pos[0], wait=flag("--wait"), timeout=timeout)
    else:
        run = helm_sdkpy.Status(cfg).run(pos[0])
    entry = {"argv": argv, "action": action, "release": pos[0], "namespace": ns, "values": values}
    try:
        result = asyncio.run(run)
        entry.update(ok=True, result=result)
    except helm_sdkpy.HelmError as e:
        entry.update(ok=False, error=f"{type(e).__name__}: {e}")
    log = os.environ.get("DBINIT_E2E_HELM_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps(entry, default=str) + "\n")
    if not entry["ok"]:
        fail(entry["error"])
    if action == "uninstall":
        print(f'release "{pos[0]}" uninstalled')
    elif isinstance(result, dict):
        print_release(result, action)


if __name__ == "__main__":
    main(sys.argv[1:])
