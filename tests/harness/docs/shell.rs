//! A reader's shell for the blocks the docs tests run: each command of a block exactly as
//! written, one after the other in one `bash` (so `export` and `cd` carry on, as they do for
//! the reader), with the built `dbinit` and `dbinit-job` on PATH and nothing of the test's
//! environment but PATH and HOME, plus what the page tells the reader to have set. Every
//! command must exit 0, or the code its own comment announces (`dbinit plan   # exit 9: ...`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Docs;
use crate::node::repo_root;

/// What a block's run did.
#[derive(Debug)]
pub struct Ran {
    /// Standard output of the whole block.
    pub stdout: String,
    /// Standard error of the whole block.
    pub stderr: String,
    /// Each command as written, with its exit code.
    pub codes: Vec<(String, i32)>,
    /// Wall time of the block.
    pub elapsed: Duration,
}

/// A reader's shell (see the module's docs).
#[derive(Debug, Clone)]
pub struct DocShell {
    env: Vec<(String, String)>,
    cwd: PathBuf,
    netns: Option<String>,
    timeout: Duration,
}

impl Default for DocShell {
    fn default() -> Self {
        Self::new()
    }
}

/// The code a command's trailing comment says it exits with (`# exit 9: ...`), else 0.
pub fn expected_code(command: &str) -> i32 {
    command
        .rsplit_once("# exit ")
        .and_then(|(_, rest)| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Whether bash reads `text` as complete commands (no open quote, group or here-document).
fn complete(text: &str) -> bool {
    Command::new("bash")
        .args(["-n", "-c", text])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The block's commands as bash reads them: a command spans lines while it is incomplete
/// (`\` continuations, `|| {` ... `}` groups); lines that hold only a comment are dropped.
pub fn shell_commands(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in block.lines() {
        if cur.is_empty() && (line.trim().is_empty() || line.trim_start().starts_with('#')) {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if !line.ends_with('\\') && complete(&cur) {
            out.push(std::mem::take(&mut cur).trim_end().to_string());
        }
    }
    assert!(
        cur.trim().is_empty(),
        "a block ends inside an unfinished command:\n{cur}"
    );
    out
}

impl DocShell {
    /// A shell in the repository root with the built binaries on PATH.
    pub fn new() -> Self {
        let bins = crate::bin("dbinit")
            .parent()
            .map(Path::to_path_buf)
            .expect("binary directory");
        let path = format!(
            "{}:{}",
            bins.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut env = vec![("PATH".to_string(), path)];
        // A reader's own toolchain settings (a `make build` in a block must not rebuild
        // what the test tier built); none of the variables `cargo test` gives a test.
        for k in [
            "HOME",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "RUSTUP_HOME",
            "RUSTUP_TOOLCHAIN",
        ] {
            if let Ok(v) = std::env::var(k) {
                env.push((k.to_string(), v));
            }
        }
        Self {
            env,
            cwd: repo_root(),
            netns: None,
            timeout: Duration::from_secs(300),
        }
    }

    /// Sets a variable the page tells the reader to have set.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Sets every variable of `vars`.
    pub fn set_all(&mut self, vars: impl IntoIterator<Item = (String, String)>) -> &mut Self {
        for (k, v) in vars {
            self.set(&k, v);
        }
        self
    }

    /// Runs in `dir` instead of the repository root.
    pub fn cwd(&mut self, dir: &Path) -> &mut Self {
        self.cwd = dir.to_path_buf();
        self
    }

    /// Runs inside the network namespace at `path` (`/proc/PID/ns/net`).
    pub fn netns(&mut self, path: &str) -> &mut Self {
        self.netns = Some(path.to_string());
        self
    }

    /// Kills the block after `t` (default 300 s).
    pub fn timeout(&mut self, t: Duration) -> &mut Self {
        self.timeout = t;
        self
    }

    /// Runs block `name` of README/docs; panics, with the block's place and output, when a
    /// command exits with another code than it announces.
    pub fn run_block(&self, docs: &Docs, name: &str) -> Ran {
        let block = docs.find(name);
        let ran = self.run_text(&block.body);
        ran.unwrap_or_else(|e| panic!("block {name} ({}): {e}", block.at()))
    }

    /// Runs shell text as [`DocShell::run_block`] does; `Err` says which command failed.
    pub fn run_text(&self, text: &str) -> Result<Ran, String> {
        let commands = shell_commands(text);
        let rc = tempfile::NamedTempFile::new().expect("tmp");
        let mut script = String::from("set -uo pipefail\n");
        for (i, c) in commands.iter().enumerate() {
            script.push_str(c);
            script.push_str(&format!(
                "\n__rc=$?; echo \"{i} $__rc\" >>'{}'; [ \"$__rc\" -eq {} ] || exit 97\n",
                rc.path().display(),
                expected_code(c)
            ));
        }
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={ns}")).arg("timeout");
                c
            }
            None => Command::new("timeout"),
        };
        let started = Instant::now();
        let out = cmd
            .args(["-k", "5", &self.timeout.as_secs().max(1).to_string()])
            .args(["bash", "-c", &script])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .output()
            .expect("run bash");
        let codes: Vec<(String, i32)> = std::fs::read_to_string(rc.path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (i, code) = l.split_once(' ')?;
                Some((
                    commands.get(i.parse::<usize>().ok()?)?.clone(),
                    code.parse().ok()?,
                ))
            })
            .collect();
        let ran = Ran {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            codes,
            elapsed: started.elapsed(),
        };
        if out.status.success() && ran.codes.len() == commands.len() {
            return Ok(ran);
        }
        let what = match ran.codes.last() {
            Some((c, code)) if *code != expected_code(c) => {
                format!("`{c}` exited {code}, expected {}", expected_code(c))
            }
            _ => format!(
                "`{}` ended the shell ({:?}, after {:?})",
                commands.get(ran.codes.len()).map_or("?", String::as_str),
                out.status,
                ran.elapsed
            ),
        };
        Err(format!(
            "{what}\n--- stdout\n{}\n--- stderr\n{}",
            ran.stdout, ran.stderr
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_what_bash_reads_as_complete() {
        let c = shell_commands(
            "# setup\nexport A=1\nls \\\n  -l\ndbinit status > s.json || {\n  code=$?; exit $code; }\n\n",
        );
        assert_eq!(
            c,
            vec![
                "export A=1",
                "ls \\\n  -l",
                "dbinit status > s.json || {\n  code=$?; exit $code; }"
            ]
        );
    }

    #[test]
    fn a_comment_announces_the_exit_code() {
        assert_eq!(expected_code("dbinit plan   # exit 9: found Alembic"), 9);
        assert_eq!(expected_code("dbinit run    # applies V8"), 0);
    }
}
