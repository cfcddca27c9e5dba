//! Streaming an upstream response body to the client as it arrives (hyper's back-pressure applies:
//! nothing is read from the upstream faster than the client takes it), with an idle timeout between
//! chunks, and the access log line written when the body ends or the client goes away.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use http_body::Body;

use crate::net::http_client::ResponseBody;
use crate::observe::stats::Stats;

/// What the access log says about one request; written once, when dropped.
pub struct AccessLog {
    pub method: http::Method,
    /// The route class (`read`, `write`, ..., `ui`, `unknown`) for metrics.
    pub class: &'static str,
    pub path: String,
    pub status: u16,
    pub request_id: String,
    pub remote: Option<std::net::SocketAddr>,
    pub started: Instant,
    pub upstream_latency: Option<Duration>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// `complete`, `aborted` (client went away) or `upstream-error` (the body broke off).
    pub outcome: &'static str,
    pub stats: Arc<Stats>,
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        let latency = self.started.elapsed();
        self.stats.record(
            self.class,
            &self.method,
            self.status,
            latency,
            self.upstream_latency,
        );
        tracing::info!(
            target: "access",
            method = %self.method,
            path = %self.path,
            status = self.status,
            latency_ms = latency.as_secs_f64() * 1000.0,
            upstream_ms = self.upstream_latency.map(|d| d.as_secs_f64() * 1000.0),
            bytes_in = self.bytes_in,
            bytes_out = self.bytes_out,
            request_id = %self.request_id,
            remote = self.remote.map(|r| r.ip().to_string()),
            outcome = self.outcome,
            "request"
        );
    }
}

/// The upstream body as a stream of chunks for warp.
pub struct ResponseStream {
    inner: ResponseBody,
    idle_timeout: Duration,
    /// Made on the first wait for the upstream: a small answer is usually complete when first polled
    /// and never needs a timer.
    idle: Option<Pin<Box<tokio::time::Sleep>>>,
    log: AccessLog,
    finished: bool,
    /// Whether `idle` counts from the current wait (it is re-armed after each chunk handed to the
    /// client, so a slow client is never mistaken for a stalled upstream).
    armed: bool,
}

impl ResponseStream {
    pub fn new(inner: ResponseBody, idle_timeout: Duration, mut log: AccessLog) -> Self {
        // Until the body ends, a drop means the client went away.
        log.outcome = "aborted";
        ResponseStream {
            inner,
            idle_timeout,
            idle: None,
            log,
            finished: false,
            armed: false,
        }
    }
}

impl Stream for ResponseStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers are not passed on (MLflow sends none); only data frames count.
                    if let Ok(data) = frame.into_data() {
                        this.log.bytes_out += data.len() as u64;
                        this.armed = false;
                        // hyper stops polling once Content-Length bytes are out, so the end is seen here.
                        if this.inner.is_end_stream() {
                            this.finished = true;
                            this.log.outcome = "complete";
                        }
                        return Poll::Ready(Some(Ok(data)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.finished = true;
                    this.log.outcome = "upstream-error";
                    tracing::warn!(request_id = %this.log.request_id, error = %e, "upstream response body broke off");
                    return Poll::Ready(Some(Err(std::io::Error::other(e))));
                }
                Poll::Ready(None) => {
                    this.finished = true;
                    this.log.outcome = "complete";
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    let idle_timeout = this.idle_timeout;
                    let idle = this
                        .idle
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle_timeout)));
                    if !this.armed {
                        idle.as_mut()
                            .reset(tokio::time::Instant::now() + idle_timeout);
                        this.armed = true;
                    }
                    if idle.as_mut().poll(cx).is_ready() {
                        this.finished = true;
                        this.log.outcome = "upstream-idle-timeout";
                        return Poll::Ready(Some(Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "upstream response body stalled longer than --idle-timeout",
                        ))));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}
