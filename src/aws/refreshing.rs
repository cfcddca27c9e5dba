//! [`Refreshing`]: a value that expires (AWS credentials, the upstream UI session), held for lock-free
//! reads and replaced by exactly one refresher at a time.
//!
//! Readers load an `ArcSwap` (no lock) and get the current value while it is usable. Otherwise, or after
//! the upstream rejected a value, they take the refresh lock: the first caller fetches, the others wait
//! and get its result, and a caller whose rejected value was already replaced gets the new one without
//! fetching again. A background loop ([`Refreshing::run`]) refreshes ahead of expiry and backs off
//! (2 s doubling to 60 s) after failures. All time comes from one [`Clock`], so tests can pause it.
//!
//! What differs between users is a [`Source`]: what is fetched, when a value is usable, when its refresh
//! is due, and whether the loop fetches at start or waits for the first use.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;

use crate::error::Error;
use crate::net::clock::Clock;

/// Back-off between failed background refreshes.
pub const RETRY_MIN: Duration = Duration::from_secs(2);
pub const RETRY_MAX: Duration = Duration::from_secs(60);
/// How often the loop looks again when a value is only fetched on first use and not used yet.
pub const UNUSED_POLL: Duration = Duration::from_secs(5);

/// A refresh in progress, boxed (see `Refreshing::refresh_replacing`).
type RefreshFuture<'a, V> = Pin<Box<dyn Future<Output = Result<Arc<V>, Error>> + Send + 'a>>;

/// What a [`Refreshing`] holds and how it is renewed.
pub trait Source: Send + Sync + 'static {
    type Value: Send + Sync + 'static;

    /// Whether the background loop fetches at once (credentials) or only after the first use (the
    /// UI session, created when the UI is first opened).
    const FETCH_AT_START: bool;

    /// A name for logs.
    fn label(&self) -> &'static str;

    /// Fetches a new value.
    fn fetch(&self, clock: Clock) -> impl Future<Output = Result<Self::Value, Error>> + Send;

    /// Whether `value` may still be handed out at `now`.
    fn usable(&self, value: &Self::Value, now: SystemTime) -> bool;

    /// When the background loop should replace `value`; `None`: never (it does not expire).
    fn refresh_due(&self, value: &Self::Value) -> Option<SystemTime>;

    /// The text kept as the last error.
    fn error_text(&self, error: &Error) -> String {
        error.to_string()
    }

    /// Logs a new value.
    fn log_refreshed(&self, value: &Self::Value, now: SystemTime);

    /// Logs a failed fetch.
    fn log_failed(&self, error: &str);
}

/// A value kept fresh; see the module documentation.
pub struct Refreshing<S: Source> {
    source: S,
    clock: Clock,
    current: ArcSwapOption<S::Value>,
    last_error: ArcSwapOption<String>,
    /// Held only while fetching, so that one refresh runs at a time (readers of a usable value never take it).
    refresh_lock: tokio::sync::Mutex<()>,
    refreshes: AtomicU64,
}

/// A snapshot for status output.
pub struct Snapshot<V> {
    pub current: Option<Arc<V>>,
    pub usable: bool,
    pub last_error: Option<String>,
    pub refreshes: u64,
}

impl<S: Source> std::fmt::Debug for Refreshing<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refreshing")
            .field("source", &self.source.label())
            .field("refreshes", &self.refreshes.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<S: Source> Refreshing<S> {
    /// Empty until the first `get` or the background loop fetches, on the system clock.
    pub fn new(source: S) -> Self {
        Self::with_clock(source, Clock::System)
    }

    pub fn with_clock(source: S, clock: Clock) -> Self {
        Refreshing {
            source,
            clock,
            current: ArcSwapOption::empty(),
            last_error: ArcSwapOption::empty(),
            refresh_lock: tokio::sync::Mutex::new(()),
            refreshes: AtomicU64::new(0),
        }
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    #[cfg(test)]
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// A usable value: lock-free when the current one is; otherwise waits for the (single) refresh.
    pub async fn get(&self) -> Result<Arc<S::Value>, Error> {
        if let Some(current) = self.current.load_full() {
            if self.source.usable(&current, self.clock.now()) {
                return Ok(current);
            }
        }
        self.refresh_replacing(None).await
    }

    /// Refreshes because the upstream rejected `rejected`. Concurrent callers that saw the same value
    /// share one refresh; a caller whose value was already replaced gets the new one.
    pub async fn refresh_after_rejection(
        &self,
        rejected: &S::Value,
    ) -> Result<Arc<S::Value>, Error> {
        self.refresh_replacing(Some(rejected)).await
    }

    /// Boxed and type-erased: the refresh future (an SDK or upstream call) is large and rarely needed,
    /// and every request's future would otherwise carry its size and its type (whose `Send` proof
    /// would run deep into the SDK for every request handler).
    fn refresh_replacing<'a>(&'a self, stale: Option<&'a S::Value>) -> RefreshFuture<'a, S::Value> {
        Box::pin(async move {
            let _guard = self.refresh_lock.lock().await;
            if let Some(current) = self.current.load_full() {
                let replaced =
                    stale.is_none_or(|stale| !std::ptr::eq(Arc::as_ptr(&current), stale));
                if replaced && self.source.usable(&current, self.clock.now()) {
                    return Ok(current);
                }
            }
            self.fetch_and_store().await
        })
    }

    /// Fetches a new value; the caller holds `refresh_lock`.
    async fn fetch_and_store(&self) -> Result<Arc<S::Value>, Error> {
        match self.source.fetch(self.clock).await {
            Ok(value) => {
                let value = Arc::new(value);
                self.current.store(Some(value.clone()));
                self.last_error.store(None);
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                self.source.log_refreshed(&value, self.clock.now());
                Ok(value)
            }
            Err(error) => {
                let text = self.source.error_text(&error);
                self.source.log_failed(&text);
                self.last_error.store(Some(Arc::new(text)));
                Err(error)
            }
        }
    }

    /// Keeps the value fresh: fetches at start (or waits for the first use), then ahead of each expiry,
    /// retrying with back-off after failures. Returns when the value never expires.
    pub async fn run(&self) {
        let mut retry = RETRY_MIN;
        loop {
            let wait = match self.current.load_full() {
                None if S::FETCH_AT_START => Duration::ZERO,
                None => UNUSED_POLL,
                Some(current) => match self.source.refresh_due(&current) {
                    None if self.last_error.load().is_none() => return,
                    None => retry,
                    Some(due) => self.clock.until(due),
                },
            };
            tokio::time::sleep(wait).await;
            if !S::FETCH_AT_START && self.current.load().is_none() {
                continue;
            }
            let result = {
                let _guard = self.refresh_lock.lock().await;
                // Someone may have refreshed while we slept.
                let now = self.clock.now();
                let due_now = self.current.load_full().is_none_or(|current| {
                    self.source
                        .refresh_due(&current)
                        .is_some_and(|due| due <= now)
                });
                if due_now {
                    self.fetch_and_store().await.map(|_| ())
                } else {
                    Ok(())
                }
            };
            match result {
                Ok(()) => retry = RETRY_MIN,
                Err(_) => {
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
    }

    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> Snapshot<S::Value> {
        let current = self.current.load_full();
        Snapshot {
            usable: current
                .as_ref()
                .is_some_and(|c| self.source.usable(c, self.clock.now())),
            current,
            last_error: self.last_error.load_full().map(|e| e.as_ref().clone()),
            refreshes: self.refreshes(),
        }
    }
}
