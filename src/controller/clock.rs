//! The controller's clock: wall-clock time in production, compressed time in tests and
//! benchmarks.
//!
//! Compressed time is a hook for tests and benchmarks only (`Clock::scaled`, and for the built
//! binary the `CAMS_OPERATOR_TIME_SCALE` environment variable read once by
//! [`command`](super::command)): it must never be used in production, where every interval
//! the operator keeps (resync, retries, listing window) would pass that many times faster.

use std::time::Duration;

/// The controller's clock. Real time in production; tests and benchmarks may compress time
/// (`scale` simulated seconds per real second) so that resync intervals of minutes pass in
/// seconds: the reconcile core (and the listing window) sees the simulated time, and requeue
/// delays are converted back to real time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin_real: std::time::Instant,
    origin: jiff::Timestamp,
    scale: f64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::real()
    }
}

impl Clock {
    /// Wall-clock time.
    pub fn real() -> Self {
        Clock::scaled(1.0)
    }

    /// Time running `scale` times faster than the wall clock, starting now.
    pub fn scaled(scale: f64) -> Self {
        let scale = if scale.is_finite() && scale >= 1.0 {
            scale
        } else {
            1.0
        };
        Clock {
            origin_real: std::time::Instant::now(),
            origin: jiff::Timestamp::now(),
            scale,
        }
    }

    /// The current (possibly simulated) time.
    pub fn now(&self) -> jiff::Timestamp {
        if self.scale == 1.0 {
            return jiff::Timestamp::now();
        }
        let elapsed = self.origin_real.elapsed().mul_f64(self.scale);
        jiff::SignedDuration::try_from(elapsed)
            .ok()
            .and_then(|d| self.origin.checked_add(d).ok())
            .unwrap_or_else(jiff::Timestamp::now)
    }

    /// The real duration of a simulated `delay`.
    pub fn to_real(&self, delay: Duration) -> Duration {
        delay.div_f64(self.scale)
    }
}
