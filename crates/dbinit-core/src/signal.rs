//! The shutdown signals that end a run: SIGTERM (Kubernetes stopping the pod) and SIGINT
//! (Ctrl-C). A leaf, so the error that names the signal and the loop that waits for it need
//! not import the command line.

/// A signal that ends a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: Kubernetes stopping the pod.
    Term,
    /// SIGINT: Ctrl-C.
    Int,
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Term => "SIGTERM",
            Self::Int => "SIGINT",
        })
    }
}

/// Resolves when SIGTERM or SIGINT arrives, naming it.
pub async fn shutdown_signal() -> Signal {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the default disposition (terminate) still applies.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => Signal::Term,
        _ = int.recv() => Signal::Int,
    }
}
