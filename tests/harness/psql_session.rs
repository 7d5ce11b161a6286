//! A psql session we feed statements one at a time, to hold a transaction (and its locks)
//! open for as long as a test needs, the way an application's long reader does.

use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{PG_PASSWORD, Pg};

/// A psql session as the superuser, named by its `application_name`.
pub struct PsqlSession {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl PsqlSession {
    /// Connects to `db` of `pg` as `app_name`.
    pub fn open(pg: &Pg, db: &str, app_name: &str) -> Self {
        let mut child = Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-h", &pg.host(), "-p"])
            .arg(pg.port.to_string())
            .args(["-U", "postgres", "-d", db])
            .env("PGPASSWORD", PG_PASSWORD)
            .env("PGAPPNAME", app_name)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn psql");
        let stdin = child.stdin.take();
        Self { child, stdin }
    }

    /// Sends one statement (or psql line).
    pub fn send(&mut self, sql: &str) {
        let stdin = self.stdin.as_mut().expect("session open");
        stdin.write_all(sql.as_bytes()).expect("write to psql");
        stdin.write_all(b"\n").expect("write to psql");
        stdin.flush().expect("flush psql");
    }

    /// Ends the session after what was sent has run.
    pub fn close(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }

    /// Waits (up to 10 s) until a session named `app_name` holds a granted lock on `table`.
    pub fn wait_for_table_lock(pg: &Pg, db: &str, app_name: &str, table: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let sql = format!(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = '{app_name}' AND l.granted AND l.relation = '{table}'::regclass"
        );
        while pg.psql(db, &sql) == "0" {
            assert!(Instant::now() < deadline, "{app_name} never locked {table}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PsqlSession {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
