//! The proxy's own endpoints: `/healthz`, `/readyz` and the JSON API under `/api/proxy/` that the
//! dashboard reads (status, identity, stats).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use http::StatusCode;
use serde::Serialize;
use serde_json::json;

use crate::app::App;
use crate::error::Error;

pub fn json_response<T: Serialize>(status: StatusCode, value: &T) -> warp::reply::Response {
    let mut response =
        warp::reply::Response::new(serde_json::to_vec(value).unwrap_or_default().into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

pub fn healthz() -> warp::reply::Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// Why the proxy cannot serve: a summary anyone may read, and the detail (which can name the role,
/// account and STS's own message) for authenticated callers and the admin listener only.
pub struct NotReady {
    pub summary: &'static str,
    pub detail: String,
}

/// Whether the proxy can serve, and if not, why.
pub fn readiness(app: &App) -> Result<(), NotReady> {
    if app.draining.load(Ordering::Relaxed) {
        return Err(NotReady {
            summary: "shutting down",
            detail: "shutting down".into(),
        });
    }
    let Some(aws) = &app.aws else {
        return Ok(());
    };
    let status = aws.credentials.status();
    if status.usable {
        return Ok(());
    }
    Err(NotReady {
        summary:
            "no usable AWS credentials (details: /api/proxy/status or /readyz on --admin-listen)",
        detail: match status.last_error {
            Some(e) => format!("no usable AWS credentials: {e}"),
            None => "AWS credentials not loaded yet".into(),
        },
    })
}

/// Which `/readyz` is asking: the main listener's (open to anyone who can reach the port) or the
/// admin listener's (an operator's address).
#[derive(Clone, Copy)]
pub enum ReadyzAudience {
    Public,
    Admin,
}

pub fn readyz(app: &App, audience: ReadyzAudience) -> warp::reply::Response {
    match readiness(app) {
        Ok(()) => json_response(StatusCode::OK, &json!({"ready": true})),
        Err(not_ready) => {
            let reason = match audience {
                ReadyzAudience::Public => not_ready.summary.to_string(),
                ReadyzAudience::Admin => not_ready.detail,
            };
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"ready": false, "reason": reason}),
            )
        }
    }
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

pub fn status(app: &App) -> warp::reply::Response {
    let settings = &app.settings;
    let signing = settings.upstream.signing.as_ref();
    let ready = readiness(app);
    let credentials = app.aws.as_ref().map(|aws| {
        let s = aws.credentials.status();
        json!({
            "source": s.source,
            "expires_at": s.expires_at.map(rfc3339),
            "refreshes": s.refreshes,
            "last_error": s.last_error,
        })
    });
    let mut frame_ancestors = vec!["'self'".to_string()];
    frame_ancestors.extend(settings.frame_ancestors.iter().cloned());
    let body = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "mode": signing.map(|s| s.arn.kind.mode_name()).unwrap_or("self-hosted"),
        "upstream_url": settings.upstream.base_url(),
        "arn": signing.map(|s| s.arn.raw.clone()),
        "region": signing.map(|s| s.region.clone()),
        "signing": if signing.is_some() { "sigv4" } else { "none" },
        "signing_service": signing.map(|s| s.service),
        "ui_auth": settings.ui_auth.map(|u| u.name()).unwrap_or("none"),
        "ready": ready.is_ok(),
        "ready_reason": ready.err().map(|not_ready| not_ready.detail),
        "credentials": credentials,
        "ui_session": app.ui_session_status(),
        "artifact_store": app.artifacts.as_ref().map(|g| g.status()),
        "frame_ancestors": frame_ancestors,
        "cors_allowed_origins": settings.cors_allowed_origins,
        "started_at": rfc3339(app.started_at),
        "uptime_seconds": app.started.elapsed().as_secs(),
    });
    json_response(StatusCode::OK, &body)
}

pub fn metrics(app: &App) -> warp::reply::Response {
    let mut response = warp::reply::Response::new(app.stats.metrics.render(&app.gauges()).into());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

pub fn stats(app: &App) -> warp::reply::Response {
    json_response(StatusCode::OK, &app.stats.snapshot())
}

/// STS GetCallerIdentity for the credentials in use, cached for a minute per access key.
pub async fn identity(app: Arc<App>) -> warp::reply::Response {
    let Some(aws) = &app.aws else {
        return Error::BadRequest("no AWS identity: signing is off (--signing none)".into())
            .into_response();
    };
    match aws.caller_identity_cached().await {
        Ok(identity) => json_response(StatusCode::OK, &identity),
        Err(e) => e.into_response(),
    }
}

/// 404 for anything under `/api/proxy/` that does not exist.
pub fn unknown_proxy_api(path: &str) -> warp::reply::Response {
    Error::NotFound(format!("no proxy endpoint at {path}")).into_response()
}
