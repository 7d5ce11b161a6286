//! Waiting, done once: exponential backoff with jitter, how a failed attempt is classified,
//! and [`poll`], the one loop behind every wait in dbinit (dependencies, the advisory lock,
//! another runner's migrations, the Kubernetes Lease, a busy `CREATE DATABASE` template).

use std::future::Future;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

/// Delays between attempts: `initial * 2^n`, capped at `max`, each drawn uniformly from
/// `[d/2, d]` ("equal jitter") so a hundred pods that start together do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay, before jitter.
    pub initial: Duration,
    /// The largest delay, before jitter.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        }
    }
}

impl Backoff {
    /// The un-jittered delay after `attempt` failures (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        self.initial
            .saturating_mul(1u32 << exp)
            .min(self.max)
            .max(Duration::from_millis(1))
    }

    /// The delay after `attempt` failures, jittered into `[ceiling/2, ceiling]`.
    pub fn delay(&self, attempt: u32, rng: &mut Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        let span = (ceiling - half).as_nanos() as u64;
        half + Duration::from_nanos(if span == 0 {
            0
        } else {
            rng.next_u64() % (span + 1)
        })
    }
}

/// A small xorshift generator seeded from the OS (through `RandomState`); jitter needs
/// spread, not cryptographic quality, and this keeps a dependency out.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator with a random seed.
    pub fn new() -> Self {
        let seed = RandomState::new().build_hasher().finish();
        Self(seed | 1)
    }

    /// A generator with a fixed seed, for tests.
    pub fn seeded(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

impl Default for Rng {
    fn default() -> Self {
        Self::new()
    }
}

/// How a failed attempt at a dependency should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Retry with backoff: the server is not up yet, or the network blinked.
    Transient,
    /// The database we connected to does not exist (3D000).
    MissingDatabase,
    /// Bad credentials, no permission, TLS mismatch: fail fast with exit 4.
    Refused,
    /// Anything else the server said: fail, exit 1.
    Other,
}

/// What one look at a condition found; the caller's step returns it to [`poll`].
#[derive(Debug)]
pub enum Step<T, E, W> {
    /// Finished: [`poll`] returns this value.
    Done(T),
    /// Not yet: sleep the next backoff delay, then look again. `W` says what is awaited.
    Wait(W),
    /// Not yet, and the step itself already waited (it watched for a change): look again
    /// at once.
    Again(W),
    /// Give up now with this error.
    Fail(E),
}

/// What [`poll`] tells a step about the look it is taking.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    /// 1-based number of this look.
    pub attempt: u32,
    /// Time left until the deadline; a step bounds its own calls by it.
    pub left: Duration,
    /// Whether a progress line is due should this look not finish, so a step can gather
    /// details for it (who holds a lock) only when they will be shown.
    pub reporting: bool,
}

/// What the progress callback of [`poll`] is told.
#[derive(Debug)]
pub struct Progress<'a, W> {
    /// Looks taken so far.
    pub attempt: u32,
    /// Time since the wait began.
    pub waited: Duration,
    /// Pause before the next look.
    pub retry_in: Duration,
    /// What the last look said is still awaited.
    pub awaited: &'a W,
}

/// Why [`poll`] stopped without a value.
#[derive(Debug)]
pub enum PollError<E, W> {
    /// A step failed.
    Failed(E),
    /// The deadline passed while still waiting.
    Deadline {
        /// What the last look said was still awaited.
        last: W,
        /// Looks taken.
        attempts: u32,
        /// Time since the wait began.
        waited: Duration,
    },
}

/// How [`poll`] paces its looks and its progress lines.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Give up after this instant.
    pub deadline: Instant,
    /// Pause after a [`Step::Wait`].
    pub backoff: Backoff,
    /// A progress line at most this often (zero: after every look that did not finish).
    pub report_every: Duration,
}

