//! MLflow's artifact API (`/api/2.0/mlflow-artifacts/…`) served against S3.
//!
//! - `GET …/artifacts/<path>`: streamed download (hyper's back-pressure paces the S3 body), `Range` honoured.
//! - `HEAD …/artifacts/<path>`: the same headers, no body.
//! - `PUT …/artifacts/<path>`: streamed upload; up to one part in one PUT, beyond that a multipart upload
//!   whose parts are read one at a time (memory per upload: one part), aborted on any failure.
//! - `DELETE …/artifacts/<path>`: the key and everything under `<path>/`, as MLflow's S3 store does.
//! - `GET …/artifacts?path=`: one level of a listing, `{"files":[{"path","is_dir","file_size"}]}`.
//! - `…/mpu/{create,complete,abort}/…`: declared unavailable exactly as MLflow's own server does for stores
//!   without multipart support (501 `NOT_IMPLEMENTED`), so the stock client falls back to a plain PUT.

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::json;
use warp::Reply;

use super::keys::{self, basename, StoreRoot};
use super::s3::S3Failure;
use super::{Gateway, Route};
use crate::error::Error;

/// S3's limit on parts per multipart upload.
const MAX_PARTS: i32 = 10_000;

/// MLflow's answer for multipart uploads on a store without them (`_UnsupportedMultipartUploadException`).
pub const MPU_UNSUPPORTED: &str =
    "Multipart upload is not supported for the current artifact repository";

/// What a write or delete did, for the audit line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub key: String,
    pub bytes: u64,
}

