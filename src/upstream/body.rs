//! Request bodies: read with a size limit, hashed for SigV4 while they arrive, kept in memory when
//! small and spooled to a temporary file when large, then replayable as an upstream body (so a request
//! can be retried once after a credentials refresh).

use std::path::Path;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt};
use http_body_util::{BodyExt, Full, StreamBody};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::aws::sigv4::EMPTY_SHA256;
use crate::error::Error;
use crate::net::http_client::UpstreamBody;

/// After refusing a body as too large, up to this much more of it is read and discarded so that the
/// client, still sending, reads the 413 instead of a connection reset.
const DRAIN_AFTER_REFUSAL: u64 = 16 * 1024 * 1024;

/// Read size when streaming a spooled body back out.
const SPOOL_READ_CHUNK: usize = 256 * 1024;

/// The 413 for a client that waits for `100 Continue` (`Expect: 100-continue`) with a `Content-Length`
/// over `max`, to be returned before anything reads the body: hyper sends `100 Continue` the first time
/// the body is polled, which would invite the client to send what is then refused. (Without the
/// expectation the client is already sending, and [`read_body`] reads a little of it before refusing.)
pub fn refuse_before_continue(headers: &http::HeaderMap, max: u64) -> Result<(), Error> {
    let expects_continue = headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(len) if expects_continue && len > max => Err(Error::PayloadTooLarge {
            limit: max,
            setting: "--max-body-size",
        }),
        _ => Ok(()),
    }
}

pub struct BodyLimits<'a> {
    pub max: u64,
    /// The flag that sets `max`, named in the 413.
    pub max_setting: &'static str,
    pub in_memory: u64,
    pub spool_dir: &'a Path,
    /// Longest pause between two chunks from the client.
    pub idle_timeout: Duration,
}

#[derive(Debug)]
enum Stored {
    Memory(Bytes),
    Spooled { path: tempfile::TempPath, len: u64 },
}

/// A fully received request body and its SHA-256.
#[derive(Debug)]
pub struct PreparedBody {
    stored: Stored,
    sha256_hex: String,
}

impl PreparedBody {
    pub fn empty() -> Self {
        PreparedBody {
            stored: Stored::Memory(Bytes::new()),
            sha256_hex: EMPTY_SHA256.to_string(),
        }
    }

    pub fn len(&self) -> u64 {
        match &self.stored {
            Stored::Memory(bytes) => bytes.len() as u64,
            Stored::Spooled { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn sha256_hex(&self) -> &str {
        &self.sha256_hex
    }

    #[cfg(test)]
    pub fn is_spooled(&self) -> bool {
        matches!(self.stored, Stored::Spooled { .. })
    }

    /// A fresh upstream body over the same bytes (callable again for a retry).
    pub async fn upstream_body(&self) -> Result<UpstreamBody, Error> {
        match &self.stored {
            Stored::Memory(bytes) => Ok(Full::new(bytes.clone())
                .map_err(|never| match never {})
                .boxed()),
            Stored::Spooled { path, .. } => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| Error::Internal(format!("reopening spooled body: {e}")))?;
                let stream = tokio_util::io::ReaderStream::with_capacity(file, SPOOL_READ_CHUNK)
                    .map_ok(http_body::Frame::data);
                Ok(BodyExt::boxed(StreamBody::new(stream)))
            }
        }
    }
}

/// Reads a request body into memory or a spool file, hashing it, within `limits`.
pub async fn read_body<S, B, E>(
    stream: S,
    declared_len: Option<u64>,
    limits: &BodyLimits<'_>,
) -> Result<PreparedBody, Error>
where
    S: Stream<Item = Result<B, E>> + Send,
    E: std::fmt::Display + Send,
    B: Buf,
{
    let mut stream = std::pin::pin!(stream);
    if declared_len.is_some_and(|len| len > limits.max) {
        return Err(refuse_too_large(&mut stream, limits).await);
    }
    let initial = declared_len.unwrap_or(0).min(limits.in_memory) as usize;
    let mut received = Received::with_capacity(initial);
    while let Some(mut chunk) = next_chunk(&mut stream, limits.idle_timeout).await? {
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            let len = piece.len();
            if received.total + len as u64 > limits.max {
                return Err(refuse_too_large(&mut stream, limits).await);
            }
            received.append(piece, limits).await?;
            chunk.advance(len);
        }
    }
    received.finish(declared_len).await
}

