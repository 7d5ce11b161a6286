//! Running the migration command as a child process: no shell, in a process group of its
//! own; its stdout and stderr passed through line by line (scrubbed of the password), the
//! last stderr lines kept for the report; SIGTERM/SIGINT to dbinit forwarded to the whole
//! group, which is killed after a grace period; a run past its timeout stopped the same way.
//! However dbinit leaves (a lost Lease drops the future, a panic), the group is killed:
//! a migration must never go on without the lock that let it start.

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::{Pid, Signal as Sig, kill_process_group};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::secret::{Secret, scrub};
use crate::signal::{Listener, Signal};

/// How many stderr lines are kept for the report.
pub const TAIL_LINES: usize = 20;

/// The longest stderr line kept for the report (the whole line is still passed through).
const TAIL_LINE_MAX: usize = 400;

/// What to run and how.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The program, found on PATH.
    pub program: PathBuf,
    /// Its arguments, `$(DATABASE_URL)` expanded.
    pub args: Vec<String>,
    /// Variables set on top of dbinit's own environment.
    pub env: Vec<(&'static str, Secret)>,
    /// How long the child may take to exit after SIGTERM before the group is killed.
    pub grace: Duration,
    /// How long the child may run (`DBINIT_MIGRATE_TIMEOUT`), if limited.
    pub timeout: Option<Duration>,
    /// Scrubbed from every line passed through and kept.
    pub secrets: Vec<Secret>,
}

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it.
    Signalled(i32),
}

impl End {
    fn of(s: std::process::ExitStatus) -> Self {
        match (s.code(), s.signal()) {
            (Some(c), _) => Self::Exited(c),
            (None, Some(sig)) => Self::Signalled(sig),
            (None, None) => Self::Exited(-1),
        }
    }

    /// Exit status 0.
    pub fn success(self) -> bool {
        self == Self::Exited(0)
    }
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exited(c) => write!(f, "exited with status {c}"),
            Self::Signalled(s) => write!(f, "was killed by signal {} ({s})", signal_name(*s)),
        }
    }
}

/// Why dbinit stopped the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// dbinit received this signal and forwarded it.
    Signal(Signal),
    /// It ran past its timeout.
    Timeout(Duration),
}

/// How a run of the child went.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How it ended.
    pub end: End,
    /// Whether dbinit stopped it, and why.
    pub stopped: Option<Stop>,
    /// Whether it outlived the grace period and its group was killed.
    pub killed: bool,
    /// Its last stderr lines (its last stdout lines when it wrote nothing to stderr, as
    /// sqlx-cli prints its errors on stdout), scrubbed.
    pub tail: Tail,
    /// How long it ran.
    pub elapsed: Duration,
}

/// The last lines a child wrote, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tail {
    /// The lines, oldest first.
    pub lines: Vec<String>,
    /// Whether they are stdout's: the child wrote nothing to stderr.
    pub from_stdout: bool,
}

impl std::fmt::Display for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.lines.is_empty(), self.from_stdout) {
            (true, _) => f.write_str(" (it wrote nothing)"),
            (false, false) => write!(f, "; its last stderr lines: {}", self.lines.join(" | ")),
            (false, true) => write!(
                f,
                "; its last output lines (nothing on stderr): {}",
                self.lines.join(" | ")
            ),
        }
    }
}

/// The name of a signal number, as `kill -l` says it.
pub fn signal_name(n: i32) -> &'static str {
    const NAMES: [&str; 32] = [
        "?",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    usize::try_from(n)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("a real-time signal")
}

/// Kills the child's process group when dropped, unless disarmed: the child never outlives
/// the code that holds the lock for it.
struct Group(Option<Pid>);

impl Group {
    fn signal(&self, sig: Sig) {
        if let Some(pid) = self.0 {
            // ESRCH: the group is gone already.
            let _ = kill_process_group(pid, sig);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(Sig::KILL);
    }
}

/// Passes `stream` through to dbinit's own stdout or stderr line by line, scrubbed; the
/// last lines also go into `tail`.
async fn pass_through(
    stream: impl AsyncRead + Unpin,
    to_stderr: bool,
    secrets: Arc<Vec<Secret>>,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    use std::io::Write;
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = scrub(line.trim_end_matches(['\n', '\r']), secrets.iter());
        let _ = if to_stderr {
            writeln!(std::io::stderr().lock(), "{line}")
        } else {
            writeln!(std::io::stdout().lock(), "{line}")
        };
        if let Ok(mut t) = tail.lock() {
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(crate::text::truncate(&line, TAIL_LINE_MAX).to_string());
        }
    }
}

