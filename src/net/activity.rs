//! What one client connection is doing, for the server's idle and header timers: when bytes last moved
//! in either direction, how many requests are being handled, and whether a request head is arriving.
//! [`TrackedIo`] records the bytes; the server records the requests.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// The HTTP/2 connection preface; a connection that starts with it has no request heads to time.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One connection's activity, shared by its IO and its requests. Times are milliseconds since the
/// connection opened (`0` in `head_started_ms`: no head under way).
#[derive(Debug)]
pub struct Activity {
    opened: Instant,
    last_io_ms: AtomicU64,
    head_started_ms: AtomicU64,
    in_flight: AtomicUsize,
    first_read: AtomicBool,
    http2: AtomicBool,
}

/// What the timers should do about a connection now.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do before this instant.
    Check(Instant),
    /// No request in flight and no bytes for the keep-alive timeout: close it.
    Idle,
    /// Part of a request head arrived and the rest has not, within the header timeout: close it.
    SlowHead,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            opened: Instant::now(),
            last_io_ms: AtomicU64::new(0),
            head_started_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            first_read: AtomicBool::new(true),
            http2: AtomicBool::new(false),
        })
    }

    fn now_ms(&self) -> u64 {
        // At least 1, so that 0 can mean "none".
        (self.opened.elapsed().as_millis() as u64).max(1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.opened + Duration::from_millis(ms)
    }

    fn read(&self, bytes: &[u8]) {
        let now = self.now_ms();
        self.last_io_ms.store(now, Ordering::Relaxed);
        if self.first_read.swap(false, Ordering::Relaxed) && bytes.starts_with(&H2_PREFACE[..4]) {
            self.http2.store(true, Ordering::Relaxed);
        }
        // Bytes while no request is being handled are the start of the next request's head.
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ =
                self.head_started_ms
                    .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_io_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// A request's head has arrived and it is being handled until the guard is dropped.
    pub fn request(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started_ms.store(0, Ordering::Relaxed);
        RequestGuard(self.clone())
    }

    /// Whether the connection is idle past `keep_alive`, or its request head late past `header`.
    pub fn verdict(&self, keep_alive: Duration, header: Duration) -> Verdict {
        let now = Instant::now();
        let head_started = self.head_started_ms.load(Ordering::Relaxed);
        let head_deadline = (head_started != 0 && !self.http2.load(Ordering::Relaxed))
            .then(|| self.at(head_started) + header);
        if head_deadline.is_some_and(|deadline| deadline <= now) {
            return Verdict::SlowHead;
        }
        let idle_deadline = (self.in_flight.load(Ordering::Relaxed) == 0)
            .then(|| self.at(self.last_io_ms.load(Ordering::Relaxed)) + keep_alive);
        if idle_deadline.is_some_and(|deadline| deadline <= now) {
            return Verdict::Idle;
        }
        let next = [head_deadline, idle_deadline, Some(now + keep_alive)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + keep_alive);
        Verdict::Check(next)
    }

    /// Waits until the connection is idle past `keep_alive` or its head late past `header`.
    pub async fn expired(&self, keep_alive: Duration, header: Duration) -> Verdict {
        loop {
            match self.verdict(keep_alive, header) {
                Verdict::Check(at) => tokio::time::sleep_until(at).await,
                closing => return closing,
            }
        }
    }
}

/// Counts one request as in flight while it lives.
pub struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.wrote();
    }
}

/// A stream whose reads and writes are recorded in an [`Activity`].
pub struct TrackedIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> TrackedIo<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        TrackedIo { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let read = &buf.filled()[before..];
            if !read.is_empty() {
                this.activity.read(read);
            }
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            if n > 0 {
                self.activity.wrote();
            }
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = result {
            if n > 0 {
                self.activity.wrote();
            }
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP_ALIVE: Duration = Duration::from_secs(60);
    const HEADER: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn silent_connections_are_idle_after_the_keep_alive_timeout() {
        let activity = Activity::new();
        assert!(matches!(
            activity.verdict(KEEP_ALIVE, HEADER),
            Verdict::Check(_)
        ));
        assert_eq!(activity.expired(KEEP_ALIVE, HEADER).await, Verdict::Idle);
        assert!(activity.opened.elapsed() >= KEEP_ALIVE);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_in_flight_keep_a_connection_and_a_partial_head_does_not() {
        let activity = Activity::new();
        let guard = activity.request();
        tokio::time::advance(KEEP_ALIVE * 2).await;
        assert!(matches!(
            activity.verdict(KEEP_ALIVE, HEADER),
            Verdict::Check(_)
        ));
        drop(guard);
        activity.read(b"GET / HT");
        assert_eq!(
            activity.expired(KEEP_ALIVE, HEADER).await,
            Verdict::SlowHead
        );
    }

    #[tokio::test(start_paused = true)]
    async fn http2_connections_have_no_head_timer() {
        let activity = Activity::new();
        activity.read(H2_PREFACE);
        tokio::time::advance(HEADER * 2).await;
        assert!(matches!(
            activity.verdict(KEEP_ALIVE, HEADER),
            Verdict::Check(_)
        ));
        assert_eq!(activity.expired(KEEP_ALIVE, HEADER).await, Verdict::Idle);
    }
}
