//! Presigned-session UI mode: the proxy obtains a presigned UI URL, visits it itself, keeps the session
//! cookie it gets in its own jar, and attaches it to UI requests. Browsers never see SageMaker cookies,
//! so third-party cookie blocking cannot break an iframe, and one session serves every browser.
//!
//! The session is renewed ahead of its expiry in the background and on demand when the upstream stops
//! accepting it; one renewal runs at a time and requests in flight keep the session they started with.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use http::{header, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Empty};

use crate::aws::sagemaker::ControlPlane;
use crate::error::Error;
use crate::net::http_client::UpstreamClient;
use crate::settings::target::{MlflowArn, Upstream};

/// How long the presigned URL itself stays valid (it is used at once).
const URL_EXPIRES_SECONDS: u64 = 60;
/// A session younger than this is not renewed on a 401/403: such a refusal is about the request (IAM
/// per action), not the session, and renewing on every denied call would mint a presigned URL each time.
/// This also bounds renewals caused by denials to one per this interval.
const MIN_SESSION_AGE_FOR_RENEWAL: Duration = Duration::from_secs(5);
/// Renew this long before the session expires.
const RENEW_AHEAD: Duration = Duration::from_secs(300);

/// An upstream UI session.
#[derive(Debug)]
pub struct Session {
    /// The `Cookie` header value to send (every cookie the upstream set on the auth redirect).
    pub cookie: HeaderValue,
    /// Where the UI lives: the origin of the presigned URL.
    pub upstream: Upstream,
    pub expires_at: SystemTime,
    pub created_at: std::time::Instant,
}

impl Session {
    /// Whether a refusal of this session may be a stale session rather than a denied request.
    pub fn may_be_stale(&self) -> bool {
        self.created_at.elapsed() >= MIN_SESSION_AGE_FOR_RENEWAL
    }
}

pub struct UiSession {
    control: ControlPlane,
    arn: MlflowArn,
    client: UpstreamClient,
    session_seconds: u64,
    current: ArcSwapOption<Session>,
    renew_lock: tokio::sync::Mutex<()>,
    renewals: AtomicU64,
    last_error: ArcSwapOption<String>,
    timeout: Duration,
}

impl UiSession {
    pub fn new(
        control: ControlPlane,
        arn: MlflowArn,
        client: UpstreamClient,
        session_seconds: u64,
        timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(UiSession {
            control,
            arn,
            client,
            session_seconds,
            current: ArcSwapOption::empty(),
            renew_lock: tokio::sync::Mutex::new(()),
            renewals: AtomicU64::new(0),
            last_error: ArcSwapOption::empty(),
            timeout,
        })
    }

    /// A live session, created on first use.
    pub async fn get(&self) -> Result<Arc<Session>, Error> {
        if let Some(session) = self.current.load_full() {
            if SystemTime::now() < session.expires_at {
                return Ok(session);
            }
        }
        // Boxed: renewal (two upstream calls) is rare and large; see `CredentialCache::get`.
        Box::pin(self.renew_replacing(None)).await
    }

    /// Renews because the upstream no longer accepted `stale`; concurrent callers share one renewal.
    pub async fn renew_after_rejection(&self, stale: &Session) -> Result<Arc<Session>, Error> {
        Box::pin(self.renew_replacing(Some(stale))).await
    }

    async fn renew_replacing(&self, stale: Option<&Session>) -> Result<Arc<Session>, Error> {
        let _guard = self.renew_lock.lock().await;
        if let Some(current) = self.current.load_full() {
            let replaced = stale.is_none_or(|s| !std::ptr::eq(Arc::as_ptr(&current), s));
            if replaced && SystemTime::now() < current.expires_at {
                return Ok(current);
            }
        }
        match self.create().await {
            Ok(session) => {
                let session = Arc::new(session);
                self.current.store(Some(session.clone()));
                self.last_error.store(None);
                self.renewals.fetch_add(1, Ordering::Relaxed);
                tracing::info!(ui = %session.upstream.base_url(), "upstream UI session established");
                Ok(session)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot establish an upstream UI session");
                self.last_error.store(Some(Arc::new(e.to_string())));
                Err(e)
            }
        }
    }

