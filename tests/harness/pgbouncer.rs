//! A real PgBouncer (Debian's `pgbouncer`) in front of a harness [`Pg`], on a free loopback
//! port, in session or transaction pooling mode: the connection pooler many deployments put
//! between the application (and its migrations) and PostgreSQL.
//!
//! It runs in the foreground under a watchdog, like the other servers, so it dies with the
//! test. PgBouncer refuses to run as root: as root it is started with `-u postgres`, and
//! every file it reads lives in a directory owned by that user. The Unix socket is off.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{PG_PASSWORD, Pg, Watchdog, chown_to_postgres, free_port, running_as_root, which};

/// How PgBouncer hands server connections to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// A client keeps one server connection for as long as it is connected.
    Session,
    /// A client gets a server connection per transaction; session state (SET, session
    /// advisory locks) stays behind on a server connection other clients then use.
    Transaction,
}

impl PoolMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Transaction => "transaction",
        }
    }
}

/// A running PgBouncer owned by one test.
pub struct PgBouncer {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    watchdog: Watchdog,
}

impl Drop for PgBouncer {
    /// A failing test shows PgBouncer's log.
    fn drop(&mut self) {
        if std::thread::panicking() {
            crate::print_log("PgBouncer", &self.log_path());
        }
        self.watchdog.fire();
    }
}

impl PgBouncer {
    /// Starts PgBouncer in front of `pg` (every database, the harness superuser with its
    /// password over SCRAM on both sides) with `pool_size` server connections per database
    /// and user, and waits until it accepts connections.
    pub fn start(pg: &Pg, mode: PoolMode, pool_size: u32) -> Self {
        let bin = which("pgbouncer").unwrap_or_else(|| {
            panic!("pgbouncer not found: install Debian's `pgbouncer` package (make deps)")
        });
        let dir = tempfile::Builder::new()
            .prefix("dbinit-pgbouncer-")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let d = dir.path();
        std::fs::write(
            d.join("userlist.txt"),
            format!("\"postgres\" \"{PG_PASSWORD}\"\n"),
        )
        .expect("write userlist");
        let ini = format!(
            "[databases]\n* = host=127.0.0.1 port={pg_port}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\nauth_type = scram-sha-256\nauth_file = {dir}/userlist.txt\npool_mode = {mode}\ndefault_pool_size = {pool_size}\nmax_client_conn = 500\nignore_startup_parameters = extra_float_digits\nadmin_users = postgres\nserver_login_retry = 1\nquery_wait_timeout = 30\n",
            pg_port = pg.port,
            dir = d.display(),
            mode = mode.as_str(),
        );
        let ini_path = d.join("pgbouncer.ini");
        std::fs::write(&ini_path, ini).expect("write pgbouncer.ini");
        chown_to_postgres(d);
        let mut args = Vec::new();
        if running_as_root() {
            args.extend(["-u".to_string(), "postgres".to_string()]);
        }
        args.push(ini_path.display().to_string());
        let watchdog = crate::spawn_guarded(&bin, &args, &d.join("pgbouncer.log"));
        let this = Self {
            port,
            dir,
            watchdog,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "pgbouncer did not listen on {port}:\n{}",
                crate::log_tail(&this.log_path(), 40)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        this
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("pgbouncer.log")
    }

    /// Environment for dbinit connecting through PgBouncer as the superuser.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("POSTGRES_HOST".into(), "127.0.0.1".into()),
            ("POSTGRES_PORT".into(), self.port.to_string()),
            ("POSTGRES_USER".into(), "postgres".into()),
            ("POSTGRES_PASSWORD".into(), PG_PASSWORD.into()),
            // PgBouncer speaks no TLS here.
            ("POSTGRES_SSLMODE".into(), "disable".into()),
        ]
    }

    /// Runs an admin console command (`SHOW POOLS`, `SHOW SERVERS`); returns psql's
    /// unaligned output.
    pub fn admin(&self, command: &str) -> String {
        let out = Command::new("psql")
            .args(["-X", "-q", "-A", "-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d", "pgbouncer", "-c", command])
            .env("PGPASSWORD", PG_PASSWORD)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "pgbouncer admin {command:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// PgBouncer's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}
