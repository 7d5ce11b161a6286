//! How a run ends: exit code, scrubbed error line, and the Kubernetes termination message.

use std::io::Write;
use std::path::Path;

use tracing::{debug, error, info};

use crate::config::OutcomeArgs;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::secret::{Secret, scrub};
use crate::text::elide_middle;

/// Where Kubernetes reads a container's last words (`kubectl describe pod` shows them).
pub const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// Writes `line` to the termination-message file; never fails the run over it.
pub fn write_termination_message(args: &OutcomeArgs, line: &str) {
    let (path, create) = match &args.termination_message_path {
        Some(p) => (p.as_path(), true),
        None => (Path::new(DEFAULT_TERMINATION_MESSAGE_PATH), false),
    };
    // Kubernetes keeps at most 4096 bytes; the end (a command's last stderr lines) matters.
    let line = elide_middle(line, 4096);
    let res = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .create(create)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = res {
        debug!(path = %path.display(), error = %e, "termination message not written");
    }
}

/// Logs the end of a run and writes the termination message; returns the exit code.
/// Every message is scrubbed of `secrets` first.
pub fn finish(result: Result<String, Error>, args: &OutcomeArgs, secrets: &[&Secret]) -> ExitCode {
    match result {
        Ok(summary) => {
            let summary = scrub(&summary, secrets.iter().copied());
            info!(exit_code = 0, "{summary}");
            write_termination_message(args, &format!("ok: {summary}"));
            ExitCode::Ok
        }
        Err(e) => {
            let code = e.exit_code();
            let msg = scrub(&e.render(), secrets.iter().copied());
            error!(exit_code = code as u8, kind = code.as_str(), "{msg}");
            write_termination_message(
                args,
                &format!("{} (exit {}): {msg}", code.as_str(), code as u8),
            );
            code
        }
    }
}
