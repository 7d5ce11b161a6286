#!/usr/bin/env python3
"""`make bench`: dbinit against the tools people use today and against the physical floor.

Starts its own PostgreSQL on a free port, generates one migration set (N small migrations:
a table, an index and a few rows each) in every tool's format, and times whole processes,
interleaved (A B C A B C ...) so that machine noise hits every tool alike. Reports min,
median and max, ratios to the floor and to dbinit (taken pair by pair within an iteration,
then the median), and peak RSS. Writes target/bench/results.{md,json}.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "bench-pw"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_pg_user(cmd):
    return ["runuser", "-u", "postgres", "--"] + cmd if os.geteuid() == 0 else cmd


class Postgres:
    """A throwaway cluster: initdb + pg_ctl in a temp dir, scram-sha-256 over TCP."""

    def __init__(self):
        bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
        self.bin = bindirs[-1]
        self.dir = Path(tempfile.mkdtemp(prefix="dbinit-bench-"))
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        pw = self.dir / "pw"
        pw.write_text(PASSWORD)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            shutil.chown(pw, "postgres")
        subprocess.run(as_pg_user([str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres",
                                   "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pw}",
                                   "-E", "UTF8", "--locale=C", "-N"]), check=True, stdout=subprocess.DEVNULL)
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        subprocess.run(as_pg_user([str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-l",
                                   str(self.dir / "log"), "-w", "-o", opts, "start"]), check=True,
                       stdout=subprocess.DEVNULL)

    def stop(self):
        subprocess.run(as_pg_user([str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate",
                                   "stop"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db):
        return f"postgres://postgres:{PASSWORD}@127.0.0.1:{self.port}/{db}?sslmode=disable"

    def psql(self, sql, db="postgres"):
        # One statement per call: DROP/CREATE DATABASE refuse a multi-statement query.
        env = dict(os.environ, PGPASSWORD=PASSWORD, PGOPTIONS="-c client_min_messages=warning")
        subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db,
                        "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, env=env, stdout=subprocess.DEVNULL)

    def recreate(self, db):
        self.psql(f'DROP DATABASE IF EXISTS "{db}"')
        self.psql(f'CREATE DATABASE "{db}"')


def migration_sql(i):
    return (f"CREATE TABLE t_{i} (id int PRIMARY KEY, v text NOT NULL);\n"
            f"CREATE INDEX t_{i}_v_idx ON t_{i} (v);\n"
            f"INSERT INTO t_{i} (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c');\n")


def generate(root, n):
    """One migration set, written in every tool's format."""
    dirs = {k: root / k for k in ("dbinit", "sqlx", "dbmate", "alembic/versions")}
    for d in dirs.values():
        d.mkdir(parents=True)
    floor = ["CREATE TABLE IF NOT EXISTS floor_history (version int PRIMARY KEY, applied_on timestamptz DEFAULT now());"]
    for i in range(1, n + 1):
        sql = migration_sql(i)
        (dirs["dbinit"] / f"V{i}__t_{i}.sql").write_text(sql)
        (dirs["sqlx"] / f"{i:04d}_t_{i}.sql").write_text(sql)
        (dirs["dbmate"] / f"2024{i:010d}_t_{i}.sql").write_text(f"-- migrate:up\n{sql}\n-- migrate:down\n")
        prev = f'"r{i - 1:04d}"' if i > 1 else "None"
        (dirs["alembic/versions"] / f"r{i:04d}.py").write_text(
            f'from alembic import op\nrevision = "r{i:04d}"\ndown_revision = {prev}\nbranch_labels = None\n'
            f'depends_on = None\n\ndef upgrade():\n    op.execute("""{sql}""")\n\ndef downgrade():\n    pass\n')
        floor.append(f"BEGIN;\n{sql}INSERT INTO floor_history (version) VALUES ({i});\nCOMMIT;")
    (root / "floor.sql").write_text("\n".join(floor) + "\n")
    # BENCH_SQLALCHEMY_URL for bare Alembic; under dbinit (tool mode) the DATABASE_URL it
    # passes, as the env.py lines of docs/keeping-your-tool.md read it.
    (root / "alembic/env.py").write_text(
        "import os, re\nfrom alembic import context\nfrom sqlalchemy import create_engine\n"
        "url = os.environ.get('BENCH_SQLALCHEMY_URL') or re.sub(r'^postgres(ql)?://', 'postgresql+psycopg2://', os.environ['DATABASE_URL'])\n"
        "engine = create_engine(url)\n"
        "with engine.connect() as conn:\n"
        "    context.configure(connection=conn, transaction_per_migration=True)\n"
        "    with context.begin_transaction():\n        context.run_migrations()\n")
    (root / "alembic/script.py.mako").write_text("")
    (root / "alembic.ini").write_text(f"[alembic]\nscript_location = {root / 'alembic'}\n")
    return root