impl Gateway {
    /// Serves one artifact API request. `who` names the caller in audit lines.
    pub async fn serve<S, B, E>(
        &self,
        route: Route<'_>,
        method: &Method,
        query: &str,
        headers: &HeaderMap,
        body: S,
        who: &str,
    ) -> warp::reply::Response
    where
        S: Stream<Item = Result<B, E>> + Send,
        B: Buf,
        E: std::fmt::Display,
    {
        let root = match self.root() {
            Some(root) => root,
            None => match self.discover().await {
                Ok(root) => root,
                Err(message) => {
                    return Error::Unavailable(format!(
                        "the artifact store is not known yet: {message}"
                    ))
                    .into_response()
                }
            },
        };
        let relative_for_errors;
        let result = match route {
            Route::Multipart => {
                return Error::NotImplemented(MPU_UNSUPPORTED.into()).into_response()
            }
            Route::List if *method == Method::GET || *method == Method::HEAD => {
                let path = query_param(query, "path");
                let path = match path {
                    Some(Err(())) => return bad_request("broken percent-encoding in ?path="),
                    Some(Ok(p)) => Some(p),
                    None => None,
                };
                match root.checked_relative(path.as_deref()) {
                    Ok(relative) => {
                        relative_for_errors = relative.clone();
                        self.list(&root, &relative).await
                    }
                    Err(e) => return bad_request(&e.0),
                }
            }
            Route::List => return method_not_allowed(method),
            Route::Object(raw) => {
                let (relative, key) = match root.key_for_url_path(raw) {
                    Ok(pair) => pair,
                    Err(e) => return bad_request(&e.0),
                };
                relative_for_errors = relative.clone();
                match *method {
                    Method::GET => self.download(&root, &key, headers, false).await,
                    Method::HEAD => self.download(&root, &key, headers, true).await,
                    Method::PUT => {
                        let declared = headers
                            .get(header::CONTENT_LENGTH)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u64>().ok());
                        match self.upload(&root, &key, declared, body).await {
                            Ok(outcome) => {
                                audit(who, method, &outcome, "uploaded");
                                Ok(json_ok())
                            }
                            Err(e) => Err(e),
                        }
                    }
                    Method::DELETE => match self.delete(&root, &key).await {
                        Ok(outcome) => {
                            audit(who, method, &outcome, "deleted");
                            Ok(json_ok())
                        }
                        Err(e) => Err(e),
                    },
                    _ => return method_not_allowed(method),
                }
            }
        };
        match result {
            Ok(response) => response,
            Err(Failure::S3(failure)) => {
                let the_stores = failure.is_the_stores();
                let error = failure.into_error(&relative_for_errors);
                if the_stores {
                    self.record_failure(error.to_string());
                }
                error.into_response()
            }
            Err(Failure::Client(message)) => {
                Error::BadRequest(format!("reading the upload failed: {message}")).into_response()
            }
            Err(Failure::TooLarge(message)) => Error::BodyTooLarge(message).into_response(),
            Err(Failure::OverLimit) => Error::PayloadTooLarge {
                limit: self.uploads.max_body_size,
            }
            .into_response(),
        }
    }

    async fn download(
        &self,
        root: &StoreRoot,
        key: &str,
        headers: &HeaderMap,
        head_only: bool,
    ) -> Result<warp::reply::Response, Failure> {
        let range = headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut response = if head_only {
            let out = self
                .s3
                .head_object()
                .bucket(&root.bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| S3Failure::from_sdk(&e, "s3:GetObject", &object_arn(root, key)))?;
            let mut response = warp::reply::Response::new(Default::default());
            if let Some(len) = out.content_length() {
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(len.max(0) as u64));
            }
            response
        } else {
            let out = self
                .s3
                .get_object()
                .bucket(&root.bucket)
                .key(key)
                .set_range(range.clone())
                .send()
                .await
                .map_err(|e| S3Failure::from_sdk(&e, "s3:GetObject", &object_arn(root, key)))?;
            let length = out.content_length();
            let content_range = out.content_range().map(str::to_string);
            let etag = out.e_tag().map(str::to_string);
            let body = out.body;
            // Each chunk is pulled from S3 only when hyper asks for the next one.
            let stream = futures_util::stream::try_unfold(body, |mut body| async move {
                match body.try_next().await {
                    Ok(Some(chunk)) => Ok(Some((chunk, body))),
                    Ok(None) => Ok(None),
                    Err(e) => Err(std::io::Error::other(e)),
                }
            });
            let mut response = warp::reply::stream(stream).into_response();
            let h = response.headers_mut();
            if let Some(len) = length {
                h.insert(header::CONTENT_LENGTH, HeaderValue::from(len.max(0) as u64));
            }
            if let Some(v) = content_range.and_then(|v| HeaderValue::from_str(&v).ok()) {
                h.insert(header::CONTENT_RANGE, v);
                *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            }
            if let Some(v) = etag.and_then(|v| HeaderValue::from_str(&v).ok()) {
                response.headers_mut().insert(header::ETAG, v);
            }
            response
        };
        let h = response.headers_mut();
        let name = basename(key);
        let mime = mime_guess::from_path(name).first_or_octet_stream();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(mime.essence_str())
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        );
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        h.insert(
            header::HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        );
        if let Ok(v) = HeaderValue::from_str(&format!(
            "attachment; filename=\"{}\"",
            name.replace(['"', '\\'], "_")
        )) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        Ok(response)
    }

    /// Streams the body to `key`: one PUT when it fits in a part, else a multipart upload.
    pub(crate) async fn upload<S, B, E>(
        &self,
        root: &StoreRoot,
        key: &str,
        declared: Option<u64>,
        body: S,
    ) -> Result<Outcome, Failure>
    where
        S: Stream<Item = Result<B, E>> + Send,
        B: Buf,
        E: std::fmt::Display,
    {
        if declared.is_some_and(|d| d > self.uploads.max_body_size) {
            return Err(Failure::OverLimit);
        }
        let part_size = self.uploads.part_size as usize;
        let mut body = std::pin::pin!(body);
        let first_capacity = declared.map_or(part_size, |d| (d as usize).min(part_size));
        let mut buffer = BytesMut::with_capacity(first_capacity);
        let mut ended = fill(&mut body, &mut buffer, part_size).await?;
        let mut read = buffer.len() as u64;
        if read > self.uploads.max_body_size {
            return Err(Failure::OverLimit);
        }
        if ended {
            let bytes = buffer.len() as u64;
            self.s3
                .put_object()
                .bucket(&root.bucket)
                .key(key)
                .set_server_side_encryption(self.requested_encryption())
                .set_ssekms_key_id(self.uploads.kms_key_id.clone())
                .content_length(bytes as i64)
                .body(buffer.freeze().into())
                .send()
                .await
                .map_err(|e| S3Failure::from_sdk(&e, "s3:PutObject", &object_arn(root, key)))?;
            return Ok(Outcome {
                key: key.to_string(),
                bytes,
            });
        }
        let created = self
            .s3
            .create_multipart_upload()
            .bucket(&root.bucket)
            .key(key)
            // S3 takes the encryption of a multipart upload from this call only (not from the parts).
            .set_server_side_encryption(self.requested_encryption())
            .set_ssekms_key_id(self.uploads.kms_key_id.clone())
            .send()
            .await
            .map_err(|e| S3Failure::from_sdk(&e, "s3:PutObject", &object_arn(root, key)))?;
        let Some(upload_id) = created.upload_id().map(str::to_string) else {
            return Err(Failure::S3(S3Failure::Unavailable(
                "CreateMultipartUpload answered no UploadId".into(),
            )));
        };
        let result = async {
            let mut parts = Vec::new();
            let mut total = 0u64;
            let mut number = 1i32;
            loop {
                let part: Bytes = buffer.split().freeze();
                if !part.is_empty() || number == 1 {
                    if number > MAX_PARTS {
                        return Err(Failure::TooLarge(format!(
                            "upload needs more than {MAX_PARTS} parts of --artifact-part-size"
                        )));
                    }
                    total += part.len() as u64;
                    let len = part.len() as i64;
                    let out = self
                        .s3
                        .upload_part()
                        .bucket(&root.bucket)
                        .key(key)
                        .upload_id(&upload_id)
                        .part_number(number)
                        .content_length(len)
                        .body(part.into())
                        .send()
                        .await
                        .map_err(|e| {
                            S3Failure::from_sdk(&e, "s3:PutObject", &object_arn(root, key))
                        })?;
                    parts.push(
                        aws_sdk_s3::types::CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(out.e_tag().map(str::to_string))
                            .build(),
                    );
                    number += 1;
                }
                if ended {
                    break;
                }
                buffer.reserve(part_size);
                ended = fill(&mut body, &mut buffer, part_size).await?;
                read += buffer.len() as u64;
                if read > self.uploads.max_body_size {
                    return Err(Failure::OverLimit);
                }
            }
            self.s3
                .complete_multipart_upload()
                .bucket(&root.bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(
                    aws_sdk_s3::types::CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| S3Failure::from_sdk(&e, "s3:PutObject", &object_arn(root, key)))?;
            Ok(total)
        }
        .await;
        match result {
            Ok(bytes) => Ok(Outcome {
                key: key.to_string(),
                bytes,
            }),
            Err(failure) => {
                if let Err(e) = self
                    .s3
                    .abort_multipart_upload()
                    .bucket(&root.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await
                {
                    tracing::warn!(key, error = %aws_smithy_types::error::display::DisplayErrorContext(&e), "aborting a failed multipart upload failed (the bucket's lifecycle rule for incomplete uploads cleans it up)");
                }
                Err(failure)
            }
        }
    }

    /// SSE-KMS when `--artifact-kms-key-id` names a key; otherwise nothing, and the bucket's default
    /// encryption applies (so a bucket with SSE-KMS by default needs no setting). S3 must be given the key
    /// with `aws:kms`: without one it would use the account's `aws/s3` key, not the bucket's.
    fn requested_encryption(&self) -> Option<aws_sdk_s3::types::ServerSideEncryption> {
        self.uploads
            .kms_key_id
            .as_ref()
            .map(|_| aws_sdk_s3::types::ServerSideEncryption::AwsKms)
    }

    /// Deletes `key` and every key under `key/`.
    async fn delete(&self, root: &StoreRoot, key: &str) -> Result<Outcome, Failure> {
        let mut keys = vec![key.to_string()];
        let mut token: Option<String> = None;
        let prefix = format!("{key}/");
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(&root.bucket)
                .prefix(&prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    S3Failure::from_sdk(
                        &e,
                        "s3:ListBucket",
                        &format!("arn:aws:s3:::{}", root.bucket),
                    )
                })?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter(|k| root.relative_of(k).is_some())
                    .map(str::to_string),
            );
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => break,
            }
        }
        for k in &keys {
            self.s3
                .delete_object()
                .bucket(&root.bucket)
                .key(k)
                .send()
                .await
                .map_err(|e| S3Failure::from_sdk(&e, "s3:DeleteObject", &object_arn(root, k)))?;
        }
        Ok(Outcome {
            key: key.to_string(),
            bytes: keys.len() as u64,
        })
    }

    /// One level of the listing under `relative` (empty = the root).
    async fn list(
        &self,
        root: &StoreRoot,
        relative: &str,
    ) -> Result<warp::reply::Response, Failure> {
        let prefix = root.dir_prefix(relative);
        let mut files = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(&root.bucket)
                .prefix(&prefix)
                .delimiter("/")
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    S3Failure::from_sdk(
                        &e,
                        "s3:ListBucket",
                        &format!("arn:aws:s3:::{}", root.bucket),
                    )
                })?;
            for dir in page.common_prefixes() {
                if let Some(name) = dir
                    .prefix()
                    .and_then(|p| p.strip_prefix(prefix.as_str()))
                    .map(|p| p.trim_end_matches('/'))
                    .filter(|n| !n.is_empty())
                {
                    files.push(json!({"path": name, "is_dir": true}));
                }
            }
            for object in page.contents() {
                if let Some(name) = object
                    .key()
                    .and_then(|k| k.strip_prefix(prefix.as_str()))
                    .filter(|n| !n.is_empty())
                {
                    files.push(json!({"path": name, "is_dir": false, "file_size": object.size().unwrap_or(0)}));
                }
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => break,
            }
        }
        files.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
        let body = if files.is_empty() {
            json!({})
        } else {
            json!({ "files": files })
        };
        Ok(json_response(&body))
    }
}

