//! Limits: a token bucket per identity (per client address for anonymous callers), failed
//! authentications per client address, a global cap on requests in flight, and request-header size
//! and count limits. Each refusal says when to come back (`Retry-After`).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use http::HeaderMap;
use lru::LruCache;

use crate::error::Error;
use crate::net::cidr::Cidr;
use crate::net::client_addr::originating_ip;
use crate::settings::LimitSettings;

/// Buckets kept at most; beyond it the least recently used is dropped (it has refilled the longest,
/// so dropping it costs its owner the least). Bounds the memory an attacker with many addresses can use.
const MAX_BUCKETS: usize = 10_000;
/// Client addresses whose failed authentications are counted at most (least recently seen dropped).
const MAX_FAILURE_ADDRESSES: usize = 10_000;
/// Failed authentications are counted per client address over windows of this length.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Failed authentications of one client address in the window that began at `started`.
struct Failures {
    started: Instant,
    count: u32,
}

pub struct Limits {
    settings: LimitSettings,
    buckets: Mutex<LruCache<String, Bucket>>,
    auth_failures: Mutex<LruCache<IpAddr, Failures>>,
    in_flight: tokio::sync::Semaphore,
}

/// A table's lock; a panic while it was held leaves counters that are still usable, so a poisoned
/// lock is taken over instead of letting every request through (or none).
fn lock<T>(table: &Mutex<T>) -> MutexGuard<'_, T> {
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The client a request comes from: the TCP peer, or, when the peer is one of `trusted_proxies` (the
/// ALB), the address that proxy reports. `X-Forwarded-For` is read from the right: each trusted hop
/// appended the address it saw, so the first address that is not itself a trusted proxy is the client;
/// entries further left were written by the client and prove nothing. An entry that does not parse
/// stops the walk at the hop that wrote it.
pub fn client_ip(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted_proxies: &[Cidr],
) -> Option<IpAddr> {
    peer.map(|peer| originating_ip(peer.ip(), headers, trusted_proxies))
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
        let capacity = |n| NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN);
        Limits {
            settings,
            buckets: Mutex::new(LruCache::new(capacity(MAX_BUCKETS))),
            auth_failures: Mutex::new(LruCache::new(capacity(MAX_FAILURE_ADDRESSES))),
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

    /// Takes one token from the bucket of `key` (see [`rate_key`]).
    /// Whether requests are rate-limited at all (`--rate-limit` above 0); when not, callers need not
    /// work out a bucket key.
    pub fn is_rate_limited(&self) -> bool {
        self.settings.rate_limit > 0.0
    }

    pub fn check_rate(&self, key: &str) -> Result<(), Refusal> {
        self.check_rate_at(key, Instant::now())
    }

    fn check_rate_at(&self, key: &str, now: Instant) -> Result<(), Refusal> {
        let rate = self.settings.rate_limit;
        if rate <= 0.0 {
            return Ok(());
        }
        let burst = f64::from(self.settings.rate_limit_burst);
        let mut buckets = lock(&self.buckets);
        let bucket = buckets.get_or_insert_mut(key.to_string(), || Bucket {
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

    /// Refuses a client address that failed to authenticate `--max-auth-failures` times in the
    /// current window, before its credential is even looked at (guessing tokens costs a window each
    /// few tries).
    pub fn check_auth_failures(&self, client: Option<IpAddr>) -> Result<(), Refusal> {
        self.check_auth_failures_at(client, Instant::now())
    }

    fn check_auth_failures_at(&self, client: Option<IpAddr>, now: Instant) -> Result<(), Refusal> {
        let max = self.settings.max_auth_failures;
        let Some(client) = client.filter(|_| max > 0) else {
            return Ok(());
        };
        let mut failures = lock(&self.auth_failures);
        match failures.get(&client) {
            Some(f) if f.count >= max && now.duration_since(f.started) < FAILURE_WINDOW => {
                let left = FAILURE_WINDOW - now.duration_since(f.started);
                Err(Refusal::RateLimited {
                    retry_after_secs: left.as_secs_f64().ceil().max(1.0) as u64,
                })
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed authentication (a credential presented and refused) from `client`.
    pub fn record_auth_failure(&self, client: Option<IpAddr>) {
        self.record_auth_failure_at(client, Instant::now());
    }

    fn record_auth_failure_at(&self, client: Option<IpAddr>, now: Instant) {
        let Some(client) = client.filter(|_| self.settings.max_auth_failures > 0) else {
            return;
        };
        let mut failures = lock(&self.auth_failures);
        let entry = failures.get_or_insert_mut(client, || Failures {
            started: now,
            count: 0,
        });
        if now.duration_since(entry.started) >= FAILURE_WINDOW {
            *entry = Failures {
                started: now,
                count: 0,
            };
        }
        entry.count = entry.count.saturating_add(1);
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
            max_auth_failures: 2,
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

    #[test]
    fn failed_authentications_per_address() {
        let l = limits(0.0, 1, 0);
        let t0 = Instant::now();
        let (a, b) = (
            Some("192.0.2.1".parse().unwrap()),
            Some("192.0.2.2".parse().unwrap()),
        );
        l.record_auth_failure_at(a, t0);
        assert!(l.check_auth_failures_at(a, t0).is_ok(), "under the limit");
        l.record_auth_failure_at(a, t0);
        assert_eq!(
            l.check_auth_failures_at(a, t0 + Duration::from_secs(20)),
            Err(Refusal::RateLimited {
                retry_after_secs: 40
            })
        );
        assert!(l.check_auth_failures_at(b, t0).is_ok(), "per address");
        assert!(
            l.check_auth_failures_at(a, t0 + FAILURE_WINDOW).is_ok(),
            "a new window"
        );
        l.record_auth_failure_at(a, t0 + FAILURE_WINDOW);
        assert!(l.check_auth_failures_at(a, t0 + FAILURE_WINDOW).is_ok());
    }

    #[test]
    fn bucket_table_is_bounded() {
        let l = limits(1.0, 1, 0);
        let t0 = Instant::now();
        for i in 0..MAX_BUCKETS + 10 {
            let _ = l.check_rate_at(&format!("client-{i}"), t0);
        }
        assert_eq!(lock(&l.buckets).len(), MAX_BUCKETS);
    }

    #[test]
    fn client_behind_trusted_proxies() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer = |ip: &str| Some(SocketAddr::new(ip.parse().unwrap(), 443));
        let xff = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-for", v.parse().unwrap());
            h
        };
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let chain = xff("1.1.1.1, 203.0.113.7, 10.0.0.5");
        assert_eq!(
            client_ip(peer("10.0.0.9"), &chain, &trusted),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_ip(peer("198.51.100.1"), &chain, &trusted),
            ip("198.51.100.1"),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(
            client_ip(peer("10.0.0.9"), &xff("junk, 10.0.0.4"), &trusted),
            ip("10.0.0.4")
        );
        assert_eq!(
            client_ip(peer("10.0.0.9"), &HeaderMap::new(), &trusted),
            ip("10.0.0.9")
        );
    }
}
