//! Presigned-session UI mode: the proxy obtains a presigned UI URL, visits it itself, keeps the session
//! cookie it gets in its own jar, and attaches it to UI requests. Browsers never see SageMaker cookies,
//! so third-party cookie blocking cannot break an iframe, and one session serves every browser.
//!
//! The session is renewed ahead of its expiry in the background and on demand when the upstream stops
//! accepting it; one renewal runs at a time and requests in flight keep the session they started with.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{header, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Empty};

use crate::aws::refreshing::{Refreshing, Source};
use crate::aws::sagemaker::ControlPlane;
use crate::error::Error;
use crate::net::clock::Clock;
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
    /// tokio's clock (the system's monotonic clock outside tests).
    pub created_at: tokio::time::Instant,
}

impl Session {
    /// Whether a refusal of this session may be a stale session rather than a denied request.
    pub fn may_be_stale(&self) -> bool {
        self.created_at.elapsed() >= MIN_SESSION_AGE_FOR_RENEWAL
    }
}

/// How a session is made: a presigned URL from the control plane, visited by the proxy.
// Release builds have the one variant; the small one only exists in unit tests.
#[cfg_attr(test, allow(clippy::large_enum_variant))]
enum Create {
    Presigned {
        control: ControlPlane,
        arn: MlflowArn,
        client: UpstreamClient,
        timeout: Duration,
    },
    /// Unit tests stand in for the two upstream calls (the e2e and browser suites run the real ones).
    #[cfg(test)]
    Fake(Box<dyn Fn(SystemTime) -> FakeCreation + Send + Sync>),
}

#[cfg(test)]
type FakeCreation =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Session, Error>> + Send>>;

/// The UI session as a [`Source`]: created on first use, usable until it expires, renewed
/// `min(5 min, half its lifetime)` ahead.
pub struct SessionSource {
    create: Create,
    session_seconds: u64,
}

impl Source for SessionSource {
    type Value = Session;
    const FETCH_AT_START: bool = false;

    fn label(&self) -> &'static str {
        "ui-session"
    }

    async fn fetch(&self, clock: Clock) -> Result<Session, Error> {
        let started = clock.now();
        match &self.create {
            Create::Presigned {
                control,
                arn,
                client,
                timeout,
            } => {
                let visit = PresignedVisit {
                    control,
                    arn,
                    client,
                    timeout: *timeout,
                };
                visit.create(started, self.session_seconds).await
            }
            #[cfg(test)]
            Create::Fake(create) => create(started).await,
        }
    }

    fn usable(&self, session: &Session, now: SystemTime) -> bool {
        now < session.expires_at
    }

    fn refresh_due(&self, session: &Session) -> Option<SystemTime> {
        let ahead = RENEW_AHEAD.min(Duration::from_secs(self.session_seconds / 2));
        Some(
            session
                .expires_at
                .checked_sub(ahead)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        )
    }

    fn log_refreshed(&self, session: &Session, _now: SystemTime) {
        tracing::info!(ui = %session.upstream.base_url(), "upstream UI session established");
    }

    fn log_failed(&self, error: &str) {
        tracing::warn!(error = %error, "cannot establish an upstream UI session");
    }
}

/// The session held server-side, renewed by one caller at a time (see [`Refreshing`]).
pub struct UiSession(Refreshing<SessionSource>);

impl UiSession {
    pub fn new(
        control: ControlPlane,
        arn: MlflowArn,
        client: UpstreamClient,
        session_seconds: u64,
        timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(UiSession(Refreshing::new(SessionSource {
            create: Create::Presigned {
                control,
                arn,
                client,
                timeout,
            },
            session_seconds,
        })))
    }

    /// A live session, created on first use.
    pub async fn get(&self) -> Result<Arc<Session>, Error> {
        self.0.get().await
    }

    /// Renews because the upstream no longer accepted `stale`; concurrent callers share one renewal.
    pub async fn renew_after_rejection(&self, stale: &Session) -> Result<Arc<Session>, Error> {
        self.0.refresh_after_rejection(stale).await
    }

    /// Renews ahead of expiry so that no request meets an expired session.
    pub async fn run_renewer(self: Arc<Self>) {
        self.0.run().await
    }

    pub fn renewals(&self) -> u64 {
        self.0.refreshes()
    }

    pub fn status(&self) -> serde_json::Value {
        let snapshot = self.0.snapshot();
        let state = match (&snapshot.current, snapshot.last_error.is_some()) {
            (_, true) => "failed",
            (Some(_), false) if snapshot.usable => "active",
            (Some(_), false) => "expired",
            (None, false) => "none",
        };
        serde_json::json!({
            "state": state,
            "expires_at": snapshot.current.map(|s| humantime::format_rfc3339_seconds(s.expires_at).to_string()),
            "renewals": snapshot.refreshes,
            "last_error": snapshot.last_error,
        })
    }
}

/// One visit of a presigned UI URL.
struct PresignedVisit<'a> {
    control: &'a ControlPlane,
    arn: &'a MlflowArn,
    client: &'a UpstreamClient,
    timeout: Duration,
}