class Tool:
    def __init__(self, name, version_cmd, apply_cmd, env=None, w1=True):
        self.name, self.version_cmd, self.apply_cmd, self.env, self.w1 = name, version_cmd, apply_cmd, env or {}, w1


def tools(pg, sets, peers):
    dbinit = str(ROOT / "target/release/dbinit")
    pgenv = {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(pg.port), "POSTGRES_USER": "postgres",
             "POSTGRES_PASSWORD": PASSWORD, "POSTGRES_SSLMODE": "disable", "DBINIT_LOG": "warn"}
    psql = ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres"]
    out = [
        Tool("dbinit", [dbinit, "--version"],
             lambda db: [dbinit, "run", "--migrations-dir", str(sets / "dbinit"), "--postgres-db", db], pgenv),
        Tool("floor (psql)", ["psql", "--version"],
             lambda db: psql + ["-d", db, "-v", "ON_ERROR_STOP=1", "-f", str(sets / "floor.sql")],
             {"PGPASSWORD": PASSWORD, "PGSSLMODE": "disable"}),
    ]
    b = peers / "cargo/bin"
    if (b / "refinery").exists():
        out.append(Tool("refinery_cli 0.10", [str(b / "refinery"), "--version"],
                        lambda db: [str(b / "refinery"), "migrate", "-e", "BENCH_URL", "-p", str(sets / "dbinit")],
                        {"BENCH_URL": None}))
    if (b / "sqlx").exists():
        out.append(Tool("sqlx-cli 0.9", [str(b / "sqlx"), "--version"],
                        lambda db: [str(b / "sqlx"), "migrate", "run", "--source", str(sets / "sqlx"),
                                    "--database-url", pg.url(db)]))
    dbmate = peers / "npm/node_modules/.bin/dbmate"
    if dbmate.exists():
        out.append(Tool("dbmate 2.36", [str(dbmate), "--version"],
                        lambda db: [str(dbmate), "--url", pg.url(db), "--migrations-dir", str(sets / "dbmate"),
                                    "--no-dump-schema", "migrate"]))
    alembic = peers / "venv/bin/alembic"
    if alembic.exists():
        out.append(Tool("alembic 1.20", [str(alembic), "--version"],
                        lambda db: [str(alembic), "-c", str(sets / "alembic.ini"), "upgrade", "head"],
                        {"BENCH_SQLALCHEMY_URL": None}))
    # Tool mode (docs/keeping-your-tool.md): dbinit around each tool's own command. On an
    # up-to-date database dbinit reads the tool's table and files and starts no child.
    def tool_mode(name, cmd):
        out.append(Tool(f"dbinit -- {name} (tool mode)", [dbinit, "--version"],
                        lambda db: [dbinit, "run", "--postgres-db", db, "--"] + cmd, pgenv))
    if alembic.exists():
        tool_mode("alembic", [str(alembic), "-c", str(sets / "alembic.ini"), "upgrade", "head"])
    if (b / "sqlx").exists():
        tool_mode("sqlx", [str(b / "sqlx"), "migrate", "run", "--source", str(sets / "sqlx")])
    if dbmate.exists():
        tool_mode("dbmate", [str(dbmate), "--migrations-dir", str(sets / "dbmate"), "--no-dump-schema", "migrate"])
    return out


