//! Test harness: real PostgreSQL and Redis servers on free ports in temp dirs, and helpers to
//! run the real `dbinit` binaries against them. No mocks.
//!
//! Every server is paired with a watchdog shell whose stdin is a pipe from the test process:
//! when the test (or the whole test binary, even on a panic or SIGKILL) goes away, the pipe
//! closes and the watchdog stops the server and removes its directory.
//!
//! When a test fails (a server is dropped while its thread panics), the server's log is
//! printed; with `DBINIT_TEST_KEEP=1` the server keeps running, its directory stays, and the
//! harness prints where they are.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};

pub mod docs;
pub mod envtest;
pub mod fixtures;
pub mod job_world;
mod kube_api;
pub mod manifest;
pub mod node;
mod pgbouncer;
mod private_net;
mod psql_session;
pub mod tls;
pub mod tools;
pub use kube_api::KubeApi;
pub use pgbouncer::{PgBouncer, PoolMode};
pub use private_net::PrivateNet;
pub use psql_session::PsqlSession;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The superuser password of every harness cluster (scram-sha-256 over TCP).
pub const PG_PASSWORD: &str = "harness-superuser-pw";

/// A free TCP port on 127.0.0.1 (bound, then released; the kernel won't hand it out again
/// at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Where PostgreSQL's server binaries are: `DBINIT_PG_BIN`, else the newest
/// /usr/lib/postgresql/N/bin, else whatever `initdb` is on PATH.
pub fn pg_bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("DBINIT_PG_BIN") {
            return d.into();
        }
        let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let v: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((v, bin))
            })
            .collect();
        found.sort();
        found.pop().map(|(_, p)| p).unwrap_or_else(|| {
            panic!("no PostgreSQL server binaries found: install Debian's `postgresql` package (make deps) or set DBINIT_PG_BIN")
        })
    })
    .clone()
}

/// A command that runs as the `postgres` system user when we are root (initdb and postgres
/// refuse to run as root), and as ourselves otherwise.
fn as_pg_user(program: &Path) -> Command {
    if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn chown_to_postgres(path: &Path) {
    if running_as_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "chown {} to postgres failed", path.display());
    }
}

fn check(out: std::io::Result<Output>, what: &str) -> Output {
    let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether a failed test's servers, directories and namespaces are kept (`DBINIT_TEST_KEEP=1`).
pub fn keep_on_failure() -> bool {
    std::env::var("DBINIT_TEST_KEEP").is_ok_and(|v| v == "1")
}

/// The last `n` lines of a log file, for a failure message.
pub fn log_tail(path: &Path, n: usize) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// On a failing test: prints the tail of `log` under `title`.
pub(crate) fn print_log(title: &str, log: &Path) {
    eprintln!(
        "----- {title}: last lines of {} -----\n{}\n----- end of {title} log -----",
        log.display(),
        log_tail(log, 80)
    );
}

/// A shell that waits for a line on its stdin, or for stdin to close, then runs `script`
/// (stop a server, clean up) unless the line was `keep`.
pub(crate) struct Watchdog {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Watchdog {
    fn spawn(script: &str, args: &[&str]) -> Self {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "read cmd; if [ \"$cmd\" = keep ]; then exit 0; fi; {script}"
            ))
            .arg("watchdog")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn watchdog");
        let stdin = child.stdin.take();
        Self { child, stdin }
    }

    /// Fires the watchdog now and waits for its script to finish.
    pub(crate) fn fire(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }

    /// Disarms the watchdog: what it guards keeps running after the test process exits.
    pub(crate) fn keep(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"keep\n");
        }
        let _ = self.child.wait();
    }
}

/// Runs `program args...` in the background of a watchdog shell that kills it when the pipe
/// from the test closes (or [`Watchdog::fire`] is called); output goes to `log`.
pub(crate) fn spawn_guarded(program: &Path, args: &[String], log: &Path) -> Watchdog {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("prog=$1; log=$2; shift 2; \"$prog\" \"$@\" >>\"$log\" 2>&1 & p=$!; read cmd; if [ \"$cmd\" != keep ]; then kill $p; wait $p; fi")
        .arg("guard")
        .arg(program)
        .arg(log)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn guarded process");
    let stdin = child.stdin.take();
    Watchdog { child, stdin }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.fire();
    }
}

/// A template data directory made by one `initdb` per test binary and copied per cluster:
/// a copy takes a fraction of initdb's second.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<(tempfile::TempDir, PathBuf, Watchdog)> = OnceLock::new();
    &TEMPLATE
        .get_or_init(|| {
            let dir = tempfile::Builder::new()
                .prefix("dbinit-pg-template-")
                .tempdir()
                .expect("tempdir");
            // A static is never dropped: the watchdog removes the copy source at exit.
            let cleanup = remove_at_exit(dir.path());
            chown_to_postgres(dir.path());
            let data = dir.path().join("data");
            let pwfile = dir.path().join("pw");
            std::fs::write(&pwfile, PG_PASSWORD).expect("write pwfile");
            chown_to_postgres(&pwfile);
            check(
                as_pg_user(&pg_bin_dir().join("initdb"))
                    .arg("-D")
                    .arg(&data)
                    .args([
                        "-U",
                        "postgres",
                        "--auth-local=trust",
                        "--auth-host=scram-sha-256",
                        "-E",
                        "UTF8",
                        "--locale=C",
                        "-N",
                    ])
                    .arg(format!("--pwfile={}", pwfile.display()))
                    .output(),
                "initdb",
            );
            (dir, data, cleanup)
        })
        .1
}

