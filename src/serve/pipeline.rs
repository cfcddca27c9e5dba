//! The MLflow request pipeline: every MLflow call, from the API or the UI, passes the gate's checks in
//! order, is forwarded upstream, and is audited.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures_util::future::Either;
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue, Method};

use crate::app::App;
use crate::artifacts::{self, Gateway};
use crate::error::Error;
use crate::gate::audit;
use crate::gate::auth::{AuthError, Identity};
use crate::gate::browser;
use crate::gate::limits;
use crate::gate::policy;
use crate::mlflow::request::experiment_acted_on;
use crate::mlflow::routes::{is_graphql, RouteClass};
use crate::net::client_addr::{originating_ip, ClientAddr};
use crate::net::paced_body::{BodyPace, Paced};
use crate::upstream::ui;
use crate::upstream::{Inbound, UpstreamAuth};

/// An MLflow API call (`mlflow::routes::is_mlflow_api_path`), handed over by the server without going
/// through warp's filter chain: these calls are nearly all the traffic, and the chain would copy the
/// header map and box the route's future on each of them.
pub async fn handle_api_request(
    app: Arc<App>,
    request: http::Request<hyper::body::Incoming>,
) -> warp::reply::Response {
    let (parts, body) = request.into_parts();
    let path: Arc<str> = Arc::from(parts.uri.path());
    let inbound = Inbound {
        method: parts.method,
        path: path.clone(),
        query: parts.uri.query().map(Arc::from),
        headers: parts.headers,
        remote: parts.extensions.get::<ClientAddr>().map(|a| a.0),
        body: http_body_util::BodyDataStream::new(body),
    };
    handle_mlflow(&app, inbound, &path, false).await
}

/// Largest body read ahead of forwarding for classification (GraphQL) and audit details.
const MAX_INSPECTED_BODY: u64 = 1 << 20;

/// Every MLflow request passes these phases in order; each returns a typed refusal that
/// `Error::into_response` turns into the answer:
///
/// 1. `request_filter`: header limits, ambiguous paths (cheap refusals first);
/// 2. `browser_filter`: CORS preflight answered here, cross-origin writes refused;
/// 3. `authenticate`: who (401);
/// 4. `admit`: how much (the rate limit, 429), and how fast the body must come (`--min-body-rate`);
/// 5. `inspect`: the body read ahead where GraphQL, the audit line or a policy needs it, and the
///    route class decided once;
/// 6. `authorize`: what (the policy, 403);
/// 7. forwarding, with the caller's own AWS session when per-user sessions are on, once the body has
///    arrived and a slot among the requests in flight is free (429);
/// 8. `audit` and `response_filter` (CORS and UI headers) on the answer.
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
    match run_phases(app, inbound, upstream_path, is_ui).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(),
    }
}