/// Runs the child to its end. Signals arriving through `signals` are forwarded to its
/// group; a second one, or the end of the grace period, kills the group.
pub async fn run(spec: &Spec, signals: &mut Listener) -> std::io::Result<Outcome> {
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v.expose())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    let group = Group(child.id().and_then(|id| Pid::from_raw(id as i32)));
    let secrets = Arc::new(spec.secrets.clone());
    let out_tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
    let err_tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(tokio::spawn(pass_through(
            out,
            false,
            secrets.clone(),
            out_tail.clone(),
        )));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(tokio::spawn(pass_through(
            err,
            true,
            secrets,
            err_tail.clone(),
        )));
    }
    let deadline = spec.timeout.map(|t| started + t);
    let timeout = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    let mut stopped = None;
    let status = tokio::select! {
        s = child.wait() => Some(s?),
        sig = signals.recv() => {
            info!(signal = %sig, grace_s = spec.grace.as_secs_f64(), "forwarding the signal to the migration command");
            group.signal(if sig == Signal::Int { Sig::INT } else { Sig::TERM });
            stopped = Some(Stop::Signal(sig));
            None
        }
        () = timeout => {
            let t = spec.timeout.unwrap_or_default();
            warn!(timeout_s = t.as_secs_f64(), "the migration command ran past DBINIT_MIGRATE_TIMEOUT; stopping it");
            group.signal(Sig::TERM);
            stopped = Some(Stop::Timeout(t));
            None
        }
    };
    let mut killed = false;
    let status = match status {
        Some(s) => s,
        None => {
            let grace = tokio::time::sleep(spec.grace);
            tokio::select! {
                s = child.wait() => s?,
                () = grace => {
                    warn!("the migration command outlived the grace period (DBINIT_CHILD_GRACE); killing its process group");
                    killed = true;
                    group.signal(Sig::KILL);
                    child.wait().await?
                }
                _ = signals.recv() => {
                    warn!("second signal; killing the migration command's process group");
                    killed = true;
                    group.signal(Sig::KILL);
                    child.wait().await?
                }
            }
        }
    };
    let elapsed = started.elapsed();
    // Whatever the child left in its group (a background process holding the pipes or a
    // connection) goes with it.
    drop(group);
    for r in readers {
        let _ = tokio::time::timeout(Duration::from_secs(5), r).await;
    }
    let lines = |t: &Arc<Mutex<VecDeque<String>>>| -> Vec<String> {
        t.lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    };
    let stderr = lines(&err_tail);
    let tail = if stderr.is_empty() {
        Tail {
            lines: lines(&out_tail),
            from_stdout: true,
        }
    } else {
        Tail {
            lines: stderr,
            from_stdout: false,
        }
    };
    Ok(Outcome {
        end: End::of(status),
        stopped,
        killed,
        tail,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(script: &str) -> Spec {
        Spec {
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            env: vec![("DBINIT_TEST_VAR", Secret::new("s3cret-value"))],
            grace: Duration::from_secs(5),
            timeout: None,
            secrets: vec![Secret::new("s3cret-value")],
        }
    }

    #[tokio::test]
    async fn exit_status_env_and_a_scrubbed_tail() {
        let mut l = Listener::new();
        let o = run(&spec("echo out; i=0; while [ $i -lt 30 ]; do echo \"line $i $DBINIT_TEST_VAR\" >&2; i=$((i+1)); done; exit 3"), &mut l)
            .await
            .expect("ran");
        assert_eq!(o.end, End::Exited(3));
        assert_eq!(o.tail.lines.len(), TAIL_LINES);
        assert_eq!(o.tail.lines.last().map(String::as_str), Some("line 29 ***"));
        assert!(!o.tail.from_stdout);
        // Nothing on stderr: stdout's last lines (sqlx-cli prints its errors there).
        let o = run(
            &spec("echo 'error: while executing migration 3'; exit 1"),
            &mut l,
        )
        .await
        .expect("ran");
        assert_eq!(o.tail.lines, ["error: while executing migration 3"]);
        assert!(
            o.tail
                .to_string()
                .contains("last output lines (nothing on stderr)")
        );
        assert!(o.stopped.is_none() && !o.killed);
    }

    #[tokio::test]
    async fn a_signal_kills_it_and_is_named() {
        let mut l = Listener::new();
        let o = run(&spec("kill -9 $$"), &mut l).await.expect("ran");
        assert_eq!(o.end, End::Signalled(9));
        assert_eq!(o.end.to_string(), "was killed by signal SIGKILL (9)");
    }

    #[tokio::test]
    async fn the_timeout_stops_the_group() {
        let mut l = Listener::new();
        let mut s = spec("trap 'echo term >&2; exit 7' TERM; sleep 30 & wait");
        s.timeout = Some(Duration::from_millis(200));
        let o = run(&s, &mut l).await.expect("ran");
        assert_eq!(o.stopped, Some(Stop::Timeout(Duration::from_millis(200))));
        assert_eq!(o.end, End::Exited(7));
        assert!(!o.killed);
        // Past the grace period: killed.
        let mut s = spec("trap '' TERM; sleep 30 & wait; sleep 30");
        s.timeout = Some(Duration::from_millis(100));
        s.grace = Duration::from_millis(200);
        let o = run(&s, &mut l).await.expect("ran");
        assert!(o.killed);
        assert_eq!(o.end, End::Signalled(9));
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(40), "a real-time signal");
    }
}