/// Removes `dir` when the test process exits, however it exits (the watchdog's pipe closes):
/// for temp dirs held in statics, which Rust never drops.
pub(crate) fn remove_at_exit(dir: &Path) -> Watchdog {
    Watchdog::spawn("rm -rf \"$1\"", &[dir.to_str().expect("utf8 path")])
}

/// Options for a [`Pg`] cluster.
#[derive(Debug, Clone, Default)]
pub struct PgOpts {
    /// Extra `-c name=value` server settings.
    pub settings: Vec<(String, String)>,
    /// Run the server inside this network namespace (a name in `/run/netns`, or a path such
    /// as [`PrivateNet::path`]), where the e2e node's pods reach it; the test's own psql then
    /// goes through the unix socket.
    pub netns: Option<String>,
    /// Listen on this port instead of a free one (inside a namespace of the test's own, where
    /// 5432 is free).
    pub port: Option<u16>,
}

/// A real PostgreSQL cluster owned by one test (or shared by a test binary).
pub struct Pg {
    dir: tempfile::TempDir,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    opts: PgOpts,
    watchdog: Watchdog,
}

impl Drop for Pg {
    /// A failing test shows the server's log; with `DBINIT_TEST_KEEP=1` the server stays up.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        print_log("PostgreSQL", &self.dir.path().join("server.log"));
        if keep_on_failure() {
            self.watchdog.keep();
            self.dir.disable_cleanup(true);
            eprintln!(
                "DBINIT_TEST_KEEP=1: PostgreSQL kept running on 127.0.0.1:{} (PGPASSWORD={PG_PASSWORD} psql -h 127.0.0.1 -p {} -U postgres), data in {}; stop it with: runuser -u postgres -- {} -D {} stop",
                self.port,
                self.port,
                self.data_dir().display(),
                pg_bin_dir().join("pg_ctl").display(),
                self.data_dir().display()
            );
        }
    }
}

