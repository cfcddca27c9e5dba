//! Live request figures for the dashboard: totals, in-flight requests, and a per-second window of the
//! last minute with request and error counts and latency percentiles (from a small log-scale histogram).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

const WINDOW_SECONDS: u64 = 60;
const HISTOGRAM_BUCKETS: usize = 40;
/// Upper bound of histogram bucket 0 in microseconds; each next bucket is 1.5 times wider.
const FIRST_BOUND_US: f64 = 50.0;
const GROWTH: f64 = 1.5;

#[derive(Default)]
pub struct Stats {
    /// The Prometheus side of the same figures.
    pub metrics: crate::observe::metrics::Metrics,
    requests_total: AtomicU64,
    errors_total: AtomicU64,
    in_flight: AtomicI64,
    window: Mutex<VecDeque<Second>>,
}

struct Second {
    t: u64,
    requests: u64,
    errors: u64,
    histogram: [u32; HISTOGRAM_BUCKETS],
}

#[derive(Debug, Serialize, PartialEq)]
pub struct SecondSnapshot {
    pub t: u64,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct StatsSnapshot {
    pub requests_total: u64,
    pub errors_total: u64,
    pub in_flight: i64,
    pub window_seconds: u64,
    pub series: Vec<SecondSnapshot>,
}

/// Decrements the in-flight count when dropped.
pub struct InFlight<'a>(&'a Stats);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn bucket_for(latency: Duration) -> usize {
    let us = latency.as_secs_f64() * 1e6;
    if us <= FIRST_BOUND_US {
        return 0;
    }
    let index = ((us / FIRST_BOUND_US).ln() / GROWTH.ln()).ceil() as usize;
    index.min(HISTOGRAM_BUCKETS - 1)
}

fn bucket_upper_ms(index: usize) -> f64 {
    FIRST_BOUND_US * GROWTH.powi(index as i32) / 1000.0
}

fn percentile(histogram: &[u32; HISTOGRAM_BUCKETS], total: u64, q: f64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0u64;
    for (index, count) in histogram.iter().enumerate() {
        seen += u64::from(*count);
        if seen >= rank {
            return (bucket_upper_ms(index) * 1000.0).round() / 1000.0;
        }
    }
    bucket_upper_ms(HISTOGRAM_BUCKETS - 1)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl Stats {
    pub fn begin(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Records one finished request for the dashboard window and the Prometheus metrics; 5xx answers
    /// count as errors.
    pub fn record(
        &self,
        class: &'static str,
        method: &http::Method,
        status: u16,
        latency: Duration,
        upstream_latency: Option<Duration>,
    ) {
        self.metrics
            .record(class, method, status, latency, upstream_latency);
        self.record_at(now_secs(), status, latency);
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn record_at(&self, t: u64, status: u16, latency: Duration) {
        let error = status >= 500;
        self.requests_total.fetch_add(1, Ordering::Relaxed);
        if error {
            self.errors_total.fetch_add(1, Ordering::Relaxed);
        }
        let Ok(mut window) = self.window.lock() else {
            return;
        };
        if window.back().is_none_or(|s| s.t != t) {
            window.push_back(Second {
                t,
                requests: 0,
                errors: 0,
                histogram: [0; HISTOGRAM_BUCKETS],
            });
            while window.front().is_some_and(|s| s.t + WINDOW_SECONDS <= t) {
                window.pop_front();
            }
        }
        if let Some(second) = window.back_mut() {
            second.requests += 1;
            second.errors += u64::from(error);
            second.histogram[bucket_for(latency)] += 1;
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        self.snapshot_at(now_secs())
    }

    fn snapshot_at(&self, now: u64) -> StatsSnapshot {
        let series = match self.window.lock() {
            Ok(window) => window
                .iter()
                .filter(|s| s.t + WINDOW_SECONDS > now)
                .map(|s| SecondSnapshot {
                    t: s.t,
                    requests: s.requests,
                    errors: s.errors,
                    p50_ms: percentile(&s.histogram, s.requests, 0.5),
                    p99_ms: percentile(&s.histogram, s.requests, 0.99),
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        StatsSnapshot {
            requests_total: self.requests_total.load(Ordering::Relaxed),
            errors_total: self.errors_total.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            window_seconds: WINDOW_SECONDS,
            series,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_errors_and_in_flight() {
        let stats = Stats::default();
        {
            let _a = stats.begin();
            let _b = stats.begin();
            assert_eq!(stats.snapshot().in_flight, 2);
        }
        stats.record_at(100, 200, Duration::from_millis(1));
        stats.record_at(100, 502, Duration::from_millis(1));
        stats.record_at(100, 404, Duration::from_millis(1));
        let snap = stats.snapshot_at(100);
        assert_eq!(snap.in_flight, 0);
        assert_eq!(snap.requests_total, 3);
        assert_eq!(snap.errors_total, 1);
        assert_eq!(snap.series.len(), 1);
        assert_eq!(snap.series[0].requests, 3);
        assert_eq!(snap.series[0].errors, 1);
    }

    #[test]
    fn percentiles_land_in_the_right_bucket() {
        let stats = Stats::default();
        for _ in 0..98 {
            stats.record_at(7, 200, Duration::from_micros(900));
        }
        stats.record_at(7, 200, Duration::from_millis(40));
        stats.record_at(7, 200, Duration::from_millis(40));
        let s = &stats.snapshot_at(7).series[0];
        // Bucket bounds grow by 1.5x, so a value is reported within 1.5x above it.
        assert!(s.p50_ms >= 0.9 && s.p50_ms < 1.35, "{}", s.p50_ms);
        assert!(s.p99_ms >= 40.0 && s.p99_ms < 60.0, "{}", s.p99_ms);
    }

    #[test]
    fn the_window_keeps_the_last_minute() {
        let stats = Stats::default();
        for t in 0..100 {
            stats.record_at(t, 200, Duration::from_millis(1));
        }
        let snap = stats.snapshot_at(99);
        assert_eq!(snap.series.len(), 60);
        assert_eq!(snap.series.first().unwrap().t, 40);
        assert_eq!(stats.snapshot_at(500).series.len(), 0);
        assert_eq!(snap.requests_total, 100);
    }
}