/// The client's next chunk (`None` at the end of the body); a broken body, or a pause longer than
/// `idle_timeout`, is a bad request.
async fn next_chunk<S, B, E>(
    stream: &mut std::pin::Pin<&mut S>,
    idle_timeout: Duration,
) -> Result<Option<B>, Error>
where
    S: Stream<Item = Result<B, E>> + Send,
    E: std::fmt::Display + Send,
    B: Buf,
{
    let next = tokio::time::timeout(idle_timeout, stream.next())
        .await
        .map_err(|_| {
            Error::BadRequest(format!(
                "the client stopped sending the request body for {idle_timeout:?}"
            ))
        })?;
    next.transpose()
        .map_err(|e| Error::BadRequest(format!("reading the request body failed: {e}")))
}

/// The 413 for a body over `limits.max`, after draining what the client is still sending.
async fn refuse_too_large<S, B, E>(
    stream: &mut std::pin::Pin<&mut S>,
    limits: &BodyLimits<'_>,
) -> Error
where
    S: Stream<Item = Result<B, E>> + Send,
    E: std::fmt::Display + Send,
    B: Buf,
{
    drain(stream, limits.idle_timeout).await;
    Error::PayloadTooLarge {
        limit: limits.max,
        setting: limits.max_setting,
    }
}

/// What has arrived of a body: its running hash and length, and its bytes, in memory until they pass
/// the in-memory limit and in a spool file from then on.
struct Received {
    hasher: Sha256,
    memory: BytesMut,
    spool: Option<(tokio::fs::File, tempfile::TempPath)>,
    total: u64,
}

impl Received {
    fn with_capacity(capacity: usize) -> Self {
        Received {
            hasher: Sha256::new(),
            memory: BytesMut::with_capacity(capacity),
            spool: None,
            total: 0,
        }
    }

    /// Hashes and keeps `piece`, moving what is in memory to a spool file once past `limits.in_memory`.
    async fn append(&mut self, piece: &[u8], limits: &BodyLimits<'_>) -> Result<(), Error> {
        self.total += piece.len() as u64;
        self.hasher.update(piece);
        if self.spool.is_none() && self.total > limits.in_memory {
            self.spool = Some(start_spool(limits.spool_dir, &self.memory).await?);
            self.memory = BytesMut::new();
        }
        match self.spool.as_mut() {
            Some((file, _)) => file
                .write_all(piece)
                .await
                .map_err(|e| Error::Internal(format!("writing spooled body: {e}")))?,
            None => self.memory.extend_from_slice(piece),
        }
        Ok(())
    }

    /// The whole body, once it is checked against the length the client declared.
    async fn finish(self, declared_len: Option<u64>) -> Result<PreparedBody, Error> {
        let total = self.total;
        if declared_len.is_some_and(|len| len != total) {
            return Err(Error::BadRequest(format!(
                "request body was {total} bytes but Content-Length said {}",
                declared_len.unwrap_or_default()
            )));
        }
        let sha256_hex = hex::encode(self.hasher.finalize());
        let stored = match self.spool {
            Some((mut file, path)) => {
                file.flush()
                    .await
                    .map_err(|e| Error::Internal(format!("flushing spooled body: {e}")))?;
                Stored::Spooled { path, len: total }
            }
            None => Stored::Memory(self.memory.freeze()),
        };
        Ok(PreparedBody { stored, sha256_hex })
    }
}

/// Reads and discards up to [`DRAIN_AFTER_REFUSAL`] bytes of what the client is still sending.
async fn drain<S, B, E>(stream: &mut std::pin::Pin<&mut S>, idle_timeout: Duration)
where
    S: Stream<Item = Result<B, E>> + Send,
    E: std::fmt::Display + Send,
    B: Buf,
{
    let mut drained = 0u64;
    while drained < DRAIN_AFTER_REFUSAL {
        match tokio::time::timeout(idle_timeout, stream.next()).await {
            Ok(Some(Ok(chunk))) => drained += chunk.remaining() as u64,
            _ => return,
        }
    }
}