impl Pg {
    /// Creates the cluster's data directory (not started yet).
    pub fn init(opts: PgOpts) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("dbinit-pg-")
            .tempdir()
            .expect("tempdir");
        let data = dir.path().join("data");
        check(
            Command::new("cp")
                .arg("-a")
                .arg(template())
                .arg(&data)
                .output(),
            "copy template cluster",
        );
        chown_to_postgres(dir.path());
        let ctl = pg_bin_dir().join("pg_ctl");
        let stop = if running_as_root() {
            "runuser -u postgres -- \"$1\" -D \"$2\" stop -m immediate"
        } else {
            "\"$1\" -D \"$2\" stop -m immediate"
        };
        let watchdog = Watchdog::spawn(
            &format!("{stop} >/dev/null 2>&1; rm -rf \"$3\""),
            &[
                ctl.to_str().expect("utf8 path"),
                data.to_str().expect("utf8 path"),
                dir.path().to_str().expect("utf8 path"),
            ],
        );
        Self {
            port: match (opts.port, &opts.netns) {
                (Some(p), _) => p,
                (None, Some(ns)) => node::free_port_in(ns),
                (None, None) => free_port(),
            },
            dir,
            opts,
            watchdog,
        }
    }

    /// A started cluster with default options.
    pub fn start_new() -> Self {
        let pg = Self::init(PgOpts::default());
        pg.start();
        pg
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) {
        let mut opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            self.port,
            self.dir.path().display()
        );
        for (k, v) in &self.opts.settings {
            opts.push_str(&format!(" -c {k}={v}"));
        }
        let mut ctl = as_pg_user(&pg_bin_dir().join("pg_ctl"));
        if let Some(ns) = &self.opts.netns {
            ctl = node::in_netns(ns, &ctl);
        }
        check(
            ctl.arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.dir.path().join("server.log"))
                .args(["-w", "-t", "60", "-o", &opts, "start"])
                .output(),
            "pg_ctl start",
        );
    }

    /// Stops the server (fast: sessions are disconnected, transactions rolled back).
    pub fn stop(&self) {
        check(
            as_pg_user(&pg_bin_dir().join("pg_ctl"))
                .arg("-D")
                .arg(self.data_dir())
                .args(["-w", "-m", "fast", "stop"])
                .output(),
            "pg_ctl stop",
        );
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Environment for dbinit pointing at this cluster as the superuser.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("POSTGRES_HOST".into(), "127.0.0.1".into()),
            ("POSTGRES_PORT".into(), self.port.to_string()),
            ("POSTGRES_USER".into(), "postgres".into()),
            ("POSTGRES_PASSWORD".into(), PG_PASSWORD.into()),
        ]
    }

    /// Runs SQL with psql as the superuser; returns unaligned, tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self.try_psql(db, sql);
        match out {
            Ok(s) => s,
            Err(e) => panic!("psql {sql:?} on {db:?} failed: {e}"),
        }
    }

    /// The applied migration versions of `db`, in order, comma-separated ("1,2,3"; "" when
    /// none).
    pub fn history(&self, db: &str) -> String {
        self.psql(
            db,
            "SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '') FROM refinery_schema_history",
        )
    }

    /// Waits until a statement containing `needle` is running (a migration in progress).
    pub fn wait_for_query(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let sql = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%{}%' AND pid <> pg_backend_pid()",
            needle.replace('\'', "''")
        );
        while self.psql("postgres", &sql) == "0" {
            assert!(Instant::now() < deadline, "{needle} never started running");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (up to 10 s) until no advisory lock is held: a dead runner's session is gone.
    pub fn assert_no_advisory_lock_soon(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.psql(
            "postgres",
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'",
        ) != "0"
        {
            assert!(
                Instant::now() < deadline,
                "an advisory lock is still held 10 s after the runner died"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Where this machine's psql reaches the server: loopback, or the socket directory of a
    /// server inside the node's network namespace.
    pub fn host(&self) -> String {
        match self.opts.netns {
            Some(_) => self.dir.path().display().to_string(),
            None => "127.0.0.1".to_string(),
        }
    }

    /// Like [`Pg::psql`], returning the error text instead of panicking.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let host = self.host();
        let out = Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", &host])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .env("PGPASSWORD", PG_PASSWORD)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

/// Options for a [`Redis`] server.
#[derive(Debug, Clone, Default)]
pub struct RedisOpts {
    /// `requirepass`.
    pub password: Option<String>,
}

/// A real redis-server owned by one test.
pub struct Redis {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    watchdog: Watchdog,
    dir: tempfile::TempDir,
}

impl Drop for Redis {
    /// A failing test shows the server's log; with `DBINIT_TEST_KEEP=1` the server stays up.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        print_log("Redis", &self.dir.path().join("redis.log"));
        if keep_on_failure() {
            self.watchdog.keep();
            self.dir.disable_cleanup(true);
            eprintln!(
                "DBINIT_TEST_KEEP=1: redis-server kept running on 127.0.0.1:{}, files in {}",
                self.port,
                self.dir.path().display()
            );
        }
    }
}

impl Redis {
    /// Starts redis-server on a free port and waits until it answers.
    pub fn start(opts: RedisOpts) -> Self {
        let bin = which("redis-server").unwrap_or_else(|| {
            panic!("redis-server not found: install Debian's `redis-server` package (make deps)")
        });
        let dir = tempfile::Builder::new()
            .prefix("dbinit-redis-")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let mut conf = format!(
            "port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\nlogfile {}/redis.log\n",
            dir.path().display(),
            dir.path().display()
        );
        if let Some(p) = &opts.password {
            conf.push_str(&format!("requirepass {p}\n"));
        }
        let conf_path = dir.path().join("redis.conf");
        std::fs::write(&conf_path, conf).expect("write redis.conf");
        let watchdog = spawn_guarded(
            &bin,
            &[conf_path.display().to_string()],
            &dir.path().join("redis.out"),
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let mut buf = [0u8; 64];
                if s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).unwrap_or(0) > 0 {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            port,
            watchdog,
            dir,
        }
    }
}

/// Finds a program on PATH (and in /usr/sbin, where Debian puts some servers).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The path of a workspace binary (`dbinit`, `dbinit-job`), built by `make test` before the
/// tests run (`cargo build --workspace --bins`).
pub fn bin(name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(format!(
        "DBINIT_BIN_{}",
        name.to_ascii_uppercase().replace('-', "_")
    )) {
        return p.into();
    }
    // target/<profile>/deps/<test-binary> -> target/<profile>/<name>
    let exe = std::env::current_exe().expect("current_exe");
    let p = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join(name))
        .expect("target dir");
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first (make test does)",
        p.display()
    );
    p
}

/// A finished process: exit code, output, and how long it ran.
#[derive(Debug)]
pub struct Finished {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error (the logs).
    pub stderr: String,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
}

impl Finished {
    /// stdout and stderr together, for "appears nowhere" checks.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A `dbinit`-family command with a clean environment (nothing from the developer's shell
/// leaks in), plain-text logs at info level.
pub fn command(name: &str) -> Command {
    let mut c = Command::new(bin(name));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DBINIT_LOG", "info")
        .stdin(Stdio::null());
    c
}

/// Runs a command to completion, capturing output and wall time.
pub fn run(mut cmd: Command) -> Finished {
    let started = Instant::now();
    let out = cmd.output().expect("spawn");
    Finished {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// Waits for a spawned child with piped output, like [`run`].
pub fn finish(child: Child, started: Instant) -> Finished {
    let out = child.wait_with_output().expect("wait");
    Finished {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}
