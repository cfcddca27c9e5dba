//! Limits: a token bucket per identity, a global cap on requests in flight, and request-header size
//! and count limits. Each refusal says when to come back (`Retry-After`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use http::HeaderMap;

use crate::error::Error;
use crate::settings::LimitSettings;

/// Identities tracked at most; beyond it, idle buckets are dropped (they would be full anyway).
const MAX_BUCKETS: usize = 10_000;

struct Bucket {
    tokens: f64,
    updated: Instant,
}

pub struct Limits {
    settings: LimitSettings,
    buckets: Mutex<HashMap<String, Bucket>>,
    in_flight: tokio::sync::Semaphore,
}

/// Why a request was refused.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// Too many requests from this identity; retry after this many seconds.
    RateLimited { retry_after_secs: u64 },
    /// Too many requests in flight overall.
    Busy,
    /// Request headers over the count or size limit.
    HeadersTooLarge(String),
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::RateLimited { retry_after_secs } => Error::RateLimited { retry_after_secs },
            Refusal::Busy => Error::Busy,
            Refusal::HeadersTooLarge(message) => Error::HeadersTooLarge(message),
        }
    }
}

impl Limits {
    pub fn new(settings: LimitSettings) -> Self {
        let permits = if settings.max_concurrent_requests == 0 {
            tokio::sync::Semaphore::MAX_PERMITS
        } else {
            settings.max_concurrent_requests
        };
        Limits {
            settings,
            buckets: Mutex::new(HashMap::new()),
            in_flight: tokio::sync::Semaphore::new(permits),
        }
    }

    pub fn check_headers(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if headers.len() > self.settings.max_header_count {
            return Err(Refusal::HeadersTooLarge(format!(
                "{} request headers; at most {} (--max-header-count)",
                headers.len(),
                self.settings.max_header_count
            )));
        }
        let bytes: u64 = headers
            .iter()
            .map(|(k, v)| (k.as_str().len() + v.len() + 4) as u64)
            .sum();
        if bytes > self.settings.max_header_bytes {
            return Err(Refusal::HeadersTooLarge(format!(
                "{bytes} bytes of request headers; at most {} (--max-header-bytes)",
                self.settings.max_header_bytes
            )));
        }
        Ok(())
    }

    /// Takes one token from `identity`'s bucket.
    pub fn check_rate(&self, identity: &str) -> Result<(), Refusal> {
        self.check_rate_at(identity, Instant::now())
    }

    fn check_rate_at(&self, identity: &str, now: Instant) -> Result<(), Refusal> {
        let rate = self.settings.rate_limit;
        if rate <= 0.0 {
            return Ok(());
        }
        let burst = f64::from(self.settings.rate_limit_burst);
        // A panic while the lock was held (poisoning) must not switch the limit off: the buckets are
        // plain counters, each update complete or not begun, so they are used as they are.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(identity) {
            buckets.retain(|_, b| now.duration_since(b.updated).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(identity.to_string()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / rate;
            Err(Refusal::RateLimited {
                retry_after_secs: wait.ceil().max(1.0) as u64,
            })
        }
    }

    /// A slot among the requests in flight, held until dropped.
    pub fn admit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, Refusal> {
        self.in_flight.try_acquire().map_err(|_| Refusal::Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(rate: f64, burst: u32, concurrent: usize) -> Limits {
        Limits::new(LimitSettings {
            rate_limit: rate,
            rate_limit_burst: burst,
            max_concurrent_requests: concurrent,
            max_header_count: 3,
            max_header_bytes: 100,
        })
    }

    #[test]
    fn token_bucket_per_identity() {
        let l = limits(2.0, 3, 0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check_rate_at("alice", t0).is_ok());
        }
        assert_eq!(
            l.check_rate_at("alice", t0),
            Err(Refusal::RateLimited {
                retry_after_secs: 1
            })
        );
        assert!(
            l.check_rate_at("bob", t0).is_ok(),
            "buckets are per identity"
        );
        assert!(
            l.check_rate_at("alice", t0 + Duration::from_millis(600))
                .is_ok(),
            "refills at the rate"
        );
        assert!(limits(0.0, 1, 0).check_rate("x").is_ok(), "0 = unlimited");
    }

    #[test]
    fn a_poisoned_lock_does_not_lift_the_limit() {
        let l = std::sync::Arc::new(limits(1.0, 1, 0));
        let t0 = Instant::now();
        assert!(l.check_rate_at("alice", t0).is_ok());
        let poisoner = l.clone();
        let panicked = std::thread::spawn(move || {
            let _held = poisoner.buckets.lock().unwrap();
            panic!("a panic while the buckets are locked");
        })
        .join();
        assert!(panicked.is_err() && l.buckets.is_poisoned());
        assert!(
            l.check_rate_at("alice", t0).is_err(),
            "still limited after poisoning"
        );
    }

    #[test]
    fn concurrency_cap() {
        let l = limits(0.0, 1, 2);
        let a = l.admit().unwrap();
        let _b = l.admit().unwrap();
        assert_eq!(l.admit().unwrap_err(), Refusal::Busy);
        drop(a);
        assert!(l.admit().is_ok());
    }

    #[test]
    fn header_limits() {
        let l = limits(0.0, 1, 0);
        let mut h = HeaderMap::new();
        h.insert("a", "1".parse().unwrap());
        assert!(l.check_headers(&h).is_ok());
        h.insert("b", "x".repeat(200).parse().unwrap());
        assert!(
            matches!(l.check_headers(&h), Err(Refusal::HeadersTooLarge(m)) if m.contains("--max-header-bytes"))
        );
        let mut many = HeaderMap::new();
        for name in ["a", "b", "c", "d"] {
            many.insert(name, "1".parse().unwrap());
        }
        assert!(
            matches!(l.check_headers(&many), Err(Refusal::HeadersTooLarge(m)) if m.contains("--max-header-count"))
        );
    }
}