async fn start_spool(
    dir: &Path,
    already: &[u8],
) -> Result<(tokio::fs::File, tempfile::TempPath), Error> {
    let named = tempfile::Builder::new()
        .prefix("mlflow-proxy-body-")
        .tempfile_in(dir)
        .map_err(|e| {
            Error::Internal(format!(
                "cannot create a spool file in {} (--spool-dir): {e}",
                dir.display()
            ))
        })?;
    let (std_file, path) = named.into_parts();
    let mut file = tokio::fs::File::from_std(std_file);
    file.write_all(already)
        .await
        .map_err(|e| Error::Internal(format!("writing spooled body: {e}")))?;
    Ok((file, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: Vec<&'static [u8]>) -> impl Stream<Item = Result<Bytes, warp::Error>> + Send {
        futures_util::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p))))
    }

    fn limits(dir: &Path, max: u64, in_memory: u64) -> BodyLimits<'_> {
        BodyLimits {
            max,
            max_setting: "--max-body-size",
            in_memory,
            spool_dir: dir,
            idle_timeout: Duration::from_secs(5),
        }
    }

    async fn collect(body: &PreparedBody) -> Vec<u8> {
        body.upstream_body()
            .await
            .unwrap()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    #[tokio::test]
    async fn small_bodies_stay_in_memory_and_hash_correctly() {
        let dir = tempfile::tempdir().unwrap();
        let body = read_body(
            chunks(vec![b"{\"name\":", b"\"x\"}"]),
            Some(12),
            &limits(dir.path(), 100, 50),
        )
        .await
        .unwrap();
        assert!(!body.is_spooled());
        assert_eq!(body.len(), 12);
        assert_eq!(
            body.sha256_hex(),
            hex::encode(Sha256::digest(b"{\"name\":\"x\"}"))
        );
        assert_eq!(collect(&body).await, b"{\"name\":\"x\"}");
    }

    #[tokio::test]
    async fn large_bodies_spool_to_disk_replay_twice_and_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let body = read_body(
            chunks(vec![b"0123456789", b"abcdefghij", b"KLMNO"]),
            None,
            &limits(dir.path(), 100, 12),
        )
        .await
        .unwrap();
        assert!(body.is_spooled());
        assert_eq!(body.len(), 25);
        assert_eq!(collect(&body).await, b"0123456789abcdefghijKLMNO");
        assert_eq!(collect(&body).await, b"0123456789abcdefghijKLMNO");
        assert_eq!(
            body.sha256_hex(),
            hex::encode(Sha256::digest(b"0123456789abcdefghijKLMNO"))
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        drop(body);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn over_the_limit_is_413_declared_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let declared = read_body(chunks(vec![b"x"]), Some(1000), &limits(dir.path(), 10, 5)).await;
        assert!(matches!(
            declared,
            Err(Error::PayloadTooLarge { limit: 10, .. })
        ));
        let streamed = read_body(
            chunks(vec![b"0123456", b"789ab"]),
            None,
            &limits(dir.path(), 10, 5),
        )
        .await;
        assert!(matches!(
            streamed,
            Err(Error::PayloadTooLarge { limit: 10, .. })
        ));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn empty_body_has_the_empty_hash() {
        let dir = tempfile::tempdir().unwrap();
        let body = read_body(chunks(vec![]), None, &limits(dir.path(), 10, 5))
            .await
            .unwrap();
        assert_eq!(body.sha256_hex(), EMPTY_SHA256);
        assert!(body.is_empty());
        assert_eq!(PreparedBody::empty().sha256_hex(), EMPTY_SHA256);
    }

    #[tokio::test]
    async fn a_stalled_client_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let stalled = futures_util::stream::pending::<Result<Bytes, warp::Error>>();
        let mut l = limits(dir.path(), 10, 5);
        l.idle_timeout = Duration::from_millis(50);
        let result = read_body(stalled, None, &l).await;
        assert!(matches!(result, Err(Error::BadRequest(m)) if m.contains("stopped sending")));
    }
}