    /// Asks for a presigned URL and visits it; the cookies set on that answer are the session.
    async fn create(&self) -> Result<Session, Error> {
        let started = SystemTime::now();
        let url = self
            .control
            .create_presigned_url(&self.arn, URL_EXPIRES_SECONDS, self.session_seconds)
            .await?;
        let uri: http::Uri = url.parse().map_err(|_| {
            Error::UpstreamUnreachable("SageMaker returned an invalid AuthorizedUrl".into())
        })?;
        let origin = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or("https"),
            uri.authority().map(|a| a.as_str()).unwrap_or_default()
        );
        let upstream = Upstream::new(&origin, None)
            .map_err(|e| Error::UpstreamUnreachable(format!("AuthorizedUrl: {e}")))?;
        let mut request = http::Request::new(Empty::new().map_err(|never| match never {}).boxed());
        *request.method_mut() = Method::GET;
        *request.uri_mut() = uri.clone();
        if let Ok(host) = HeaderValue::from_str(upstream.authority.as_str()) {
            request.headers_mut().insert(header::HOST, host);
        }
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| {
                Error::UpstreamTimeout(format!(
                    "{:?} (visiting the presigned UI URL)",
                    self.timeout
                ))
            })?
            .map_err(|e| {
                Error::UpstreamUnreachable(format!("visiting the presigned UI URL: {e}"))
            })?;
        let status = response.status();
        let cookie = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .map(str::trim)
            .filter(|pair| pair.contains('='))
            .collect::<Vec<_>>()
            .join("; ");
        if !(status.is_success() || status.is_redirection()) || cookie.is_empty() {
            return Err(Error::UpstreamUnreachable(format!(
                "the presigned UI URL answered {status} without a session cookie"
            )));
        }
        let cookie = HeaderValue::from_str(&cookie)
            .map_err(|_| Error::UpstreamUnreachable("unusable session cookie".into()))?;
        Ok(Session {
            cookie,
            upstream,
            expires_at: started + Duration::from_secs(self.session_seconds),
            created_at: std::time::Instant::now(),
        })
    }

    /// Renews ahead of expiry so that no request meets an expired session.
    pub async fn run_renewer(self: Arc<Self>) {
        let mut retry = Duration::from_secs(2);
        loop {
            let wait = match self.current.load_full() {
                Some(s) => s
                    .expires_at
                    .checked_sub(RENEW_AHEAD.min(Duration::from_secs(self.session_seconds / 2)))
                    .and_then(|due| due.duration_since(SystemTime::now()).ok())
                    .unwrap_or(Duration::ZERO),
                // Nothing to renew until the UI is first used.
                None => Duration::from_secs(5),
            };
            tokio::time::sleep(wait).await;
            let Some(current) = self.current.load_full() else {
                continue;
            };
            let due = current
                .expires_at
                .checked_sub(RENEW_AHEAD.min(Duration::from_secs(self.session_seconds / 2)))
                .is_none_or(|due| due <= SystemTime::now());
            if !due {
                continue;
            }
            match self.renew_replacing(Some(&current)).await {
                Ok(_) => retry = Duration::from_secs(2),
                Err(_) => {
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(Duration::from_secs(60));
                }
            }
        }
    }

    pub fn renewals(&self) -> u64 {
        self.renewals.load(Ordering::Relaxed)
    }

    pub fn status(&self) -> serde_json::Value {
        let current = self.current.load_full();
        let state = match (&current, self.last_error.load().is_some()) {
            (_, true) => "failed",
            (Some(s), false) if SystemTime::now() < s.expires_at => "active",
            (Some(_), false) => "expired",
            (None, false) => "none",
        };
        serde_json::json!({
            "state": state,
            "expires_at": current.map(|s| humantime::format_rfc3339_seconds(s.expires_at).to_string()),
            "renewals": self.renewals.load(Ordering::Relaxed),
            "last_error": self.last_error.load_full().map(|e| e.as_ref().clone()),
        })
    }
}

/// Whether an upstream UI answer means the session is no longer accepted.
pub fn is_session_rejected(status: StatusCode, location: Option<&HeaderValue>) -> bool {
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return true;
    }
    status.is_redirection()
        && location.and_then(|l| l.to_str().ok()).is_some_and(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("/auth") || l.contains("login") || l.contains("signin")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections() {
        assert!(is_session_rejected(StatusCode::UNAUTHORIZED, None));
        assert!(is_session_rejected(StatusCode::FORBIDDEN, None));
        let login = HeaderValue::from_static("https://signin.aws.amazon.com/x");
        assert!(is_session_rejected(StatusCode::FOUND, Some(&login)));
        let normal = HeaderValue::from_static("/#/experiments");
        assert!(!is_session_rejected(StatusCode::FOUND, Some(&normal)));
        assert!(!is_session_rejected(StatusCode::OK, None));
        assert!(!is_session_rejected(StatusCode::NOT_FOUND, None));
    }
}
