//! The one clock the refresh loops and expiry checks read.
//!
//! In production it is the system clock. Unit tests use [`Clock::following_tokio`]: wall time derived
//! from tokio's clock, so that `tokio::time::pause()`/`advance()` move the background loops' sleeps and
//! the expiry checks together, and a test can let an hour pass without waiting for it.

use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Copy, Default)]
pub enum Clock {
    /// `SystemTime::now()`.
    #[default]
    System,
    /// A fixed wall time plus the time tokio's clock has moved since (paused or not).
    #[cfg(test)]
    FollowingTokio {
        base: SystemTime,
        since: tokio::time::Instant,
    },
}

impl Clock {
    /// Wall time that moves with tokio's clock from now on (for tests that pause and advance it).
    #[cfg(test)]
    pub fn following_tokio() -> Clock {
        Clock::FollowingTokio {
            base: SystemTime::now(),
            since: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> SystemTime {
        match self {
            Clock::System => SystemTime::now(),
            #[cfg(test)]
            Clock::FollowingTokio { base, since } => *base + since.elapsed(),
        }
    }

    /// How long from now until `at` (zero when `at` has passed).
    pub fn until(&self, at: SystemTime) -> Duration {
        at.duration_since(self.now()).unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn following_tokio_moves_only_when_tokio_time_does() {
        let clock = Clock::following_tokio();
        let start = clock.now();
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(
            clock.now().duration_since(start).unwrap(),
            Duration::from_secs(3600)
        );
        assert_eq!(
            clock.until(start + Duration::from_secs(3601)),
            Duration::from_secs(1)
        );
        assert_eq!(clock.until(start), Duration::ZERO);
    }
}