fn object_arn(root: &StoreRoot, key: &str) -> String {
    format!("arn:aws:s3:::{}/{}", root.bucket, key)
}

/// Why a gateway call failed.
#[derive(Debug)]
pub(crate) enum Failure {
    S3(S3Failure),
    /// The client's body broke off.
    Client(String),
    TooLarge(String),
    /// The body exceeds `--max-body-size`.
    OverLimit,
}

impl From<S3Failure> for Failure {
    fn from(f: S3Failure) -> Self {
        Failure::S3(f)
    }
}

/// Reads body chunks into `buffer` until it holds at least `target` bytes or the body ends (true).
async fn fill<S, B, E>(
    body: &mut std::pin::Pin<&mut S>,
    buffer: &mut BytesMut,
    target: usize,
) -> Result<bool, Failure>
where
    S: Stream<Item = Result<B, E>> + Send,
    B: Buf,
    E: std::fmt::Display,
{
    while buffer.len() < target {
        match body.next().await {
            Some(Ok(mut chunk)) => {
                while chunk.has_remaining() {
                    let piece = chunk.chunk();
                    let n = piece.len();
                    buffer.extend_from_slice(piece);
                    chunk.advance(n);
                }
            }
            Some(Err(e)) => return Err(Failure::Client(e.to_string())),
            None => return Ok(true),
        }
    }
    Ok(false)
}

