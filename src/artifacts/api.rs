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

use std::sync::Arc;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
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

/// The S3 request `$operation` addressed to `$key` in the store's bucket (each of the SDK's request
/// builders is a type of its own, so no function takes them all).
macro_rules! object_request {
    ($s3:expr, $operation:ident, $root:expr, $key:expr) => {
        $s3.$operation().bucket(&$root.bucket).key($key)
    };
}

/// A request body as the gateway reads it: a stream of chunks, or of the error that broke it off.
pub trait UploadBody: Stream<Item = Result<Self::Chunk, Self::Broken>> + Send {
    type Chunk: Buf;
    type Broken: std::fmt::Display;
}

impl<S, B, E> UploadBody for S
where
    S: Stream<Item = Result<B, E>> + Send,
    B: Buf,
    E: std::fmt::Display,
{
    type Chunk = B;
    type Broken = E;
}

impl Gateway {
    /// Serves one artifact API request. `who` names the caller in audit lines.
    pub async fn serve<S: UploadBody>(
        &self,
        route: Route<'_>,
        method: &Method,
        query: &str,
        headers: &HeaderMap,
        body: S,
        who: &str,
    ) -> warp::reply::Response {
        let root = match self.known_root().await {
            Ok(root) => root,
            Err(refusal) => return refusal,
        };
        match route {
            Route::Multipart => Error::NotImplemented(MPU_UNSUPPORTED.into()).into_response(),
            Route::List if *method == Method::GET || *method == Method::HEAD => {
                self.serve_listing(&root, query).await
            }
            Route::List => method_not_allowed(method),
            Route::Object(raw) => {
                self.serve_object(&root, raw, method, headers, body, who)
                    .await
            }
        }
    }

    /// The store's root, discovered now if it is not known yet; else the 503 that says why not.
    async fn known_root(&self) -> Result<Arc<StoreRoot>, warp::reply::Response> {
        if let Some(root) = self.root() {
            return Ok(root);
        }
        self.discover().await.map_err(|message| {
            Error::Unavailable(format!("the artifact store is not known yet: {message}"))
                .into_response()
        })
    }

    /// `GET …/artifacts?path=`: the listing of the directory `path` names.
    async fn serve_listing(&self, root: &StoreRoot, query: &str) -> warp::reply::Response {
        let Ok(path) = query_param(query, "path").transpose() else {
            return bad_request("broken percent-encoding in ?path=");
        };
        let relative = match root.checked_relative(path.as_deref()) {
            Ok(relative) => relative,
            Err(e) => return bad_request(&e.0),
        };
        let result = self.list(root, &relative).await;
        self.respond(result, &relative)
    }

    /// `…/artifacts/<path>`: download, upload or delete of one artifact (audited when it writes).
    async fn serve_object<S: UploadBody>(
        &self,
        root: &StoreRoot,
        raw_path: &str,
        method: &Method,
        headers: &HeaderMap,
        body: S,
        who: &str,
    ) -> warp::reply::Response {
        let (relative, key) = match root.key_for_url_path(raw_path) {
            Ok(pair) => pair,
            Err(e) => return bad_request(&e.0),
        };
        let result = match *method {
            Method::GET => self.download(root, &key, headers, false).await,
            Method::HEAD => self.download(root, &key, headers, true).await,
            Method::PUT => self
                .upload(root, &key, declared_length(headers), body)
                .await
                .map(audited(who, method, "uploaded")),
            Method::DELETE => self
                .delete(root, &key)
                .await
                .map(audited(who, method, "deleted")),
            _ => return method_not_allowed(method),
        };
        self.respond(result, &relative)
    }

    /// The response to a served request, or the error shape of its failure (S3's naming `relative`).
    fn respond(
        &self,
        result: Result<warp::reply::Response, Failure>,
        relative: &str,
    ) -> warp::reply::Response {
        match result {
            Ok(response) => response,
            Err(Failure::S3(failure)) => {
                let the_stores = failure.is_the_stores();
                let error = failure.into_error(relative);
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
                setting: "--max-body-size",
            }
            .into_response(),
        }
    }

