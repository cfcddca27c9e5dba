//! Live request figures for the dashboard: totals, in-flight requests, and a per-second window of the
//! last minute with request and error counts and latency percentiles (from a small log-scale histogram).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::observe::per_worker::PerWorker;

const WINDOW_SECONDS: u64 = 60;
const HISTOGRAM_BUCKETS: usize = 40;
/// Upper bound of histogram bucket 0 in microseconds; each next bucket is 1.5 times wider.
const FIRST_BOUND_US: f64 = 50.0;
const GROWTH: f64 = 1.5;

pub struct Stats {
    /// The Prometheus side of the same figures.
    pub metrics: crate::observe::metrics::Metrics,
    /// Each worker's own totals and window, merged when read.
    shards: PerWorker<Shard>,
}

/// One worker's share of the figures.
#[derive(Default)]
struct Shard {
    requests_total: u64,
    errors_total: u64,
    in_flight: i64,
    window: VecDeque<Second>,
}

struct Second {
    t: u64,
    requests: u64,
    errors: u64,
    histogram: [u32; HISTOGRAM_BUCKETS],
}

impl Second {
    fn empty(t: u64) -> Self {
        Second {
            t,
            requests: 0,
            errors: 0,
            histogram: [0; HISTOGRAM_BUCKETS],
        }
    }
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

/// Decrements the in-flight count of the shard it was counted in when dropped (on whichever thread).
pub struct InFlight<'a> {
    stats: &'a Stats,
    shard: usize,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.stats.shards.with(self.shard, |s| s.in_flight -= 1);
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
    /// Figures for `workers` worker threads.
    pub fn new(workers: usize) -> Self {
        Stats {
            metrics: crate::observe::metrics::Metrics::new(workers),
            shards: PerWorker::new(workers),
        }
    }

    pub fn begin(&self) -> InFlight<'_> {
        let shard = self.shards.mine();
        self.shards.with(shard, |s| s.in_flight += 1);
        InFlight { stats: self, shard }
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
        let mut total = 0;
        self.shards.for_each(|s| total += s.in_flight);
        total
    }

    fn record_at(&self, t: u64, status: u16, latency: Duration) {
        let error = status >= 500;
        self.shards.with_mine(|shard| {
            shard.requests_total += 1;
            shard.errors_total += u64::from(error);
            let window = &mut shard.window;
            if window.back().is_none_or(|s| s.t != t) {
                window.push_back(Second::empty(t));
                while window.front().is_some_and(|s| s.t + WINDOW_SECONDS <= t) {
                    window.pop_front();
                }
            }
            if let Some(second) = window.back_mut() {
                second.requests += 1;
                second.errors += u64::from(error);
                second.histogram[bucket_for(latency)] += 1;
            }
        });
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        self.snapshot_at(now_secs())
    }

    /// The shards merged: totals summed, and each second of the window summed across workers.
    fn snapshot_at(&self, now: u64) -> StatsSnapshot {
        let mut merged = StatsSnapshot {
            requests_total: 0,
            errors_total: 0,
            in_flight: 0,
            window_seconds: WINDOW_SECONDS,
            series: Vec::new(),
        };
        let mut seconds: BTreeMap<u64, Second> = BTreeMap::new();
        self.shards.for_each(|shard| {
            merged.requests_total += shard.requests_total;
            merged.errors_total += shard.errors_total;
            merged.in_flight += shard.in_flight;
            for s in shard.window.iter().filter(|s| s.t + WINDOW_SECONDS > now) {
                let second = seconds.entry(s.t).or_insert_with(|| Second::empty(s.t));
                second.requests += s.requests;
                second.errors += s.errors;
                for (sum, count) in second.histogram.iter_mut().zip(s.histogram.iter()) {
                    *sum += count;
                }
            }
        });
        merged.series = seconds
            .into_values()
            .map(|s| SecondSnapshot {
                t: s.t,
                requests: s.requests,
                errors: s.errors,
                p50_ms: percentile(&s.histogram, s.requests, 0.5),
                p99_ms: percentile(&s.histogram, s.requests, 0.99),
            })
            .collect();
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_errors_and_in_flight() {
        let stats = Stats::new(1);
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
        let stats = Stats::new(1);
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
    fn workers_record_apart_and_the_snapshot_merges_them() {
        let stats = Stats::new(2);
        let held: Vec<InFlight> = std::thread::scope(|scope| {
            let threads: Vec<_> = [(0, 3, 200u16), (1, 2, 503)]
                .into_iter()
                .map(|(worker, n, status)| {
                    let stats = &stats;
                    scope.spawn(move || {
                        crate::net::worker::set_current_index(worker);
                        let held = stats.begin();
                        for _ in 0..n {
                            stats.record_at(50, status, Duration::from_micros(40));
                        }
                        stats.record_at(51, status, Duration::from_micros(40));
                        // Handed to another thread, the guard still leaves the shard it counted in.
                        held
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(stats.in_flight(), 2);
        drop(held);
        let snap = stats.snapshot_at(51);
        assert_eq!(
            (snap.requests_total, snap.errors_total, snap.in_flight),
            (7, 3, 0)
        );
        let per_second: Vec<_> = snap
            .series
            .iter()
            .map(|s| (s.t, s.requests, s.errors))
            .collect();
        assert_eq!(per_second, [(50, 5, 2), (51, 2, 1)]);
    }

    #[test]
    fn the_window_keeps_the_last_minute() {
        let stats = Stats::new(1);
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