/// The (decoded) value of `name` in a query string; `Some(Err)` when its encoding is broken.
fn query_param(query: &str, name: &str) -> Option<Result<String, ()>> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| keys::decode_query_value(v).ok_or(()))
    })
}

fn audit(who: &str, method: &Method, outcome: &Outcome, what: &str) {
    tracing::info!(target: "audit", who, method = %method, key = %outcome.key, bytes = outcome.bytes, "artifact {what}");
}

fn json_ok() -> warp::reply::Response {
    json_response(&json!({}))
}

fn json_response(value: &serde_json::Value) -> warp::reply::Response {
    let mut response =
        warp::reply::Response::new(serde_json::to_vec(value).unwrap_or_default().into());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn bad_request(message: &str) -> warp::reply::Response {
    Error::BadRequest(message.to_string()).into_response()
}

fn method_not_allowed(method: &Method) -> warp::reply::Response {
    tracing::debug!(%method, "method not served on MLflow's artifact API");
    Error::MethodNotAllowed.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_decode_strictly() {
        assert_eq!(
            query_param("path=0%2Fr+x", "path"),
            Some(Ok("0/r x".into()))
        );
        assert_eq!(query_param("a=1&path=", "path"), Some(Ok(String::new())));
        assert_eq!(query_param("a=1", "path"), None);
        assert_eq!(query_param("path=%zz", "path"), Some(Err(())));
    }

    #[tokio::test]
    async fn fill_reads_up_to_a_part() {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            (0..5).map(|i| Ok(Bytes::from(vec![i as u8; 4]))).collect();
        let stream = futures_util::stream::iter(chunks);
        let mut stream = std::pin::pin!(stream);
        let mut buffer = BytesMut::new();
        assert!(!fill(&mut stream, &mut buffer, 10).await.unwrap());
        assert_eq!(buffer.len(), 12, "whole chunks: at least the target");
        buffer.clear();
        assert!(fill(&mut stream, &mut buffer, 10).await.unwrap());
        assert_eq!(buffer.len(), 8);
        let broken: Vec<Result<Bytes, std::io::Error>> = vec![Err(std::io::Error::other("reset"))];
        let stream = futures_util::stream::iter(broken);
        let mut stream = std::pin::pin!(stream);
        assert!(matches!(
            fill(&mut stream, &mut BytesMut::new(), 10).await,
            Err(Failure::Client(_))
        ));
    }
}