    /// The object at `key` (`Range` honoured), or with `head_only` its headers alone.
    async fn download(
        &self,
        root: &StoreRoot,
        key: &str,
        headers: &HeaderMap,
        head_only: bool,
    ) -> Result<warp::reply::Response, Failure> {
        let mut response = if head_only {
            self.head_object(root, key).await?
        } else {
            self.get_object(root, key, requested_range(headers)).await?
        };
        set_file_headers(response.headers_mut(), basename(key));
        Ok(response)
    }

    /// A bodyless response with the object's length.
    async fn head_object(
        &self,
        root: &StoreRoot,
        key: &str,
    ) -> Result<warp::reply::Response, Failure> {
        let out = object_request!(self.s3, head_object, root, key)
            .send()
            .await
            .map_err(on_object(root, key, "s3:GetObject"))?;
        let mut response = warp::reply::Response::new(Default::default());
        set_content_length(response.headers_mut(), out.content_length());
        Ok(response)
    }

    /// The object (or the `range` of it) streamed: 206 with `Content-Range` when S3 answered a range.
    async fn get_object(
        &self,
        root: &StoreRoot,
        key: &str,
        range: Option<String>,
    ) -> Result<warp::reply::Response, Failure> {
        let out = object_request!(self.s3, get_object, root, key)
            .set_range(range)
            .send()
            .await
            .map_err(on_object(root, key, "s3:GetObject"))?;
        let length = out.content_length();
        let content_range = out.content_range().map(str::to_string);
        let etag = out.e_tag().map(str::to_string);
        let mut response = warp::reply::stream(paced_stream(out.body)).into_response();
        let h = response.headers_mut();
        set_content_length(h, length);
        if let Some(v) = content_range.and_then(|v| HeaderValue::from_str(&v).ok()) {
            h.insert(header::CONTENT_RANGE, v);
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        }
        if let Some(v) = etag.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert(header::ETAG, v);
        }
        Ok(response)
    }

    /// Streams the body to `key`: one PUT when it fits in a part, else a multipart upload.
    pub(crate) async fn upload<S: UploadBody>(
        &self,
        root: &StoreRoot,
        key: &str,
        declared: Option<u64>,
        body: S,
    ) -> Result<Outcome, Failure> {
        if declared.is_some_and(|d| d > self.uploads.max_body_size) {
            return Err(Failure::OverLimit);
        }
        let part_size = self.uploads.part_size as usize;
        let first_capacity = declared.map_or(part_size, |d| (d as usize).min(part_size));
        let body = std::pin::pin!(body);
        let mut parts =
            PartReader::new(body, part_size, first_capacity, self.uploads.max_body_size);
        parts.read_part().await?;
        let bytes = if parts.ended {
            self.put_whole(root, key, parts.take_part()).await?
        } else {
            self.multipart_upload(root, key, &mut parts).await?
        };
        Ok(Outcome {
            key: key.to_string(),
            bytes,
        })
    }

    /// A body that fits in one part, in one PUT. Returns its length.
    async fn put_whole(&self, root: &StoreRoot, key: &str, body: Bytes) -> Result<u64, Failure> {
        let bytes = body.len() as u64;
        object_request!(self.s3, put_object, root, key)
            .set_server_side_encryption(self.requested_encryption())
            .set_ssekms_key_id(self.uploads.kms_key_id.clone())
            .content_length(bytes as i64)
            .body(body.into())
            .send()
            .await
            .map_err(on_object(root, key, "s3:PutObject"))?;
        Ok(bytes)
    }

    /// The rest of the body as a multipart upload, aborted on any failure. Returns the bytes uploaded.
    async fn multipart_upload<S: UploadBody>(
        &self,
        root: &StoreRoot,
        key: &str,
        parts: &mut PartReader<'_, S>,
    ) -> Result<u64, Failure> {
        let upload_id = self.create_multipart_upload(root, key).await?;
        let result = async {
            let (completed, total) = self.send_parts(root, key, &upload_id, parts).await?;
            self.complete_multipart_upload(root, key, &upload_id, completed)
                .await?;
            Ok(total)
        }
        .await;
        if result.is_err() {
            self.abort_multipart_upload(root, key, &upload_id).await;
        }
        result
    }

    /// Starts a multipart upload to `key`; its upload id.
    async fn create_multipart_upload(
        &self,
        root: &StoreRoot,
        key: &str,
    ) -> Result<String, Failure> {
        let created = object_request!(self.s3, create_multipart_upload, root, key)
            // S3 takes the encryption of a multipart upload from this call only (not from the parts).
            .set_server_side_encryption(self.requested_encryption())
            .set_ssekms_key_id(self.uploads.kms_key_id.clone())
            .send()
            .await
            .map_err(on_object(root, key, "s3:PutObject"))?;
        created.upload_id().map(str::to_string).ok_or_else(|| {
            Failure::S3(S3Failure::Unavailable(
                "CreateMultipartUpload answered no UploadId".into(),
            ))
        })
    }

    /// Uploads the body part by part as it is read (an empty last part is skipped). Returns the parts
    /// for completing the upload and the bytes sent.
    async fn send_parts<S: UploadBody>(
        &self,
        root: &StoreRoot,
        key: &str,
        upload_id: &str,
        parts: &mut PartReader<'_, S>,
    ) -> Result<(Vec<CompletedPart>, u64), Failure> {
        let mut completed = Vec::new();
        let mut total = 0u64;
        let mut number = 1i32;
        loop {
            let part = parts.take_part();
            if !part.is_empty() || number == 1 {
                if number > MAX_PARTS {
                    return Err(Failure::TooLarge(format!(
                        "upload needs more than {MAX_PARTS} parts of --artifact-part-size"
                    )));
                }
                total += part.len() as u64;
                completed.push(self.upload_part(root, key, upload_id, number, part).await?);
                number += 1;
            }
            if parts.ended {
                return Ok((completed, total));
            }
            parts.read_next_part().await?;
        }
    }

    async fn upload_part(
        &self,
        root: &StoreRoot,
        key: &str,
        upload_id: &str,
        number: i32,
        part: Bytes,
    ) -> Result<CompletedPart, Failure> {
        let out = object_request!(self.s3, upload_part, root, key)
            .upload_id(upload_id)
            .part_number(number)
            .content_length(part.len() as i64)
            .body(part.into())
            .send()
            .await
            .map_err(on_object(root, key, "s3:PutObject"))?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(out.e_tag().map(str::to_string))
            .build())
    }

    async fn complete_multipart_upload(
        &self,
        root: &StoreRoot,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> Result<(), Failure> {
        object_request!(self.s3, complete_multipart_upload, root, key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(on_object(root, key, "s3:PutObject"))?;
        Ok(())
    }

    /// Aborts a failed multipart upload; a failure to abort is only logged.
    async fn abort_multipart_upload(&self, root: &StoreRoot, key: &str, upload_id: &str) {
        if let Err(e) = object_request!(self.s3, abort_multipart_upload, root, key)
            .upload_id(upload_id)
            .send()
            .await
        {
            tracing::warn!(key, error = %aws_smithy_types::error::display::DisplayErrorContext(&e), "aborting a failed multipart upload failed (the bucket's lifecycle rule for incomplete uploads cleans it up)");
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
        self.for_each_listed_page(root, &format!("{key}/"), None, |page| {
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter(|k| root.relative_of(k).is_some())
                    .map(str::to_string),
            );
        })
        .await?;
        for k in &keys {
            object_request!(self.s3, delete_object, root, k)
                .send()
                .await
                .map_err(on_object(root, k, "s3:DeleteObject"))?;
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
        self.for_each_listed_page(root, &prefix, Some("/"), |page| {
            files.extend(listing_entries(page, &prefix));
        })
        .await?;
        files.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
        let body = if files.is_empty() {
            json!({})
        } else {
            json!({ "files": files })
        };
        Ok(json_response(&body))
    }

    /// Hands `on_page` every page of the keys under `prefix` (with a `delimiter`, of one level only).
    async fn for_each_listed_page(
        &self,
        root: &StoreRoot,
        prefix: &str,
        delimiter: Option<&str>,
        mut on_page: impl FnMut(&ListObjectsV2Output),
    ) -> Result<(), Failure> {
        let mut token: Option<String> = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(&root.bucket)
                .prefix(prefix)
                .set_delimiter(delimiter.map(str::to_string))
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
            on_page(&page);
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => return Ok(()),
            }
        }
    }
}