def run_timed(cmd, env):
    """Wall seconds of one process, start to exit; a failure ends the benchmark."""
    start = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} exited {p.returncode}:\n{p.stderr.decode(errors='replace')[-2000:]}")
    return elapsed


def peak_rss_kb(cmd, env):
    """Peak RSS of one process in KB, measured by GNU time in its own run. (A child forked by
    this Python process would report at least Python's own RSS: Linux carries the pre-exec
    image's high-water mark into ru_maxrss.)"""
    with tempfile.NamedTemporaryFile() as f:
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", f.name] + cmd, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return int(Path(f.name).read_text().split()[-1])


def env_for(tool, pg, db):
    env = dict(os.environ)
    for k, v in tool.env.items():
        if k == "BENCH_URL":
            v = pg.url(db)
        elif k == "BENCH_SQLALCHEMY_URL":
            v = pg.url(db).replace("postgres://", "postgresql+psycopg2://")
        env[k] = v
    return env


def stats(xs):
    return {"min": min(xs), "median": statistics.median(xs), "max": max(xs)}


def lint_file_sql(i):
    """One of 300 generated files for W5: what teams write, safe and unsafe alike."""
    kinds = [
        f"CREATE TABLE l_{i} (id bigint PRIMARY KEY, v text NOT NULL, created_at timestamptz DEFAULT now());\n"
        f"CREATE INDEX l_{i}_v_idx ON l_{i} (v);\n",
        f"CREATE INDEX l_{i}_created_idx ON l_{i - 1} (created_at);\n",
        f"ALTER TABLE l_{i - 2} ADD COLUMN note_{i} text;\nUPDATE l_{i - 2} SET note_{i} = v WHERE id < 1000;\n",
        f"ALTER TABLE l_{i - 3} ADD CONSTRAINT l_{i}_fk FOREIGN KEY (id) REFERENCES l_{i - 4} (id);\n",
        f"-- dbinit:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS l_{i}_c_idx ON l_{i - 4} (v);\n",
        f"ALTER TABLE l_{i - 5} ALTER COLUMN v TYPE varchar(200);\nALTER TABLE l_{i - 5} ALTER COLUMN v SET NOT NULL;\n",
    ]
    return kinds[i % len(kinds)]


