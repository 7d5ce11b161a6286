//! Exponential backoff with jitter, and the retry loop every dependency wait shares.

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

/// What one attempt at reaching a dependency concluded.
#[derive(Debug)]
pub enum Attempt<E> {
    /// Worth retrying: refused, reset, DNS, "the database system is starting up".
    Transient(E),
    /// Retrying cannot help: bad password, missing database, TLS mismatch.
    Permanent(E),
}

/// Why [`retry_until`] gave up.
#[derive(Debug)]
pub enum GaveUp<E> {
    /// A permanent error; returned at once.
    Permanent(E),
    /// The deadline passed; carries the last transient error and the attempt count.
    Deadline {
        /// The last error seen.
        last: E,
        /// How many attempts were made.
        attempts: u32,
    },
}

/// Calls `attempt` until it succeeds, fails permanently, or `deadline` passes, sleeping a
/// jittered backoff in between and logging one line per failed attempt with its reason.
/// `attempt` receives the time it may take, so no single try overruns the deadline.
pub async fn retry_until<T, E, F, Fut>(
    what: &str,
    deadline: Instant,
    backoff: Backoff,
    mut attempt: F,
) -> Result<T, GaveUp<E>>
where
    E: std::fmt::Display,
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<T, Attempt<E>>>,
{
    let mut rng = Rng::new();
    let mut n = 0u32;
    loop {
        n += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let err = match attempt(left).await {
            Ok(v) => return Ok(v),
            Err(Attempt::Permanent(e)) => return Err(GaveUp::Permanent(e)),
            Err(Attempt::Transient(e)) => e,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(GaveUp::Deadline {
                last: err,
                attempts: n,
            });
        }
        let delay = backoff.delay(n, &mut rng).min(left);
        warn!(
            dependency = what,
            attempt = n,
            retry_in_ms = delay.as_millis() as u64,
            reason = %err,
            "{what} not ready, retrying"
        );
        tokio::time::sleep(delay).await;
    }
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
        assert!(matches!(r, Err(GaveUp::Permanent("bad password"))));
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
            Err(GaveUp::Deadline { last, attempts }) => {
                assert_eq!(last, "refused");
                assert!(attempts > 2);
            }
            other => panic!("unexpected {other:?}"),
        }
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(3) && waited < Duration::from_millis(3100));
    }
}