fn object_arn(root: &StoreRoot, key: &str) -> String {
    format!("arn:aws:s3:::{}/{}", root.bucket, key)
}

/// For `map_err` on an S3 call about the object `key`: the failure names `permission` on the object.
fn on_object<'a, E>(
    root: &'a StoreRoot,
    key: &'a str,
    permission: &'static str,
) -> impl FnOnce(SdkError<E, HttpResponse>) -> S3Failure + 'a
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    move |e| S3Failure::from_sdk(&e, permission, &object_arn(root, key))
}

/// The listing entries of one page: its common prefixes as directories, its keys as files (both named
/// relative to `prefix`).
fn listing_entries(page: &ListObjectsV2Output, prefix: &str) -> Vec<serde_json::Value> {
    let dirs = page
        .common_prefixes()
        .iter()
        .filter_map(|dir| {
            dir.prefix()
                .and_then(|p| p.strip_prefix(prefix))
                .map(|p| p.trim_end_matches('/'))
                .filter(|n| !n.is_empty())
        })
        .map(|name| json!({"path": name, "is_dir": true}));
    let files = page.contents().iter().filter_map(|object| {
        object
            .key()
            .and_then(|k| k.strip_prefix(prefix))
            .filter(|n| !n.is_empty())
            .map(|name| json!({"path": name, "is_dir": false, "file_size": object.size().unwrap_or(0)}))
    });
    dirs.chain(files).collect()
}