def bench_lint(runs):
    """W5: `dbinit lint` without a database (the CI gate), whole process: this repository's
    migrations, 300 generated files, and PostgreSQL 15's regression SQL when cached."""
    dbinit = str(ROOT / "target/release/dbinit")
    env = {"PATH": os.environ.get("PATH", ""), "DBINIT_LOG": "warn"}
    work = Path(tempfile.mkdtemp(prefix="dbinit-bench-lint-"))
    try:
        gen = work / "generated"
        gen.mkdir()
        for i in range(1, 301):
            (gen / f"V{i}__l_{i}.sql").write_text(lint_file_sql(i))
        cases = {
            "this repository's migrations/": [dbinit, "lint", "--offline", "--migrations-dir", str(ROOT / "migrations")],
            "300 generated files": [dbinit, "lint", "--offline", "--migrations-dir", str(gen)],
        }
        cache = Path(os.environ.get("DBINIT_CACHE_DIR", Path.home() / ".cache/dbinit")) / "pg15-regress-sql"
        if (cache / ".complete").exists():
            files = sorted(str(p) for p in cache.glob("*.sql")
                           if p.read_bytes().decode("utf-8", "replace") == p.read_bytes().decode("utf-8", "ignore"))
            cases[f"PostgreSQL 15 regression SQL ({len(files)} files)"] = [dbinit, "lint", "--offline"] + files
        out = {}
        for name, cmd in cases.items():
            out[name] = stats([run_timed(cmd, env) for _ in range(runs)])
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--peers", type=Path, required=True)
    ap.add_argument("--migrations", type=int, default=200)
    ap.add_argument("--w1-runs", type=int, default=5)
    ap.add_argument("--w2-runs", type=int, default=30)
    ap.add_argument("--w4-procs", type=int, default=50)
    ap.add_argument("--w5-runs", type=int, default=10)
    ap.add_argument("--out", type=Path, default=ROOT / "target/bench")
    ap.add_argument("--only", default="", help="comma-separated words: only the tools whose name "
                    "contains one of them (dbinit and the floor always run: the ratios need them), "
                    "e.g. --only 'tool mode,alembic'")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    pg = Postgres()
    work = Path(tempfile.mkdtemp(prefix="dbinit-bench-sets-"))
    try:
        sets = generate(work / "sets", a.migrations)
        ts = tools(pg, sets, a.peers)
        if a.only:
            words = [w.strip() for w in a.only.split(",") if w.strip()]
            ts = [t for t in ts if t.name in ("dbinit", "floor (psql)") or any(w in t.name for w in words)]
        dbname = {t.name: f"bench_{i}" for i, t in enumerate(ts)}
        results = {t.name: {} for t in ts}
        pair = {t.name: {} for t in ts}

        # W1: cold apply, interleaved; database drop+create timed on its own.
        recreate, w1 = [], {t.name: [] for t in ts}
        for it in range(a.w1_runs):
            row = {}
            for t in ts[it % len(ts):] + ts[:it % len(ts)]:
                s = time.perf_counter()
                pg.recreate(dbname[t.name])
                recreate.append(time.perf_counter() - s)
                row[t.name] = run_timed(t.apply_cmd(dbname[t.name]), env_for(t, pg, dbname[t.name]))
                w1[t.name].append(row[t.name])
            for t in ts:
                pair[t.name].setdefault("W1", []).append(row[t.name] / row["dbinit"])
        # W2: no-op on the up-to-date databases, interleaved; peak RSS too.
        w2 = {t.name: [] for t in ts}
        rss = {t.name: [] for t in ts}
        psql_floor = ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-d",
                      dbname["dbinit"], "-c", "select 1"]
        for it in range(a.w2_runs):
            row = {}
            for t in ts[it % len(ts):] + ts[:it % len(ts)]:
                cmd = psql_floor if t.name == "floor (psql)" else t.apply_cmd(dbname[t.name])
                el = run_timed(cmd, env_for(t, pg, dbname[t.name]))
                row[t.name] = el
                w2[t.name].append(el)
            for t in ts:
                pair[t.name].setdefault("W2", []).append(row[t.name] / row["dbinit"])
        for t in ts:
            cmd = psql_floor if t.name == "floor (psql)" else t.apply_cmd(dbname[t.name])
            rss[t.name] = [peak_rss_kb(cmd, env_for(t, pg, dbname[t.name])) for _ in range(3)]
        # W3: process start.
        w3 = {t.name: [] for t in ts}
        for it in range(a.w2_runs):
            for t in ts:
                w3[t.name].append(run_timed(t.version_cmd, dict(os.environ)))
        # W4: a rollout: many dbinit processes at once against an up-to-date database.
        dbinit = next(t for t in ts if t.name == "dbinit")
        env = env_for(dbinit, pg, dbname["dbinit"])
        floor_tool = next(t for t in ts if t.name == "floor (psql)")
        floor_env = env_for(floor_tool, pg, dbname["dbinit"])

        def at_once(cmd, e):
            s = time.perf_counter()
            procs = [subprocess.Popen(cmd, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for _ in range(a.w4_procs)]
            codes = [p.wait() for p in procs]
            if any(codes):
                sys.exit(f"bench: W4 exit codes {codes}")
            return time.perf_counter() - s

        alone, together, floor_together = [], [], []
        for _ in range(3):
            alone.append(run_timed(dbinit.apply_cmd(dbname["dbinit"]), env))
            together.append(at_once(dbinit.apply_cmd(dbname["dbinit"]), env))
            # The floor: the same number of bare connections with one query each.
            floor_together.append(at_once(psql_floor, floor_env))

        floor = "floor (psql)"
        for t in ts:
            results[t.name] = {
                "version": subprocess.run(t.version_cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
                if t.version_cmd else "",
                "W1": stats(w1[t.name]), "W2": stats(w2[t.name]), "W3": stats(w3[t.name]),
                "W2_peak_rss_mb": max(rss[t.name]) / 1024,
                "W1_ratio_to_floor": statistics.median(w1[t.name]) / statistics.median(w1[floor]),
                "W2_ratio_to_floor": statistics.median(w2[t.name]) / statistics.median(w2[floor]),
                "W1_ratio_to_dbinit_pairwise": statistics.median(pair[t.name]["W1"]),
                "W2_ratio_to_dbinit_pairwise": statistics.median(pair[t.name]["W2"]),
            }
        sizes = {}
        for b in ("dbinit", "dbinit-job"):
            p = ROOT / "target/release" / b
            if p.exists():
                sizes[b] = p.stat().st_size / 1048576
        report = {
            "machine": {"cpus": os.cpu_count(), "kernel": os.uname().release},
            "migrations": a.migrations, "w1_runs": a.w1_runs, "w2_runs": a.w2_runs,
            "database_recreate_s": stats(recreate), "tools": results,
            "W4": {"procs": a.w4_procs, "alone_s": stats(alone), "together_s": stats(together),
                   "ratio": statistics.median(together) / statistics.median(alone),
                   "floor_together_s": stats(floor_together),
                   "ratio_to_floor": statistics.median(together) / statistics.median(floor_together)},
            "binary_sizes_mb": sizes,
            "W5_lint_s": bench_lint(a.w5_runs),
        }
        (a.out / "results.json").write_text(json.dumps(report, indent=2))
        md = markdown(report)
        (a.out / "results.md").write_text(md)
        print(md)
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def markdown(r):
    ms = lambda s: f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"
    lines = [
        f"PostgreSQL on loopback, {r['machine']['cpus']} CPUs; {r['migrations']} migrations; "
        f"W1 {r['w1_runs']} runs, W2/W3 {r['w2_runs']} runs each, interleaved; medians, ratios pair by pair.",
        "",
        "| tool | W1 cold apply (median) | W1 / floor | W1 / dbinit | W2 no-op (median) | W2 / floor | W2 / dbinit | W2 peak RSS | W3 --version |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, t in r["tools"].items():
        lines.append(
            f"| {name} | {ms(t['W1']['median'])} | {t['W1_ratio_to_floor']:.2f}x | {t['W1_ratio_to_dbinit_pairwise']:.2f}x "
            f"| {ms(t['W2']['median'])} | {t['W2_ratio_to_floor']:.2f}x | {t['W2_ratio_to_dbinit_pairwise']:.2f}x "
            f"| {t['W2_peak_rss_mb']:.1f} MB | {ms(t['W3']['median'])} |")
    w4 = r["W4"]
    lines += [
        "",
        f"W4 rollout: {w4['procs']} `dbinit run` at once on an up-to-date database: {ms(w4['together_s']['median'])} "
        f"until the last exits, vs {ms(w4['alone_s']['median'])} alone ({w4['ratio']:.2f}x); "
        f"{w4['procs']} `psql -c 'select 1'` at once (the floor): {ms(w4['floor_together_s']['median'])} "
        f"(dbinit {w4['ratio_to_floor']:.2f}x the floor).",
        f"Database drop+create (not in W1): {ms(r['database_recreate_s']['median'])}.",
        "Floors: W1 is one psql session applying each file in its own transaction with a history insert; "
        "W2 is `psql -c 'select 1'`.",
        "Stripped release binaries: " + ", ".join(f"{k} {v:.2f} MB" for k, v in r["binary_sizes_mb"].items()) + ".",
        "",
        "W5 `dbinit lint --offline` (whole process, median): "
        + "; ".join(f"{k} {ms(v['median'])}" for k, v in r["W5_lint_s"].items()) + ".",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
