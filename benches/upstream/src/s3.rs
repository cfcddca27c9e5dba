//! A minimal S3-compatible endpoint for the artifact gateway's bench: the calls the gateway and a boto3
//! transfer make, path-style (`/<bucket>/<key>`), signatures not checked.
//!
//! - `PUT /b/k`                               a single PUT: the body is read and counted, not kept
//! - `POST /b/k?uploads`                      CreateMultipartUpload
//! - `PUT /b/k?partNumber=N&uploadId=U`       UploadPart (counted, not kept)
//! - `POST /b/k?uploadId=U`                   CompleteMultipartUpload: the object's size is the parts' sum
//! - `DELETE /b/k?uploadId=U`                 AbortMultipartUpload
//! - `GET|HEAD /b/k` (with `Range`)           the object's bytes, regenerated (the same byte over and over)
//! - `DELETE /b/k`                            DeleteObject
//! - `GET /b?list-type=2&prefix=P`            ListObjectsV2 (one page)
//!
//! Only sizes are kept, so memory stays flat whatever is uploaded; a body sent with `aws-chunked`
//! encoding (boto3's checksums) counts as its `x-amz-decoded-content-length`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, RANGE};
use hyper::{Method, Request, Response, StatusCode};

use crate::{consume, reply, Reply};

#[derive(Default)]
pub struct Store {
    /// Object sizes by `bucket/key`.
    objects: Mutex<BTreeMap<String, u64>>,
    /// Part sizes of open multipart uploads, by upload id.
    uploads: Mutex<HashMap<String, BTreeMap<u32, u64>>>,
    next_upload: AtomicU64,
}

fn xml(status: StatusCode, body: String) -> Response<Reply> {
    reply(status, "application/xml", Bytes::from(body))
}

fn error(status: StatusCode, code: &str) -> Response<Reply> {
    xml(
        status,
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{code}</Message></Error>"),
    )
}

fn empty(status: StatusCode) -> Response<Reply> {
    reply(status, "application/octet-stream", Bytes::new())
}

fn with_etag(mut response: Response<Reply>, etag: &str) -> Response<Reply> {
    if let Ok(v) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(ETAG, v);
    }
    response
}