/// The one wait loop: calls `step` until it is done or fails or `pace.deadline` passes,
/// pausing a jittered backoff between looks and calling `progress` at most every
/// `pace.report_every` while it waits.
pub async fn poll<T, E, W, S, F>(
    pace: Pace,
    mut step: S,
    mut progress: impl FnMut(Progress<'_, W>),
) -> Result<T, PollError<E, W>>
where
    S: FnMut(Tick) -> F,
    F: Future<Output = Step<T, E, W>>,
{
    let started = Instant::now();
    let mut rng = Rng::new();
    let mut next_report = started;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let now = Instant::now();
        let tick = Tick {
            attempt,
            left: pace.deadline.saturating_duration_since(now),
            reporting: now >= next_report,
        };
        let (awaited, pause) = match step(tick).await {
            Step::Done(v) => return Ok(v),
            Step::Fail(e) => return Err(PollError::Failed(e)),
            Step::Wait(w) => (w, true),
            Step::Again(w) => (w, false),
        };
        let now = Instant::now();
        let left = pace.deadline.saturating_duration_since(now);
        if left.is_zero() {
            return Err(PollError::Deadline {
                last: awaited,
                attempts: attempt,
                waited: started.elapsed(),
            });
        }
        let delay = if pause {
            pace.backoff.delay(attempt, &mut rng).min(left)
        } else {
            Duration::ZERO
        };
        if now >= next_report {
            progress(Progress {
                attempt,
                waited: started.elapsed(),
                retry_in: delay,
                awaited: &awaited,
            });
            next_report = now + pace.report_every;
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

/// What one attempt at reaching a dependency concluded.
#[derive(Debug)]
pub enum Attempt<E> {
    /// Worth retrying: refused, reset, DNS, "the database system is starting up".
    Transient(E),
    /// Retrying cannot help: bad password, missing database, TLS mismatch.
    Permanent(E),
}

/// Calls `attempt` until it succeeds, fails permanently, or `deadline` passes, through
/// [`poll`], logging one line per failed attempt with its reason. `attempt` receives the time
/// it may take, so no single try overruns the deadline.
pub async fn retry_until<T, E, F, Fut>(
    what: &str,
    deadline: Instant,
    backoff: Backoff,
    mut attempt: F,
) -> Result<T, PollError<E, E>>
where
    E: std::fmt::Display,
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<T, Attempt<E>>>,
{
    let pace = Pace {
        deadline,
        backoff,
        report_every: Duration::ZERO,
    };
    let step = |tick: Tick| {
        let fut = attempt(tick.left);
        async move {
            match fut.await {
                Ok(v) => Step::Done(v),
                Err(Attempt::Transient(e)) => Step::Wait(e),
                Err(Attempt::Permanent(e)) => Step::Fail(e),
            }
        }
    };
    poll(pace, step, |p| {
        warn!(
            dependency = what,
            attempt = p.attempt,
            retry_in_ms = p.retry_in.as_millis() as u64,
            reason = %p.awaited,
            "{what} not ready, retrying"
        );
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let got: Vec<u128> = (1..=6).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
        // Huge attempt numbers neither overflow nor exceed the cap.
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_half_and_full_ceiling() {
        let b = Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(2),
        };
        let mut rng = Rng::seeded(42);
        for n in 1..40 {
            let c = b.ceiling(n);
            for _ in 0..200 {
                let d = b.delay(n, &mut rng);
                assert!(
                    d >= c / 2 && d <= c,
                    "attempt {n}: {d:?} outside [{:?}, {c:?}]",
                    c / 2
                );
            }
        }
    }

    #[test]
    fn jitter_spreads_values() {
        let b = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(1),
        };
        let mut rng = Rng::seeded(7);
        let mut seen: Vec<Duration> = (0..50).map(|_| b.delay(1, &mut rng)).collect();
        seen.sort();
        seen.dedup();
        assert!(
            seen.len() > 40,
            "jitter should rarely repeat: {}",
            seen.len()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retry_stops_at_permanent_error() {
        let mut calls = 0;
        let r: Result<(), _> = retry_until(
            "thing",
            Instant::now() + Duration::from_secs(60),
            Backoff::default(),
            |_| {
                calls += 1;
                let c = calls;
                async move {
                    if c < 3 {
                        Err(Attempt::Transient("refused"))
                    } else {
                        Err(Attempt::Permanent("bad password"))
                    }
                }
            },
        )
        .await;
        assert!(matches!(r, Err(PollError::Failed("bad password"))));
        assert_eq!(calls, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_gives_up_at_deadline() {
        let start = Instant::now();
        let r: Result<(), _> = retry_until(
            "thing",
            start + Duration::from_secs(3),
            Backoff::default(),
            |_| async { Err(Attempt::Transient("refused")) },
        )
        .await;
        match r {
            Err(PollError::Deadline { last, attempts, .. }) => {
                assert_eq!(last, "refused");
                assert!(attempts > 2);
            }
            other => panic!("unexpected {other:?}"),
        }
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(3) && waited < Duration::from_millis(3100));
    }

    #[tokio::test(start_paused = true)]
    async fn poll_reports_at_most_every_interval_and_again_does_not_sleep() {
        let start = Instant::now();
        let mut reports = Vec::new();
        let mut looks = 0;
        let r: Result<u32, PollError<(), u32>> = poll(
            Pace {
                deadline: start + Duration::from_secs(60),
                backoff: Backoff {
                    initial: Duration::from_millis(100),
                    max: Duration::from_millis(100),
                },
                report_every: Duration::from_secs(1),
            },
            |tick| {
                looks += 1;
                let n = looks;
                async move {
                    match n {
                        30 => Step::Done(tick.attempt),
                        n if n % 2 == 0 => Step::Again(n),
                        n => Step::Wait(n),
                    }
                }
            },
            |p| reports.push((p.waited, *p.awaited)),
        )
        .await;
        assert_eq!(r.expect("done"), 30);
        // 15 pauses of 50-100 ms: between 0.75 and 1.5 s, so one or two reports.
        assert!((1..=2).contains(&reports.len()), "{reports:?}");
        assert_eq!(reports[0].1, 1, "the first look that waits is reported");
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(750) && took <= Duration::from_millis(1500));
    }
}
