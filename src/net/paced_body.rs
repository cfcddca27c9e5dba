//! A request body that must keep coming: [`Paced`] ends it with an error when the client pauses longer
//! than the idle timeout, or, once the idle timeout has passed since the body began, sends it slower on
//! average than the minimum rate. Without the rate, a client trickling a byte just inside every idle
//! timeout would hold its connection, its spool file and its slot forever.
//!
//! The timer only fires while the client has nothing ready for the reader: bytes the client sent while
//! the reader was busy (an S3 part upload, say) are read first, so the proxy's own pauses are not blamed
//! on the client.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

/// How fast a body must arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyPace {
    /// Longest pause between two chunks (`--idle-timeout`); also the grace period before the rate counts.
    pub idle: Duration,
    /// Bytes per second, on average over the body after the grace period (`--min-body-rate`; 0: none).
    pub min_rate: u64,
}

/// Why a paced body ended early.
#[derive(Debug)]
pub enum PacedError<E> {
    /// The client's own stream failed.
    Body(E),
    /// The client paused longer than the idle timeout.
    Paused(Duration),
    /// The client sent slower than the minimum rate.
    TooSlow { min_rate: u64 },
}

impl<E: std::fmt::Display> std::fmt::Display for PacedError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PacedError::Body(e) => e.fmt(f),
            PacedError::Paused(idle) => {
                write!(
                    f,
                    "the client stopped sending the request body for {idle:?}"
                )
            }
            PacedError::TooSlow { min_rate } => write!(
                f,
                "the client sent the request body slower than {min_rate} bytes/s (--min-body-rate)"
            ),
        }
    }
}

pin_project_lite::pin_project! {
    /// `inner`, ended with a [`PacedError`] when it falls behind its [`BodyPace`].
    pub struct Paced<S> {
        #[pin]
        inner: S,
        // Armed only when the client has nothing ready (most bodies arrive whole and never need it),
        // so a body that keeps up costs no timer registration.
        #[pin]
        timer: Option<Sleep>,
        pace: BodyPace,
        started: Instant,
        // When the last chunk arrived; set lazily, when the reader next finds nothing ready (it reads
        // what is ready at once, so that moment is when the last chunk was taken).
        last_chunk: Instant,
        received_since_wait: bool,
        received: u64,
        ended: bool,
    }
}

impl<S> Paced<S> {
    pub fn new(inner: S, pace: BodyPace) -> Self {
        let started = Instant::now();
        Paced {
            inner,
            timer: None,
            pace,
            started,
            last_chunk: started,
            received_since_wait: false,
            received: 0,
            ended: false,
        }
    }
}

/// When the body must have moved on: the idle timeout after its last chunk, and (once the idle timeout
/// has passed since it began) the time by which what it has sent meets the minimum rate.
fn deadline(pace: &BodyPace, started: Instant, last_chunk: Instant, received: u64) -> Instant {
    let paused = last_chunk + pace.idle;
    if pace.min_rate == 0 {
        return paused;
    }
    let owed = Duration::from_secs_f64(received as f64 / pace.min_rate as f64);
    paused.min(started + pace.idle + owed)
}

impl<S, B, E> Stream for Paced<S>
where
    S: Stream<Item = Result<B, E>>,
    B: Buf,
{
    type Item = Result<B, PacedError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if *this.ended {
            return Poll::Ready(None);
        }
        match this.inner.poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                *this.received += chunk.remaining() as u64;
                *this.received_since_wait = true;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(PacedError::Body(e)))),
            Poll::Ready(None) => {
                *this.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if std::mem::take(this.received_since_wait) {
                    *this.last_chunk = Instant::now();
                }
                let due = deadline(this.pace, *this.started, *this.last_chunk, *this.received);
                match this.timer.as_mut().as_pin_mut() {
                    Some(timer) if timer.deadline() == due => {}
                    Some(timer) => timer.reset(due),
                    None => this.timer.set(Some(tokio::time::sleep_until(due))),
                }
                let fired = this
                    .timer
                    .as_mut()
                    .as_pin_mut()
                    .is_some_and(|timer| timer.poll(cx).is_ready());
                if !fired {
                    return Poll::Pending;
                }
                *this.ended = true;
                let paused = this.last_chunk.elapsed() >= this.pace.idle;
                Poll::Ready(Some(Err(if paused {
                    PacedError::Paused(this.pace.idle)
                } else {
                    PacedError::TooSlow {
                        min_rate: this.pace.min_rate,
                    }
                })))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures_util::StreamExt;

    const PACE: BodyPace = BodyPace {
        idle: Duration::from_secs(5),
        min_rate: 100,
    };

    /// A client sending `bytes` every `every`, `count` times.
    fn trickle(
        bytes: usize,
        every: Duration,
        count: usize,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
        futures_util::stream::iter(0..count).then(move |_| async move {
            tokio::time::sleep(every).await;
            Ok(Bytes::from(vec![b'x'; bytes]))
        })
    }

    async fn outcome(
        stream: impl Stream<Item = Result<Bytes, std::io::Error>>,
    ) -> Result<u64, String> {
        let mut paced = std::pin::pin!(Paced::new(stream, PACE));
        let mut total = 0;
        while let Some(chunk) = paced.next().await {
            total += chunk.map_err(|e| e.to_string())?.len() as u64;
        }
        Ok(total)
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_at_the_rate_arrives_whole() {
        assert_eq!(
            outcome(trickle(300, Duration::from_secs(2), 10)).await,
            Ok(3000)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_within_the_idle_timeout_is_cut_at_the_rate() {
        let error = outcome(trickle(1, Duration::from_secs(4), 100))
            .await
            .unwrap_err();
        assert!(error.contains("--min-body-rate"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_past_the_idle_timeout_is_cut() {
        let error = outcome(trickle(10_000, Duration::from_secs(6), 2))
            .await
            .unwrap_err();
        assert!(error.contains("stopped sending"), "{error}");
    }
}