impl PresignedVisit<'_> {
    /// Asks for a presigned URL and visits it; the cookies set on that answer are the session.
    async fn create(&self, started: SystemTime, session_seconds: u64) -> Result<Session, Error> {
        let url = self
            .control
            .create_presigned_url(self.arn, URL_EXPIRES_SECONDS, session_seconds)
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
            expires_at: started + Duration::from_secs(session_seconds),
            created_at: tokio::time::Instant::now(),
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

    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// A session source whose two upstream calls are replaced by a 20 ms wait; it counts creations
    /// and fails while `fail` is set.
    struct Fixture {
        ui: Arc<UiSession>,
        made: Arc<AtomicUsize>,
        fail: Arc<AtomicBool>,
    }

    impl Fixture {
        fn new(session_seconds: u64) -> Fixture {
            let made = Arc::new(AtomicUsize::new(0));
            let fail = Arc::new(AtomicBool::new(false));
            let (counter, failing) = (made.clone(), fail.clone());
            let create = move |started: SystemTime| -> FakeCreation {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let failing = failing.load(Ordering::SeqCst);
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if failing {
                        return Err(Error::UpstreamUnreachable("control plane down".into()));
                    }
                    Ok(Session {
                        cookie: HeaderValue::from_str(&format!("session={n}")).unwrap(),
                        upstream: Upstream::new("http://127.0.0.1:9", None).unwrap(),
                        expires_at: started + Duration::from_secs(session_seconds),
                        created_at: tokio::time::Instant::now(),
                    })
                })
            };
            let source = SessionSource {
                create: Create::Fake(Box::new(create)),
                session_seconds,
            };
            Fixture {
                ui: Arc::new(UiSession(Refreshing::with_clock(
                    source,
                    Clock::following_tokio(),
                ))),
                made,
                fail,
            }
        }

        fn made(&self) -> usize {
            self.made.load(Ordering::SeqCst)
        }

        fn state(&self) -> String {
            self.ui.status()["state"].as_str().unwrap().to_string()
        }
    }

    /// Lets paused time jump on by `by`, then run 100 ms more (the fake's 20 ms waits complete).
    async fn pass(by: Duration) {
        tokio::time::advance(by).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_session_is_made_on_first_use_and_renewed_ahead_of_expiry() {
        let f = Fixture::new(1800);
        let renewer = tokio::spawn(f.ui.clone().run_renewer());
        pass(Duration::from_secs(60)).await;
        assert_eq!(f.made(), 0, "no session before the UI is used");
        assert_eq!(f.state(), "none");
        let first = f.ui.get().await.unwrap();
        assert_eq!(first.cookie, "session=0");
        assert_eq!((f.made(), f.state().as_str()), (1, "active"));
        // Renewed 5 minutes before its 30 minutes are up, not a second earlier.
        pass(Duration::from_secs(1500 - 1)).await;
        assert_eq!(f.made(), 1);
        assert!(Arc::ptr_eq(&f.ui.get().await.unwrap(), &first));
        pass(Duration::from_secs(1)).await;
        assert_eq!(f.made(), 2);
        assert_eq!(f.ui.renewals(), 2);
        assert!(
            f.ui.0.clock().now() < first.expires_at,
            "renewed ahead of expiry"
        );
        assert_eq!(f.ui.get().await.unwrap().cookie, "session=1");
        assert_eq!(f.state(), "active");
        renewer.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_session_is_never_used() {
        let f = Fixture::new(1800);
        let first = f.ui.get().await.unwrap();
        tokio::time::advance(Duration::from_secs(1800) - Duration::from_millis(100)).await;
        assert!(Arc::ptr_eq(&f.ui.get().await.unwrap(), &first));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(f.state(), "expired");
        assert_eq!(f.ui.get().await.unwrap().cookie, "session=1");
        assert_eq!(f.made(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rejected_session_is_renewed_once_for_all_callers() {
        let f = Fixture::new(1800);
        let first = f.ui.get().await.unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (ui, first) = (f.ui.clone(), first.clone());
                tokio::spawn(async move { ui.renew_after_rejection(&first).await.unwrap() })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().cookie, "session=1");
        }
        assert_eq!(f.made(), 2);
        // A caller that comes late with the rejected session gets the new one.
        assert_eq!(
            f.ui.renew_after_rejection(&first).await.unwrap().cookie,
            "session=1"
        );
        assert_eq!(f.made(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_counts_as_stale_only_once_the_session_is_five_seconds_old() {
        let f = Fixture::new(1800);
        let session = f.ui.get().await.unwrap();
        tokio::time::advance(MIN_SESSION_AGE_FOR_RENEWAL - Duration::from_millis(100)).await;
        assert!(!session.may_be_stale());
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(session.may_be_stale());
    }

    #[tokio::test(start_paused = true)]
    async fn failed_renewals_back_off_keep_the_live_session_and_recover() {
        let f = Fixture::new(1800);
        let renewer = tokio::spawn(f.ui.clone().run_renewer());
        let first = f.ui.get().await.unwrap();
        f.fail.store(true, Ordering::SeqCst);
        pass(Duration::from_secs(1500)).await;
        assert_eq!(f.made(), 2, "the renewal ahead of expiry was tried");
        let status = f.ui.status();
        assert_eq!(status["state"], "failed");
        assert!(status["last_error"]
            .as_str()
            .unwrap()
            .contains("control plane down"));
        assert!(
            Arc::ptr_eq(&f.ui.get().await.unwrap(), &first),
            "requests keep the live session"
        );
        // Tried again after 2 s, then 4 s.
        pass(Duration::from_secs(1)).await;
        assert_eq!(f.made(), 2);
        pass(Duration::from_secs(1)).await;
        assert_eq!(f.made(), 3);
        f.fail.store(false, Ordering::SeqCst);
        pass(Duration::from_secs(3)).await;
        assert_eq!(f.made(), 3);
        pass(Duration::from_secs(1)).await;
        assert_eq!(f.made(), 4);
        let status = f.ui.status();
        assert_eq!(status["state"], "active");
        assert!(status["last_error"].is_null());
        assert_eq!(f.ui.renewals(), 2);
        assert_eq!(f.ui.get().await.unwrap().cookie, "session=3");
        renewer.abort();
    }

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