async fn run_phases<S, B, E>(
    app: &App,
    inbound: Inbound<S>,
    upstream_path: &str,
    is_ui: bool,
) -> Result<warp::reply::Response, Error>
where
    S: Stream<Item = Result<B, E>> + Send,
    E: std::fmt::Display + Send,
    B: Buf,
{
    request_filter(app, &inbound, upstream_path)?;
    let cors_origin = match browser_filter(app, &inbound)? {
        BrowserVerdict::Answered(preflight) => return Ok(preflight),
        BrowserVerdict::Proceed { cors_origin } => cors_origin,
    };
    let identity = authenticate(app, &inbound.headers, inbound.remote).await?;
    if app.limits.is_rate_limited() {
        app.limits.check_rate(&rate_key(app, &identity, &inbound))?;
    }
    let pace = BodyPace {
        idle: app.settings.idle_timeout,
        min_rate: app.settings.min_body_rate,
    };
    let inbound = inbound.map_body(|body| Paced::new(body, pace));
    let (inbound, inspected) = inspect(app, inbound, upstream_path, is_ui).await?;
    authorize(app, &identity, &inbound, upstream_path, &inspected)?;
    let audit = AuditRecord::begin(app, &identity, &inbound, &inspected);
    let upstream_auth = upstream_auth(app, &identity, is_ui);
    let mut response = match app.artifacts.as_ref().zip(artifacts::route(upstream_path)) {
        // The artifact API: served against the store with the proxy's credentials.
        Some((gateway, route)) => {
            // Uploads stream to S3 as they arrive, so they take their slot before their body; the
            // body's pace (`--min-body-rate`) bounds how long a slow one holds it.
            let _slot = app.limits.admit()?;
            let (inbound, body) = inbound.take_body();
            let serve = gateway.serve(
                route,
                &inbound.method,
                inspected.query(),
                &inbound.headers,
                body,
                &identity.name,
            );
            Box::pin(serve).await
        }
        None => {
            // Boxed: forwarding is the largest future here, and without the box every layer that
            // holds this future (the server's dispatch, warp's filters for the UI route) would copy
            // its full size on each move.
            // The slot among the requests in flight is taken once the body has arrived (see
            // `Forwarder::forward`): a client still sending holds a connection, not a slot.
            let admit = || app.limits.admit().map_err(Error::from);
            let forward = app.forwarder.forward(
                inbound,
                upstream_path,
                upstream_auth,
                inspected.route,
                admit,
            );
            let response = Box::pin(forward).await;
            match (&app.artifacts, is_ui) {
                // API clients see `mlflow-artifacts:` locations; the UI reads artifacts through
                // MLflow's own /get-artifact and keeps MLflow's answers as they are.
                (Some(gateway), false) => gateway.rewrite_response(upstream_path, response).await,
                _ => response,
            }
        }
    };
    if let Some(audit) = audit {
        audit.finish(&response);
    }
    response_filter(app, &mut response, cors_origin, is_ui);
    Ok(response)
}

/// Phase 1: refusals that need nothing but the request line and headers.
fn request_filter<S>(app: &App, inbound: &Inbound<S>, upstream_path: &str) -> Result<(), Error> {
    app.limits.check_headers(&inbound.headers)?;
    crate::upstream::body::refuse_before_continue(&inbound.headers, app.settings.max_body_size)?;
    // Ambiguous paths are refused before anything (classification included) looks at them.
    crate::upstream::path::validate_path(upstream_path)
}

enum BrowserVerdict {
    /// A CORS preflight, answered by the proxy.
    Answered(warp::reply::Response),
    /// Go on; `cors_origin` is the allowed cross origin to name in the response, if any.
    Proceed { cors_origin: Option<HeaderValue> },
}

/// Phase 2: what browsers may do from other origins.
fn browser_filter<S>(app: &App, inbound: &Inbound<S>) -> Result<BrowserVerdict, Error> {
    let origin = app.origins.classify(&inbound.headers);
    if let Some(answer) = browser::preflight(&inbound.method, &inbound.headers, &origin) {
        return answer.map(BrowserVerdict::Answered);
    }
    browser::refuse_cross_origin(&inbound.method, &origin, &inbound.headers)?;
    let cors_origin = match origin {
        browser::Origin::Allowed(value) => Some(value.clone()),
        _ => None,
    };
    Ok(BrowserVerdict::Proceed { cors_origin })
}

/// What phase 5 learnt about a request.
struct Inspected {
    /// The operation class for the policy (`None`: not in the route table).
    class: Option<policy::Class>,
    /// The class for metrics and logs.
    route: RouteClass,
    /// The raw query string.
    query: Option<Arc<str>>,
    /// The body, when it was read ahead.
    body: Option<Bytes>,
}

impl Inspected {
    /// The raw query string (empty when there is none).
    fn query(&self) -> &str {
        self.query.as_deref().unwrap_or_default()
    }
}

