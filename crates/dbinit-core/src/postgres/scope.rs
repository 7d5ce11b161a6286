//! Connections that end with the work that opened them. A driver task keeps its socket open
//! for as long as a query is in flight, even after its client was dropped: a run abandoned
//! mid-statement (its Lease lost, a signal) would keep its transaction, and that
//! transaction's locks, open on the server until the process exits. Every connection opened
//! inside [`ConnScope::run`] registers its driver; dropping the scope aborts them all, which
//! closes their sockets at once, so the server ends those sessions and rolls back (dbinit's
//! migration sessions set `client_connection_check_interval`, so even a backend waiting for a
//! lock notices within a second).

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::task::AbortHandle;

type Drivers = Arc<Mutex<Vec<AbortHandle>>>;

tokio::task_local! {
    static SCOPE: Drivers;
}

/// The drivers of the connections opened inside [`ConnScope::run`]; aborted when dropped.
#[derive(Debug, Default)]
pub struct ConnScope {
    drivers: Drivers,
}

fn lock(d: &Drivers) -> MutexGuard<'_, Vec<AbortHandle>> {
    d.lock().unwrap_or_else(|e| e.into_inner())
}

impl ConnScope {
    /// Runs `work`; every connection it opens belongs to this scope.
    pub async fn run<F: Future>(&self, work: F) -> F::Output {
        SCOPE.scope(self.drivers.clone(), work).await
    }
}

impl Drop for ConnScope {
    fn drop(&mut self) {
        for h in lock(&self.drivers).drain(..) {
            h.abort();
        }
    }
}

/// Registers a connection's driver task with the scope being run, if any.
pub(super) fn register(driver: AbortHandle) {
    let _ = SCOPE.try_with(|d| {
        let mut v = lock(d);
        v.retain(|h| !h.is_finished());
        v.push(driver);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropping_the_scope_aborts_what_ran_inside_it() {
        let scope = ConnScope::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut task = None;
        scope
            .run(async {
                let t = tokio::spawn(async move {
                    let _tx = tx;
                    std::future::pending::<()>().await
                });
                register(t.abort_handle());
                task = Some(t);
            })
            .await;
        let task = task.expect("spawned");
        let outside = tokio::spawn(std::future::pending::<()>());
        register(outside.abort_handle()); // not inside a scope: left alone
        drop(scope);
        assert!(task.await.is_err_and(|e| e.is_cancelled()));
        assert!(rx.await.is_err(), "the aborted task dropped what it held");
        assert!(!outside.is_finished());
        outside.abort();
    }
}
