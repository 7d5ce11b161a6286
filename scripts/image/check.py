#!/usr/bin/env python3
"""Check that the image `make image` built and the one the Dockerfile builds agree.

Usage:
  check.py --dockerfile Dockerfile --archive target/image/dbinit.oci.tar --bins DIR
  check.py --size ARCHIVE

The Dockerfile's build stage must make the binaries with scripts/image/build-bins.sh and the
tree with scripts/image/rootfs.sh, as `make image` does; its final stage must be FROM scratch,
COPY that /rootfs, and set the same user, entrypoint,
command, working directory and environment as the archive's config. The archive's files must
be exactly what rootfs.sh makes from the binaries in DIR (path, type, mode, owner, content),
and there must be no /migrations (derived images add their own).
Exits 1 naming every difference.
"""

import argparse
import hashlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOTFS_SH = "scripts/image/rootfs.sh"
BUILD_SH = "scripts/image/build-bins.sh"


def dockerfile_stages(path):
    """[(from_line, name, [(INSTRUCTION, args)])] with continuations joined, comments dropped."""
    text = open(path, encoding="utf-8").read()
    lines, cur = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if cur and s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        lines.append((cur + s).strip())
        cur = ""
    stages = []
    for line in lines:
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            m = re.match(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", args, re.I)
            stages.append((m.group(1), m.group(2), []))
        elif stages:
            stages[-1][2].append((instr, args.strip()))
    return stages


def json_or_shell(args):
    """ENTRYPOINT/CMD arguments: the exec (JSON) form as a list; the shell form as sh -c."""
    try:
        v = json.loads(args)
        if isinstance(v, list):
            return v
    except ValueError:
        pass
    return ["/bin/sh", "-c", args]


def dockerfile_config(path, errors):
    """The final stage's image config, and checks on how its files are made."""
    stages = dockerfile_stages(path)
    if not stages:
        errors.append("Dockerfile: no FROM")
        return {}
    base, _, instrs = stages[-1]
    if base != "scratch":
        errors.append(f"Dockerfile: final stage is FROM {base}, not FROM scratch")
    cfg = {"User": "", "Entrypoint": None, "Cmd": None, "WorkingDir": "", "Env": []}
    copies = []
    for instr, args in instrs:
        if instr == "USER":
            cfg["User"] = args
        elif instr == "ENTRYPOINT":
            cfg["Entrypoint"] = json_or_shell(args)
            cfg["Cmd"] = None  # Docker resets CMD when ENTRYPOINT is set
        elif instr == "CMD":
            cfg["Cmd"] = json_or_shell(args)
        elif instr == "WORKDIR":
            cfg["WorkingDir"] = args
        elif instr == "ENV":
            cfg["Env"].append(args.replace(" ", "=", 1) if "=" not in args else args)
        elif instr in ("COPY", "ADD"):
            copies.append(args)
        elif instr in ("RUN",):
            errors.append("Dockerfile: the final stage has a RUN step (FROM scratch has no shell)")
    build = {name: ins for _, name, ins in stages[:-1] if name}
    if len(copies) != 1:
        errors.append(f"Dockerfile: final stage has {len(copies)} COPY/ADD lines, expected one of the build stage's /rootfs/")
    else:
        parts = shlex.split(copies[0])
        frm = [p.split("=", 1)[1] for p in parts if p.startswith("--from=")]
        rest = [p for p in parts if not p.startswith("--")]
        if not frm or rest != ["/rootfs/", "/"]:
            errors.append(f"Dockerfile: final COPY is `{copies[0]}`, expected `COPY --from=<build> /rootfs/ /`")
        elif frm[0] not in build:
            errors.append(f"Dockerfile: COPY --from={frm[0]} names no build stage")
        else:
            runs = " ".join(a for i, a in build[frm[0]] if i == "RUN")
            if not re.search(re.escape(ROOTFS_SH) + r"\s+/rootfs\s+target/x86_64-unknown-linux-gnu/release", runs):
                errors.append(f"Dockerfile: build stage {frm[0]} does not run `{ROOTFS_SH} /rootfs target/x86_64-unknown-linux-gnu/release`")
            if not re.search(re.escape(BUILD_SH) + r"(\s|$)", runs) or re.search(r"\bcargo\b", runs):
                errors.append(f"Dockerfile: build stage {frm[0]} does not build the binaries with `{BUILD_SH}` (alone)")
    return cfg


def oci_read(archive):
    """(config, [layer tar bytes]) of the single image in an OCI archive."""
    with tarfile.open(archive) as t:
        def blob(digest):
            algo, hexd = digest.split(":", 1)
            return t.extractfile(f"blobs/{algo}/{hexd}").read()
        index = json.loads(t.extractfile("index.json").read())
        man = index["manifests"][0]
        manifest = json.loads(blob(man["digest"]))
        while "manifests" in manifest:  # a nested index
            manifest = json.loads(blob(manifest["manifests"][0]["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        layers = [(layer["size"], blob(layer["digest"])) for layer in manifest["layers"]]
    return config, layers


def tree_of_layers(layers):
    """{path: (type, mode, uid, gid, size, sha256)} of the merged layers (whiteouts applied)."""
    tree = {}
    for _, data in layers:
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            for m in t.getmembers():
                p = "/" + m.name.lstrip("./").rstrip("/")
                base = os.path.basename(p)
                if base.startswith(".wh."):
                    gone = os.path.join(os.path.dirname(p), base[4:])
                    tree = {k: v for k, v in tree.items() if k != gone and not k.startswith(gone + "/")}
                    continue
                if p == "/":
                    continue
                kind = "dir" if m.isdir() else "file" if m.isfile() else "link" if m.issym() else "other"
                if m.isfile():
                    digest = hashlib.sha256(t.extractfile(m).read()).hexdigest()
                else:
                    digest = m.linkname if m.issym() else None
                tree[p] = (kind, m.mode & 0o7777, m.uid, m.gid, m.size if m.isfile() else 0, digest)
    return tree


def tree_of_dir(root):
    """The same shape for a directory made by rootfs.sh, owned by root as COPY makes it."""
    tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            p = "/" + os.path.relpath(full, root)
            st = os.lstat(full)
            if os.path.islink(full):
                tree[p] = ("link", 0o777, 0, 0, 0, os.readlink(full))
            elif os.path.isdir(full):
                tree[p] = ("dir", st.st_mode & 0o7777, 0, 0, 0, None)
            else:
                tree[p] = ("file", st.st_mode & 0o7777, 0, 0, st.st_size,
                           hashlib.sha256(open(full, "rb").read()).hexdigest())
    return tree


def show(entry):
    """An entry as `kind mode uid:gid size`."""
    kind, mode, uid, gid, size, _ = entry
    return f"{kind} {mode:04o} {uid}:{gid} {size} B"


def size_line(archive):
    _, layers = oci_read(archive)
    unpacked = sum(v[4] for v in tree_of_layers(layers).values())
    packed = sum(size for size, _ in layers)
    return f"image {unpacked / 1048576:.1f} MiB unpacked, {packed / 1048576:.1f} MiB compressed"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dockerfile")
    ap.add_argument("--archive")
    ap.add_argument("--bins")
    ap.add_argument("--size")
    a = ap.parse_args()
    if a.size:
        print(size_line(a.size))
        return 0
    errors = []
    want = dockerfile_config(a.dockerfile, errors)
    config, layers = oci_read(a.archive)
    got = config.get("config", {})
    norm = {
        "User": got.get("User", ""),
        "Entrypoint": got.get("Entrypoint"),
        "Cmd": got.get("Cmd") or None,
        "WorkingDir": got.get("WorkingDir", "") or "",
        # Docker gives every image a default PATH; it means nothing without a shell.
        "Env": [e for e in got.get("Env") or [] if not e.startswith("PATH=")],
    }
    want["Cmd"] = want.get("Cmd") or None
    for k in ("User", "Entrypoint", "Cmd", "WorkingDir", "Env"):
        if want.get(k) != norm[k]:
            errors.append(f"{k}: Dockerfile says {want.get(k)!r}, archive has {norm[k]!r}")
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "rootfs")
        subprocess.run([os.path.join(HERE, "rootfs.sh"), root, a.bins], check=True)
        expected = tree_of_dir(root)
    actual = tree_of_layers(layers)
    # dbinit reads /migrations instead of its built-in set when it exists: an image with one
    # would mix its files into every derived image's `COPY migrations /migrations`.
    if "/migrations" in actual:
        errors.append("/migrations: in the archive; the image must not have it (a derived image adds it)")
    for p in sorted(set(expected) | set(actual)):
        e, g = expected.get(p), actual.get(p)
        if e is None:
            errors.append(f"{p}: in the archive, not made by rootfs.sh")
        elif g is None:
            errors.append(f"{p}: made by rootfs.sh, missing from the archive")
        elif e != g:
            errors.append(f"{p}: rootfs.sh makes {show(e)}, the archive has {show(g)}"
                          + ("" if e[5] == g[5] else " (content differs)"))
    if errors:
        for e in errors:
            print(f"image check: {e}", file=sys.stderr)
        return 1
    print(f"image check: Dockerfile and {a.archive} agree: user {norm['User']}, entrypoint "
          f"{norm['Entrypoint']}, {len(actual)} paths ({size_line(a.archive)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
