//! The MLflow request pipeline: every MLflow call, from the API or the UI, passes the gate's checks in
//! order, is forwarded upstream, and is audited.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures_util::future::Either;
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::app::App;
use crate::error::{json_error, Error};
use crate::gate::audit;
use crate::gate::auth::Identity;
use crate::gate::browser;
use crate::gate::limits::Refusal;
use crate::gate::policy;
use crate::net::client_addr::ClientAddr;
use crate::upstream::ui;
use crate::upstream::{Inbound, UpstreamAuth};

/// An MLflow API call (`proxy::path::is_mlflow_api_path`), handed over by the server without going
/// through warp's filter chain: these calls are nearly all the traffic, and the chain would copy the
/// header map and box the route's future on each of them.
pub async fn handle_api_request(
    app: Arc<App>,
    request: http::Request<hyper::body::Incoming>,
) -> warp::reply::Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let inbound = Inbound {
        class: "unknown",
        method: parts.method,
        path: path.clone(),
        query: Some(parts.uri.query().unwrap_or_default().to_string()),
        headers: parts.headers,
        remote: parts.extensions.get::<ClientAddr>().map(|a| a.0),
        body: http_body_util::BodyDataStream::new(body),
    };
    handle_mlflow(&app, inbound, &path, false).await
}

/// Largest body read ahead of forwarding for classification (GraphQL) and audit details.
const MAX_INSPECTED_BODY: u64 = 1 << 20;

/// The gate every MLflow request passes, in order: header limits, CORS and cross-origin refusal,
/// authentication, rate and concurrency limits, permission by operation class; then forwarding (with the
/// caller's own AWS session when per-user sessions are on), the audit event, and the UI's header rewrite.
pub(crate) async fn handle_mlflow<S, B, E>(
    app: &App,
    inbound: Inbound<S>,
    upstream_path: &str,
    is_ui: bool,
) -> warp::reply::Response
where
    S: Stream<Item = Result<B, E>> + Send,
    E: std::fmt::Display + Send,
    B: Buf,
{
    if let Err(refusal) = app.limits.check_headers(&inbound.headers) {
        return refusal_response(refusal);
    }
    // Ambiguous paths are refused before anything (classification included) looks at them.
    if let Err(e) = crate::upstream::path::validate_path(upstream_path) {
        return e.into_response();
    }
    let allowed = &app.settings.cors_allowed_origins;
    let origin = browser::classify_origin(&inbound.headers, allowed);
    if let Some(response) = browser::preflight(&inbound.method, &inbound.headers, &origin) {
        return response;
    }
    if let Some(response) = browser::refuse_cross_origin(&inbound.method, &origin) {
        return response;
    }
    // The Origin value is needed after `inbound` moves into the forwarder.
    let origin_value = match origin {
        browser::Origin::Allowed(v) => Some(v.clone()),
        _ => None,
    };
    let identity = match authenticate(app, &inbound.headers, inbound.remote).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    if let Err(refusal) = app.limits.check_rate(&identity.name) {
        return refusal_response(refusal);
    }
    let _permit = match app.limits.admit() {
        Ok(permit) => permit,
        Err(refusal) => return refusal_response(refusal),
    };

    // GraphQL (to tell queries from mutations) and small bodies of mutating calls (for the audit
    // event) are read ahead; everything else streams straight into the forwarder.
    let is_graphql = upstream_path.trim_end_matches('/') == "/graphql";
    let query = inbound.query.clone().unwrap_or_default();
    let provisional = policy::classify(&inbound.method, upstream_path, Some(query.as_bytes()));
    let declared_len = inbound
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // The body is read ahead for an audit line or a policy's experiment rules only when one of them
    // will use it (audit lines go to the log at info level, so a stricter log filter drops them).
    let audit_on = audit::enabled();
    let read_ahead = (is_graphql && inbound.method == Method::POST)
        || ((audit_on || app.policy.is_enforced())
            && audit::is_audited(provisional)
            && declared_len.is_some_and(|l| l > 0 && l <= MAX_INSPECTED_BODY));
    let (inbound, body_bytes) = if read_ahead {
        match read_small_body(inbound).await {
            Ok(pair) => pair,
            Err(e) => return e.into_response(),
        }
    } else {
        let to_bytes: ChunkToBytes<B, E> = chunk_to_bytes::<B, E>;
        (
            inbound.map_body(|body| Either::Left(body.map(to_bytes))),
            None,
        )
    };
    let class = if is_graphql {
        let text = body_bytes.clone().unwrap_or_else(|| {
            crate::net::form::percent_decode_strict(&query.replace('+', " "))
                .map(|decoded| Bytes::from(decoded.into_owned()))
                .unwrap_or_default()
        });
        policy::classify(&inbound.method, upstream_path, Some(&text))
    } else {
        provisional
    };
    let mut inbound = inbound;
    inbound.class = if is_ui && class == Some(policy::Class::Read) {
        "ui"
    } else {
        class.map(policy::Class::name).unwrap_or("unknown")
    };
    // Only a policy uses the experiment name (prefix rules); skip the body parse otherwise.
    let experiment = app
        .policy
        .is_enforced()
        .then(|| named_experiment(&query, body_bytes.as_deref()))
        .flatten();
    if let Err(denial) = app.policy.check(&identity, class, experiment.as_deref()) {
        tracing::info!(target: "audit", who = %identity.name, path = %inbound.path, method = %inbound.method, reason = %denial, "denied");
        return json_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            &format!("{denial} (identity {:?})", identity.name),
        );
    }

    let user_credentials = match (&app.aws, app.aws.as_ref().and_then(|a| a.per_user.as_ref())) {
        (Some(_), Some(per_user)) => Some(per_user.for_caller(&identity.name)),
        _ => None,
    };
    let credentials = user_credentials
        .as_ref()
        .or(app.aws.as_ref().map(|a| &a.credentials));
    let upstream_auth = match (is_ui, &app.ui_session, credentials) {
        (true, Some(session), _) => UpstreamAuth::Session(session),
        (_, _, Some(cache)) => UpstreamAuth::Sign(cache),
        _ => UpstreamAuth::Unsigned,
    };
    let audited = audit_on && audit::is_audited(class);
    let (method, path, remote) = (inbound.method.clone(), inbound.path.clone(), inbound.remote);
    let subjects = if audited {
        audit::subjects(&query, body_bytes.as_deref())
    } else {
        String::new()
    };

    // Boxed: forwarding is the largest future here, and without the box every layer that holds this
    // future (the server's dispatch, warp's filters for the UI route) would copy its full size on
    // each move.
    let mut response = Box::pin(app.forwarder.forward(inbound, upstream_path, upstream_auth)).await;

    if audited {
        let request_id = response
            .headers()
            .get(&crate::upstream::headers::X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        audit::emit(&audit::AuditEvent {
            identity: &identity,
            remote,
            method: &method,
            path: &path,
            class,
            subjects: &subjects,
            status: response.status().as_u16(),
            request_id: &request_id,
        });
    }
    if let Some(value) = origin_value {
        browser::add_cors_headers(&mut response, &browser::Origin::Allowed(&value));
    }
    if is_ui {
        ui::rewrite_response_headers(
            response.headers_mut(),
            app.settings.upstream.authority.as_str(),
            &app.frame_policy,
        );
    }
    response
}

