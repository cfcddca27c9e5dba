//! Streaming an upstream response body to the client as it arrives (hyper's back-pressure applies:
//! nothing is read from the upstream faster than the client takes it), with an idle timeout between
//! chunks; the access log line (`observe::access_log`) is written when the body ends or the client goes
//! away.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use http_body::Body;

use crate::net::http_client::ResponseBody;
use crate::observe::access_log::{AccessLog, Outcome};

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
        log.outcome = Outcome::Aborted;
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
                            this.log.outcome = Outcome::Complete;
                        }
                        return Poll::Ready(Some(Ok(data)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.finished = true;
                    this.log.outcome = Outcome::UpstreamError;
                    tracing::warn!(request_id = %this.log.request_id, error = %e, "upstream response body broke off");
                    return Poll::Ready(Some(Err(std::io::Error::other(e))));
                }
                Poll::Ready(None) => {
                    this.finished = true;
                    this.log.outcome = Outcome::Complete;
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
                        this.log.outcome = Outcome::UpstreamIdleTimeout;
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