/// Phase 5: reads the body ahead where it is needed, and decides the route class once. GraphQL (to
/// tell queries from mutations) and small bodies of mutating calls (for the audit line and a
/// policy's experiment rules) are read; everything else streams straight into the forwarder.
async fn inspect<S, B, E>(
    app: &App,
    inbound: Inbound<S>,
    upstream_path: &str,
    is_ui: bool,
) -> Result<(Inbound<InspectedBody<S, B, E>>, Inspected), Error>
where
    S: Stream<Item = Result<B, E>> + Send,
    E: std::fmt::Display + Send,
    B: Buf,
{
    let is_graphql = is_graphql(upstream_path);
    let query = inbound.query.clone();
    // Before the body is read (a GraphQL request's class is decided again once it is).
    let provisional = policy::classify(&inbound.method, upstream_path, None);
    let declared_len = inbound
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Audit lines go to the log at info level, so a stricter log filter drops them; then only a
    // policy would use the body.
    // Requests that send an artifact location back (register a model version, create an experiment)
    // are read so that `mlflow-artifacts:` locations can be mapped back into the store.
    let rewrites_location = app.artifacts.is_some()
        && artifacts::rewrite::request_applies(&inbound.method, upstream_path);
    // A body is read ahead when it is small or of unknown length (chunked): up to
    // MAX_INSPECTED_BODY, past which the rest streams on and the body is not inspected. Only a
    // GraphQL query must be read whole (its class depends on it).
    // MLflow reads a GraphQL document from the body, for GET and POST alike.
    let graphql_request = is_graphql && matches!(inbound.method, Method::GET | Method::POST);
    let small_or_unknown = declared_len.is_none_or(|l| l > 0 && l <= MAX_INSPECTED_BODY);
    let read_ahead = graphql_request
        || (rewrites_location && small_or_unknown)
        || ((audit::enabled() || app.policy.is_enforced())
            && audit::is_audited(provisional)
            && small_or_unknown);
    let (inbound, body) = if read_ahead {
        let (mut inbound, stream) = inbound.take_body();
        let ahead = read_ahead_of(stream, graphql_request).await?;
        let mut body = ahead.complete.then(|| ahead.read.clone());
        if let (Some(gateway), Some(bytes), true) = (&app.artifacts, &body, rewrites_location) {
            if let Some(rewritten) = rewrite_location(gateway, &mut inbound, upstream_path, bytes)?
            {
                body = Some(rewritten);
            }
        }
        let replay = body.clone().unwrap_or(ahead.read);
        let stream = futures_util::stream::once(std::future::ready(Ok(replay))).chain(ahead.rest);
        (inbound.with_body(Either::Right(stream)), body)
    } else {
        let to_bytes: ChunkToBytes<B, E> = chunk_to_bytes::<B, E>;
        (
            inbound.map_body(|body| Either::Left(body.map(to_bytes))),
            None,
        )
    };
    let class = if is_graphql {
        policy::classify(&inbound.method, upstream_path, body.as_deref())
    } else {
        provisional
    };
    let inspected = Inspected {
        class,
        route: RouteClass::of(class, is_ui),
        query,
        body,
    };
    Ok((inbound, inspected))
}

/// Maps the `mlflow-artifacts:` locations a client sends back (a model version's `source`, an
/// experiment's `artifact_location`) into the store, so MLflow's records keep `s3://` URIs; a location
/// outside the store is refused. Returns the rewritten body, if the body changed.
fn rewrite_location(
    gateway: &Gateway,
    inbound: &mut Inbound<()>,
    upstream_path: &str,
    bytes: &Bytes,
) -> Result<Option<Bytes>, Error> {
    match gateway.rewrite_request(&inbound.method, upstream_path, bytes) {
        Ok(Some(rewritten)) => {
            inbound.headers.insert(
                http::header::CONTENT_LENGTH,
                HeaderValue::from(rewritten.len()),
            );
            Ok(Some(rewritten))
        }
        Ok(None) => Ok(None),
        Err(reason) => Err(artifacts::refused_location(&reason)),
    }
}