/// The value of `name` in a query string (no decoding: the values used here need none), `Some("")`
/// for a bare `name`.
fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The body's length as the client meant it (`aws-chunked` bodies carry framing and a trailer).
fn decoded_length(req: &Request<Incoming>, counted: u64) -> u64 {
    req.headers()
        .get("x-amz-decoded-content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(counted)
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` against `size`: the inclusive range, or `None` if unsatisfiable.
fn byte_range(header: &str, size: u64) -> Option<(u64, u64)> {
    let spec = header.strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let (first, last) = if start.is_empty() {
        let n: u64 = end.parse().ok()?;
        (size.saturating_sub(n), size.checked_sub(1)?)
    } else {
        let first: u64 = start.parse().ok()?;
        let last = if end.is_empty() {
            size.checked_sub(1)?
        } else {
            end.parse::<u64>().ok()?.min(size.checked_sub(1)?)
        };
        (first, last)
    };
    (first <= last && last < size).then_some((first, last))
}

impl Store {
    /// Serves one S3 call on `/<bucket>[/<key>]`.
    pub async fn handle(&self, req: Request<Incoming>) -> Result<Response<Reply>, hyper::Error> {
        let path = req.uri().path().trim_start_matches('/').to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let (bucket, key) = path.split_once('/').unwrap_or((path.as_str(), ""));
        let object = format!("{bucket}/{}", percent_decode(key));
        let method = req.method().clone();
        if key.is_empty() {
            return Ok(match method {
                Method::GET | Method::HEAD => self.list(bucket, &query),
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            });
        }
        let upload_id = query_value(&query, "uploadId").map(str::to_string);
        Ok(match (method, upload_id) {
            (Method::POST, None) if query_value(&query, "uploads").is_some() => {
                let id = format!("u{}", self.next_upload.fetch_add(1, Ordering::Relaxed));
                self.uploads
                    .lock()
                    .unwrap()
                    .insert(id.clone(), BTreeMap::new());
                xml(StatusCode::OK, format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><InitiateMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>"))
            }
            (Method::PUT, Some(id)) => {
                let number: u32 = query_value(&query, "partNumber")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let counted = consume_request(req).await?;
                match self.uploads.lock().unwrap().get_mut(&id) {
                    Some(parts) => {
                        parts.insert(number, counted);
                        with_etag(empty(StatusCode::OK), &format!("\"{id}-{number}\""))
                    }
                    None => error(StatusCode::NOT_FOUND, "NoSuchUpload"),
                }
            }
            (Method::POST, Some(id)) => {
                let (_, body) = req.into_parts();
                consume(body).await?;
                match self.uploads.lock().unwrap().remove(&id) {
                    Some(parts) => {
                        let size = parts.values().sum();
                        self.objects.lock().unwrap().insert(object, size);
                        xml(StatusCode::OK, format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><CompleteMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key><ETag>\"{id}-{}\"</ETag></CompleteMultipartUploadResult>", parts.len()))
                    }
                    None => error(StatusCode::NOT_FOUND, "NoSuchUpload"),
                }
            }
            (Method::DELETE, Some(id)) => {
                self.uploads.lock().unwrap().remove(&id);
                empty(StatusCode::NO_CONTENT)
            }
            (Method::PUT, None) => {
                let size = consume_request(req).await?;
                self.objects.lock().unwrap().insert(object, size);
                with_etag(empty(StatusCode::OK), &format!("\"s{size}\""))
            }
            (Method::DELETE, None) => {
                self.objects.lock().unwrap().remove(&object);
                empty(StatusCode::NO_CONTENT)
            }
            (method @ (Method::GET | Method::HEAD), None) => {
                let size = self.objects.lock().unwrap().get(&object).copied();
                match size {
                    None => error(StatusCode::NOT_FOUND, "NoSuchKey"),
                    Some(size) => {
                        let range = req.headers().get(RANGE).and_then(|v| v.to_str().ok());
                        object_reply(size, range, method == Method::HEAD)
                    }
                }
            }
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
        })
    }

    fn list(&self, bucket: &str, query: &str) -> Response<Reply> {
        let prefix = percent_decode(query_value(query, "prefix").unwrap_or(""));
        let full = format!("{bucket}/{prefix}");
        let objects = self.objects.lock().unwrap();
        let mut contents = String::new();
        let mut count = 0;
        for (name, size) in objects
            .range(full.clone()..)
            .take_while(|(n, _)| n.starts_with(&full))
        {
            count += 1;
            let key = &name[bucket.len() + 1..];
            contents.push_str(&format!("<Contents><Key>{key}</Key><Size>{size}</Size><ETag>\"x\"</ETag><StorageClass>STANDARD</StorageClass><LastModified>2025-01-01T00:00:00.000Z</LastModified></Contents>"));
        }
        xml(StatusCode::OK, format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>{bucket}</Name><Prefix>{prefix}</Prefix><KeyCount>{count}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"))
    }
}

async fn consume_request(req: Request<Incoming>) -> Result<u64, hyper::Error> {
    let declared = decoded_length(&req, u64::MAX);
    let counted = consume(req.into_body()).await?;
    Ok(if declared == u64::MAX {
        counted
    } else {
        declared
    })
}

/// GET or HEAD of an object of `size` bytes, whole or the requested range.
fn object_reply(size: u64, range: Option<&str>, head_only: bool) -> Response<Reply> {
    let (status, first, last) = match range {
        None => (StatusCode::OK, 0, size.saturating_sub(1)),
        Some(r) => match byte_range(r, size) {
            Some((first, last)) => (StatusCode::PARTIAL_CONTENT, first, last),
            None => return error(StatusCode::RANGE_NOT_SATISFIABLE, "InvalidRange"),
        },
    };
    let length = if size == 0 { 0 } else { last - first + 1 };
    let mut response = Response::new(Reply::Repeat {
        remaining: if head_only { 0 } else { length },
    });
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(ETAG, HeaderValue::from_static("\"bench\""));
    h.insert("accept-ranges", HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {first}-{last}/{size}")) {
            h.insert(CONTENT_RANGE, v);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(byte_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(byte_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(byte_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(byte_range("bytes=95-200", 100), Some((95, 99)));
        assert_eq!(byte_range("bytes=100-", 100), None);
        assert_eq!(percent_decode("a%20b/c+d%2B"), "a b/c+d+");
    }
}
