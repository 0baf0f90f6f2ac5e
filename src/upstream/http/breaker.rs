//! The HTTP upstream's circuit breaker (one per process, so per replica).
//!
//! - **closed**: requests pass; `threshold` consecutive failures (connect
//!   errors, timeouts, upstream 5xx) open it;
//! - **open**: for `cooldown`, requests are refused at once (503 with
//!   `Retry-After`, see [`Rejected`]) without touching the upstream;
//! - **half-open**: after the cool-down one request goes through as a probe
//!   while the others are still refused; its success closes the breaker, its
//!   failure (or its cancellation) opens it for another cool-down.
//!
//! Any success closes the breaker. Time is a parameter (`now`), so every
//! transition is unit-tested without sleeping.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Passing requests; consecutive failures so far.
    Closed(u32),
    /// Refusing requests until the instant.
    Open(Instant),
    /// One probe is in flight; everyone else is refused.
    HalfOpen,
}

/// A circuit breaker; `threshold` 0 never opens.
#[derive(Debug)]
pub struct Breaker {
    /// Consecutive failures that open the breaker (0: off).
    threshold: u32,
    /// How long it stays open before a probe.
    cooldown: Duration,
    /// Shared by every request of the process; never held across an await.
    state: Mutex<State>,
}

/// Why a request was not let through: the seconds until a probe may be tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    /// Whole seconds for `Retry-After` (at least 1).
    pub retry_after: u64,
}

/// Permission to call the upstream; report how it went with
/// [`Ticket::success`] or [`Ticket::failure`]. A probe dropped without a
/// report (its request was cancelled) counts as a failure, so the breaker
/// cannot stay half-open forever.
#[derive(Debug)]
pub struct Ticket<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold,
            cooldown,
            state: Mutex::new(State::Closed(0)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lets a request through, or refuses it while the breaker is open.
    pub fn admit(&self, now: Instant) -> Result<Ticket<'_>, Rejected> {
        let mut state = self.lock();
        let probe = match *state {
            State::Closed(_) => false,
            State::Open(until) if now >= until => {
                *state = State::HalfOpen;
                tracing::info!("upstream circuit breaker half-open: one probe goes through");
                true
            }
            State::Open(until) => {
                let secs = until.saturating_duration_since(now).as_secs_f64().ceil();
                return Err(Rejected {
                    retry_after: (secs as u64).max(1),
                });
            }
            State::HalfOpen => return Err(Rejected { retry_after: 1 }),
        };
        Ok(Ticket {
            breaker: self,
            probe,
            reported: false,
        })
    }

    fn succeeded(&self) {
        let mut state = self.lock();
        if !matches!(*state, State::Closed(_)) {
            tracing::info!("upstream circuit breaker closed: the upstream answers again");
        }
        *state = State::Closed(0);
    }

    fn failed(&self, probe: bool, now: Instant) {
        let mut state = self.lock();
        match *state {
            State::Closed(n) if self.threshold > 0 && n + 1 >= self.threshold => {
                tracing::warn!(
                    failures = n + 1,
                    cooldown_secs = self.cooldown.as_secs(),
                    "upstream circuit breaker open: failing fast"
                );
                *state = State::Open(now + self.cooldown);
            }
            State::Closed(n) => *state = State::Closed(n.saturating_add(1)),
            State::HalfOpen if probe => {
                tracing::warn!(
                    cooldown_secs = self.cooldown.as_secs(),
                    "upstream circuit breaker probe failed: open again"
                );
                *state = State::Open(now + self.cooldown);
            }
            // late answers of requests let through before the breaker opened
            State::HalfOpen | State::Open(_) => {}
        }
    }
}

impl Ticket<'_> {
    /// The upstream answered (any status below 500).
    pub fn success(mut self) {
        self.reported = true;
        self.breaker.succeeded();
    }

    /// The upstream failed (connect error, timeout, 5xx).
    pub fn failure(mut self, now: Instant) {
        self.reported = true;
        self.breaker.failed(self.probe, now);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.probe && !self.reported {
            self.breaker.failed(true, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_secs(10);

    fn fail(b: &Breaker, now: Instant) {
        b.admit(now).unwrap().failure(now);
    }

    #[test]
    fn opens_after_n_consecutive_failures_and_a_success_resets_the_count() {
        let b = Breaker::new(3, COOL);
        let t0 = Instant::now();
        fail(&b, t0);
        fail(&b, t0);
        b.admit(t0).unwrap().success();
        fail(&b, t0);
        fail(&b, t0);
        assert!(b.admit(t0).is_ok(), "two failures after a success: closed");
        fail(&b, t0);
        let refused = b.admit(t0 + Duration::from_millis(500)).unwrap_err();
        assert_eq!(refused.retry_after, 10);
        assert_eq!(
            b.admit(t0 + Duration::from_millis(9500))
                .unwrap_err()
                .retry_after,
            1
        );
    }

    #[test]
    fn half_open_lets_one_probe_through_and_its_outcome_decides() {
        let b = Breaker::new(1, COOL);
        let t0 = Instant::now();
        fail(&b, t0);
        let t1 = t0 + COOL;
        let probe = b.admit(t1).unwrap();
        assert_eq!(
            b.admit(t1).unwrap_err().retry_after,
            1,
            "one probe at a time"
        );
        probe.failure(t1);
        assert_eq!(b.admit(t1).unwrap_err().retry_after, 10, "open again");
        let t2 = t1 + COOL;
        b.admit(t2).unwrap().success();
        assert!(b.admit(t2).is_ok() && b.admit(t2).is_ok(), "closed");
    }

    #[test]
    fn a_cancelled_probe_reopens_and_threshold_zero_never_opens() {
        let b = Breaker::new(1, COOL);
        let t0 = Instant::now();
        fail(&b, t0);
        drop(b.admit(t0 + COOL).unwrap());
        assert!(b.admit(t0 + COOL).is_err());
        let off = Breaker::new(0, COOL);
        for _ in 0..100 {
            fail(&off, t0);
        }
        assert!(off.admit(t0).is_ok());
    }
}