/// The experiment name a request names: `experiment_name` in the query (get-by-name) or `name` /
/// `new_name` in a JSON body (create, update).
fn named_experiment(query: &str, body: Option<&[u8]>) -> Option<String> {
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("experiment_name=") {
            let spaced = value.replace('+', " ");
            let decoded = crate::net::form::percent_decode_strict(&spaced)?;
            return Some(String::from_utf8_lossy(&decoded).into_owned());
        }
    }
    let json: serde_json::Value = serde_json::from_slice(body?).ok()?;
    ["new_name", "name"]
        .iter()
        .find_map(|k| json.get(*k).and_then(|v| v.as_str()).map(str::to_string))
}

type ReadAheadStream<E> = futures_util::stream::Once<std::future::Ready<Result<Bytes, E>>>;

type ChunkToBytes<B, E> = fn(Result<B, E>) -> Result<Bytes, E>;

/// One body chunk as `Bytes` (the chunks are `Bytes` already, so this does not copy).
fn chunk_to_bytes<B: Buf, E>(chunk: Result<B, E>) -> Result<Bytes, E> {
    chunk.map(|mut b| b.copy_to_bytes(b.remaining()))
}

/// Reads a body of at most [`MAX_INSPECTED_BODY`] bytes and hands it on as a one-chunk stream.
async fn read_small_body<S, B, E>(
    inbound: Inbound<S>,
) -> Result<
    (
        Inbound<Either<futures_util::stream::Map<S, ChunkToBytes<B, E>>, ReadAheadStream<E>>>,
        Option<Bytes>,
    ),
    Error,
>
where
    S: Stream<Item = Result<B, E>> + Send,
    E: std::fmt::Display + Send,
    B: Buf,
{
    let (inbound, stream) = inbound.take_body();
    let mut collected = bytes::BytesMut::new();
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk
            .map_err(|e| Error::BadRequest(format!("reading the request body failed: {e}")))?;
        if collected.len() as u64 + chunk.remaining() as u64 > MAX_INSPECTED_BODY {
            return Err(Error::PayloadTooLarge {
                limit: MAX_INSPECTED_BODY,
            });
        }
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            collected.extend_from_slice(piece);
            let n = piece.len();
            chunk.advance(n);
        }
    }
    let bytes = collected.freeze();
    let replay: ReadAheadStream<E> =
        futures_util::stream::once(std::future::ready(Ok(bytes.clone())));
    Ok((inbound.with_body(Either::Right(replay)), Some(bytes)))
}

/// Authenticates for any route but the open ones, answering 401 in MLflow's shape on failure.
pub(crate) async fn authenticate(
    app: &App,
    headers: &HeaderMap,
    remote: Option<SocketAddr>,
) -> Result<Identity, warp::reply::Response> {
    app.authenticator.authenticate(headers, remote).await.map_err(|e| {
        tracing::info!(target: "audit", remote = remote.map(|r| r.ip().to_string()), reason = %e, "authentication failed");
        let mut response = json_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", &e.to_string());
        if app.authenticator.uses_bearer_tokens() {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mlflow\""),
            );
        }
        response
    })
}

fn refusal_response(refusal: Refusal) -> warp::reply::Response {
    match refusal {
        Refusal::RateLimited { retry_after_secs } => {
            let mut response = json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "REQUEST_LIMIT_EXCEEDED",
                &format!("rate limit exceeded (--rate-limit); retry in {retry_after_secs}s"),
            );
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs),
            );
            response
        }
        Refusal::Busy => {
            let mut response = json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "REQUEST_LIMIT_EXCEEDED",
                "too many requests in flight (--max-concurrent-requests); retry shortly",
            );
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from(1u32));
            response
        }
        Refusal::HeadersTooLarge(message) => json_error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "BAD_REQUEST",
            &message,
        ),
    }
}