/// Phase 6: the policy's decision on this identity and operation.
fn authorize<S>(
    app: &App,
    identity: &Identity,
    inbound: &Inbound<S>,
    upstream_path: &str,
    inspected: &Inspected,
) -> Result<(), Error> {
    // Only a policy uses the experiment name (prefix rules); skip the body parse otherwise. The name
    // is the one MLflow acts on, or none (then a prefix rule does not grant).
    let experiment = app
        .policy
        .is_enforced()
        .then(|| {
            experiment_acted_on(
                &inbound.method,
                upstream_path,
                inspected.query(),
                inspected.body.as_deref(),
            )
        })
        .flatten();
    app.policy
        .check(identity, inspected.class, experiment.as_deref())
        .map_err(|denial| {
            tracing::info!(target: "audit", who = %identity.name, path = %inbound.path, method = %inbound.method, reason = %denial, "denied");
            Error::PermissionDenied(format!("{denial} (identity {:?})", identity.name))
        })
}

/// How this request authenticates upstream: the UI session for UI pages in presigned-session mode,
/// else SigV4 with the caller's own credentials (per-user sessions) or the proxy's.
fn upstream_auth<'a>(app: &'a App, identity: &Identity, is_ui: bool) -> UpstreamAuth<'a> {
    let Some(aws) = &app.aws else {
        return UpstreamAuth::Unsigned;
    };
    if let (true, Some(session)) = (is_ui, &app.ui_session) {
        return UpstreamAuth::Session(session);
    }
    match &aws.per_user {
        Some(per_user) => UpstreamAuth::Sign(per_user.for_caller(&identity.name)),
        None => UpstreamAuth::Sign(aws.credentials.clone()),
    }
}

/// The audit line of a mutating call, begun before forwarding (the request moves into the
/// forwarder) and finished with the status.
struct AuditRecord<'a> {
    identity: &'a Identity,
    method: Method,
    path: Arc<str>,
    remote: Option<IpAddr>,
    class: Option<policy::Class>,
    subjects: String,
}

impl<'a> AuditRecord<'a> {
    /// `None` when the call is not audited or audit lines are not written.
    fn begin<S>(
        app: &App,
        identity: &'a Identity,
        inbound: &Inbound<S>,
        inspected: &Inspected,
    ) -> Option<Self> {
        (audit::enabled() && audit::is_audited(inspected.class)).then(|| AuditRecord {
            identity,
            method: inbound.method.clone(),
            path: inbound.path.clone(),
            remote: caller_ip(app, &inbound.headers, inbound.remote),
            class: inspected.class,
            subjects: audit::subjects(inspected.query(), inspected.body.as_deref()),
        })
    }

