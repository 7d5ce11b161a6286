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

/// SIGTERM and SIGINT, listened to from its creation on: a signal that arrives between two
/// awaits is kept for the next [`Listener::recv`] (a fresh [`shutdown_signal`] would miss it).
/// For flows that outlive one `select!`, such as a migration command's child process.
pub struct Listener {
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Listener {
    /// Starts listening. Without signal handlers (which only fails when the runtime has no
    /// signal driver) [`Listener::recv`] never resolves and the default disposition applies.
    pub fn new() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Self {
            streams: signal(SignalKind::terminate())
                .and_then(|t| Ok((t, signal(SignalKind::interrupt())?)))
                .ok(),
        }
    }

    /// Resolves with the next signal (or one that arrived since the last call).
    pub async fn recv(&mut self) -> Signal {
        let Some((term, int)) = &mut self.streams else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => Signal::Term,
            _ = int.recv() => Signal::Int,
        }
    }
}

impl Default for Listener {
    fn default() -> Self {
        Self::new()
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