/// The body of an upload read one part at a time, counted against `--max-body-size` as it arrives.
struct PartReader<'b, S> {
    body: std::pin::Pin<&'b mut S>,
    /// What has been read and not yet taken as a part.
    buffer: BytesMut,
    part_size: usize,
    limit: u64,
    read: u64,
    /// The body has ended: what is in `buffer` is the last of it.
    ended: bool,
}

impl<'b, S: UploadBody> PartReader<'b, S> {
    fn new(
        body: std::pin::Pin<&'b mut S>,
        part_size: usize,
        first_capacity: usize,
        limit: u64,
    ) -> Self {
        PartReader {
            body,
            buffer: BytesMut::with_capacity(first_capacity),
            part_size,
            limit,
            read: 0,
            ended: false,
        }
    }

    /// Reads until the buffer holds a part or the body ends; `OverLimit` once more than the limit is read.
    async fn read_part(&mut self) -> Result<(), Failure> {
        self.ended = fill(&mut self.body, &mut self.buffer, self.part_size).await?;
        self.read += self.buffer.len() as u64;
        if self.read > self.limit {
            return Err(Failure::OverLimit);
        }
        Ok(())
    }

    /// Makes room for the next part (the buffer was taken), then reads it.
    async fn read_next_part(&mut self) -> Result<(), Failure> {
        self.buffer.reserve(self.part_size);
        self.read_part().await
    }

    /// What the buffer holds, as the next part.
    fn take_part(&mut self) -> Bytes {
        self.buffer.split().freeze()
    }
}

/// S3's object body as a response stream: each chunk is pulled from S3 only when hyper asks for the
/// next one.
fn paced_stream(body: ByteStream) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::try_unfold(body, |mut body| async move {
        match body.try_next().await {
            Ok(Some(chunk)) => Ok(Some((chunk, body))),
            Ok(None) => Ok(None),
            Err(e) => Err(std::io::Error::other(e)),
        }
    })
}

fn requested_range(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

fn set_content_length(headers: &mut HeaderMap, length: Option<i64>) {
    if let Some(len) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len.max(0) as u64));
    }
}

/// The headers of a downloaded file: its type guessed from `name`, never sniffed, offered as an
/// attachment, ranges accepted.
fn set_file_headers(h: &mut HeaderMap, name: &str) {
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
async fn fill<S: UploadBody>(
    body: &mut std::pin::Pin<&mut S>,
    buffer: &mut BytesMut,
    target: usize,
) -> Result<bool, Failure> {
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

/// For `map` on a write that succeeded: audits it and answers MLflow's empty JSON object.
fn audited<'a>(
    who: &'a str,
    method: &'a Method,
    what: &'static str,
) -> impl FnOnce(Outcome) -> warp::reply::Response + 'a {
    move |outcome| {
        audit(who, method, &outcome, what);
        json_ok()
    }
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