    fn finish(self, response: &warp::reply::Response) {
        let request_id = response
            .headers()
            .get(&crate::upstream::headers::X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        audit::emit(&audit::AuditEvent {
            identity: self.identity,
            remote: self.remote,
            method: &self.method,
            path: &self.path,
            class: self.class,
            subjects: &self.subjects,
            status: response.status().as_u16(),
            request_id,
        });
    }
}

/// Phase 8: the headers browsers need on the answer.
fn response_filter(
    app: &App,
    response: &mut warp::reply::Response,
    cors_origin: Option<HeaderValue>,
    is_ui: bool,
) {
    browser::strip_upstream_cors(response.headers_mut());
    if let Some(value) = cors_origin {
        browser::add_cors_headers(response, &browser::Origin::Allowed(&value));
    }
    if is_ui {
        ui::rewrite_response_headers(
            response.headers_mut(),
            app.settings.upstream.authority.as_str(),
            &app.frame_policy,
        );
    }
}

/// The body stream after phase 5: the client's chunks, or what was read ahead followed by the rest.
type InspectedBody<S, B, E> =
    Either<futures_util::stream::Map<S, ChunkToBytes<B, E>>, ReadAheadStream<S, B, E>>;

type ReadAheadStream<S, B, E> = futures_util::stream::Chain<
    futures_util::stream::Once<std::future::Ready<Result<Bytes, E>>>,
    Rest<S, B, E>,
>;

/// What is left of a body after reading ahead (fused: it may have ended already).
type Rest<S, B, E> =
    futures_util::stream::Fuse<futures_util::stream::Map<Pin<Box<S>>, ChunkToBytes<B, E>>>;

type ChunkToBytes<B, E> = fn(Result<B, E>) -> Result<Bytes, E>;

/// One body chunk as `Bytes` (the chunks are `Bytes` already, so this does not copy).
fn chunk_to_bytes<B: Buf, E>(chunk: Result<B, E>) -> Result<Bytes, E> {
    chunk.map(|mut b| b.copy_to_bytes(b.remaining()))
}

/// A body read ahead: the bytes read, whether that was all of it, and the rest of the stream.
struct ReadAheadBody<S, B, E> {
    read: Bytes,
    complete: bool,
    rest: Rest<S, B, E>,
}

/// Reads a body ahead up to [`MAX_INSPECTED_BODY`] bytes. A longer body is refused with 413 when
/// `whole_or_refuse`; otherwise reading stops there (the chunk that crossed the limit kept) and the
/// rest streams on uninspected.
async fn read_ahead_of<S, B, E>(
    stream: S,
    whole_or_refuse: bool,
) -> Result<ReadAheadBody<S, B, E>, Error>
where
    S: Stream<Item = Result<B, E>> + Send,
    E: std::fmt::Display + Send,
    B: Buf,
{
    let to_bytes: ChunkToBytes<B, E> = chunk_to_bytes::<B, E>;
    let mut rest = Box::pin(stream).map(to_bytes).fuse();
    let mut collected = bytes::BytesMut::new();
    while let Some(chunk) = rest.next().await {
        let chunk = chunk
            .map_err(|e| Error::BadRequest(format!("reading the request body failed: {e}")))?;
        collected.extend_from_slice(&chunk);
        if collected.len() as u64 > MAX_INSPECTED_BODY {
            if whole_or_refuse {
                return Err(Error::PayloadTooLarge {
                    limit: MAX_INSPECTED_BODY,
                    setting: "the proxy's read-ahead limit",
                });
            }
            return Ok(ReadAheadBody {
                read: collected.freeze(),
                complete: false,
                rest,
            });
        }
    }
    Ok(ReadAheadBody {
        read: collected.freeze(),
        complete: true,
        rest,
    })
}

/// The token bucket a request draws from (phase 4): its identity's, or for anonymous callers
/// (`--auth none`) its client address's, so that one anonymous client cannot use up everyone's
/// allowance.
fn rate_key<S>(app: &App, identity: &Identity, inbound: &Inbound<S>) -> String {
    if identity.method != Identity::anonymous().method {
        return identity.name.clone();
    }
    let client = limits::client_ip(
        inbound.remote,
        &inbound.headers,
        &app.settings.trusted_proxies,
    );
    match client {
        Some(ip) => format!("{}@{ip}", identity.name),
        None => identity.name.clone(),
    }
}

/// The caller's address for audit lines: behind a trusted proxy (the ALB), the client it names in
/// `X-Forwarded-For`, not the proxy's own address.
fn caller_ip(app: &App, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
    peer.map(|peer| originating_ip(peer.ip(), headers, &app.settings.trusted_proxies))
}

/// Phase 3 (and the dashboard's and `/api/proxy/*`'s check): who the caller is, or a 401. A client
/// address with too many recent failures is refused (429) before its credentials are checked, and
/// each refused credential counts against its address.
pub(crate) async fn authenticate(
    app: &App,
    headers: &HeaderMap,
    remote: Option<SocketAddr>,
) -> Result<Identity, Error> {
    let client = limits::client_ip(remote, headers, &app.settings.trusted_proxies);
    app.limits.check_auth_failures(client)?;
    app.authenticator
        .authenticate(headers, remote)
        .await
        .map_err(|e| {
            tracing::info!(target: "audit", remote = client.map(|ip| ip.to_string()), reason = %e, "authentication failed");
            if matches!(e, AuthError::Invalid(_)) {
                app.limits.record_auth_failure(client);
            }
            app.authenticator.refusal(&e)
        })
}
