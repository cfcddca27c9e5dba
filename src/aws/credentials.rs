//! AWS credentials: the SDK's default chain, optionally an assumed role, behind a refresh-ahead cache.
//!
//! The Rust SDK's providers do not cache by themselves (PROTOCOL.md section 5), so [`CredentialCache`]
//! holds the current credentials in an `ArcSwap`: request paths read them without taking any lock, a
//! background task refreshes them ahead of expiry, and at most one refresh runs at a time (the refresh
//! mutex is only ever taken by refreshers, never by readers of fresh credentials).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::aws::sigv4::SigningKeys;
use crate::error::Error;
use crate::settings::AssumeRoleSettings;

/// Credentials closer than this to expiry are not used to sign (a request may take a while to arrive).
const EXPIRY_LEEWAY: Duration = Duration::from_secs(15);
/// Refresh at most this long before expiry (less for short-lived credentials: half their lifetime).
const MAX_REFRESH_AHEAD: Duration = Duration::from_secs(300);
/// Back-off between failed background refreshes.
const RETRY_MIN: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// Where credentials come from.
#[derive(Debug)]
pub enum CredentialSource {
    /// The AWS SDK default chain (env, profile/SSO, web identity, ECS, IMDSv2).
    DefaultChain(SharedCredentialsProvider),
    /// STS AssumeRole, called with the default chain's credentials; `caller` makes it a per-user
    /// session (its name becomes RoleSessionName and SourceIdentity, and a session tag).
    AssumeRole {
        sts: aws_sdk_sts::Client,
        settings: AssumeRoleSettings,
        caller: Option<String>,
    },
}

/// Maps a caller's name into STS's alphabet for RoleSessionName and SourceIdentity
/// (`[A-Za-z0-9_+=,.@-]`, 2 to 64 characters, not starting with `aws:`).
pub fn sts_safe_name(name: &str) -> String {
    let mut safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    while safe.len() < 2 {
        safe.push('-');
    }
    safe
}

/// Maps a caller's name into STS's alphabet for tag values (at most 256 characters).
fn sts_tag_value(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(256)
        .collect()
}

impl CredentialSource {
    pub fn name(&self) -> &'static str {
        match self {
            CredentialSource::DefaultChain(_) => "default-chain",
            CredentialSource::AssumeRole { caller: None, .. } => "assume-role",
            CredentialSource::AssumeRole {
                caller: Some(_), ..
            } => "assume-role-per-user",
        }
    }

    async fn fetch(&self) -> Result<Credentials, String> {
        match self {
            CredentialSource::DefaultChain(provider) => provider
                .provide_credentials()
                .await
                .map_err(|e| DisplayErrorContext(e).to_string()),
            CredentialSource::AssumeRole {
                sts,
                settings,
                caller,
            } => {
                let mut call = sts
                    .assume_role()
                    .role_arn(&settings.role_arn)
                    .set_external_id(settings.external_id.clone());
                call = match caller {
                    Some(caller) => {
                        let safe = sts_safe_name(caller);
                        call.role_session_name(&safe).source_identity(&safe).tags(
                            aws_sdk_sts::types::Tag::builder()
                                .key("mlflow-proxy-user")
                                .value(sts_tag_value(caller))
                                .build()
                                .map_err(|e| format!("session tag: {e}"))?,
                        )
                    }
                    None => call.role_session_name(&settings.session_name),
                };
                let output = call
                    .duration_seconds(i32::try_from(settings.duration.as_secs()).unwrap_or(3600))
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "AssumeRole {} failed: {}",
                            settings.role_arn,
                            DisplayErrorContext(e)
                        )
                    })?;
                let creds = output
                    .credentials()
                    .ok_or_else(|| "AssumeRole returned no credentials".to_string())?;
                Ok(Credentials::new(
                    creds.access_key_id(),
                    creds.secret_access_key(),
                    Some(creds.session_token().to_string()),
                    SystemTime::try_from(*creds.expiration()).ok(),
                    "AssumeRole",
                ))
            }
        }
    }
}

/// Credentials as held in the cache, with when they were fetched (to size the refresh-ahead window).
#[derive(Debug)]
pub struct CachedCredentials {
    pub credentials: Credentials,
    pub fetched_at: SystemTime,
    /// The SigV4 signing keys derived from these credentials (one per day, region and service).
    pub signing_keys: SigningKeys,
}

impl CachedCredentials {
    pub fn new(credentials: Credentials, fetched_at: SystemTime) -> Self {
        CachedCredentials {
            credentials,
            fetched_at,
            signing_keys: SigningKeys::default(),
        }
    }

    fn usable_at(&self, now: SystemTime) -> bool {
        match self.credentials.expiry() {
            None => true,
            Some(expiry) => now + EXPIRY_LEEWAY < expiry,
        }
    }

    /// When a refresh should start: ahead of expiry by min(5 min, half the lifetime).
    fn refresh_due(&self) -> Option<SystemTime> {
        let expiry = self.credentials.expiry()?;
        let lifetime = expiry
            .duration_since(self.fetched_at)
            .unwrap_or(Duration::ZERO);
        Some(expiry - MAX_REFRESH_AHEAD.min(lifetime / 2))
    }
}

/// A snapshot for status output.
#[derive(Debug, Clone)]
pub struct CredentialStatus {
    pub source: &'static str,
    pub expires_at: Option<SystemTime>,
    pub usable: bool,
    pub last_error: Option<String>,
    pub refreshes: u64,
}

pub struct CredentialCache {
    source: CredentialSource,
    current: ArcSwapOption<CachedCredentials>,
    last_error: ArcSwapOption<String>,
    /// Held only while fetching, so that one refresh runs at a time.
    refresh_lock: tokio::sync::Mutex<()>,
    refreshes: AtomicU64,
}

impl std::fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCache")
            .field("source", &self.source.name())
            .finish_non_exhaustive()
    }
}

impl CredentialCache {
    pub fn new(source: CredentialSource) -> Arc<Self> {
        Arc::new(CredentialCache {
            source,
            current: ArcSwapOption::empty(),
            last_error: ArcSwapOption::empty(),
            refresh_lock: tokio::sync::Mutex::new(()),
            refreshes: AtomicU64::new(0),
        })
    }

    /// Usable credentials: lock-free when cached; otherwise waits for the (single) refresh.
    pub async fn get(self: &Arc<Self>) -> Result<Arc<CachedCredentials>, Error> {
        if let Some(cached) = self.current.load_full() {
            if cached.usable_at(SystemTime::now()) {
                return Ok(cached);
            }
        }
        // Boxed: the refresh future (the AWS SDK's provider call) is large and rarely needed, and
        // every request's future would otherwise carry its size.
        Box::pin(self.refresh_replacing(None)).await
    }

    /// Refreshes because the upstream rejected `rejected` as expired. Concurrent callers that saw the
    /// same credentials share one refresh; a caller whose credentials were already replaced gets the new ones.
    pub async fn refresh_after_rejection(
        self: &Arc<Self>,
        rejected: &CachedCredentials,
    ) -> Result<Arc<CachedCredentials>, Error> {
        Box::pin(self.refresh_replacing(Some(rejected))).await
    }

    async fn refresh_replacing(
        &self,
        stale: Option<&CachedCredentials>,
    ) -> Result<Arc<CachedCredentials>, Error> {
        let _guard = self.refresh_lock.lock().await;
        if let Some(cached) = self.current.load_full() {
            let replaced = match stale {
                None => true,
                Some(stale) => !std::ptr::eq(Arc::as_ptr(&cached), stale),
            };
            if replaced && cached.usable_at(SystemTime::now()) {
                return Ok(cached);
            }
        }
        self.fetch_and_store().await
    }

    /// Fetches new credentials; the caller holds `refresh_lock`.
    async fn fetch_and_store(&self) -> Result<Arc<CachedCredentials>, Error> {
        match self.source.fetch().await {
            Ok(credentials) => {
                let cached = Arc::new(CachedCredentials::new(credentials, SystemTime::now()));
                self.current.store(Some(cached.clone()));
                self.last_error.store(None);
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    source = self.source.name(),
                    expires_in_secs = cached
                        .credentials
                        .expiry()
                        .and_then(|e| e.duration_since(SystemTime::now()).ok())
                        .map(|d| d.as_secs()),
                    "AWS credentials refreshed"
                );
                Ok(cached)
            }
            Err(message) => {
                tracing::warn!(source = self.source.name(), error = %message, "AWS credentials unavailable");
                self.last_error.store(Some(Arc::new(message.clone())));
                Err(Error::NoCredentials(message))
            }
        }
    }

    /// Keeps credentials fresh in the background: fetches once at start, then ahead of each expiry,
    /// retrying with back-off after failures. Returns when credentials never expire.
    pub async fn run_refresher(self: Arc<Self>) {
        let mut retry = RETRY_MIN;
        loop {
            let wait = match self.current.load_full() {
                None => Duration::ZERO,
                Some(cached) => match cached.refresh_due() {
                    None if self.last_error.load().is_none() => return,
                    None => retry,
                    Some(due) => due
                        .duration_since(SystemTime::now())
                        .unwrap_or(Duration::ZERO),
                },
            };
            tokio::time::sleep(wait).await;
            let result = {
                let _guard = self.refresh_lock.lock().await;
                // Someone may have refreshed while we slept.
                let due_now = self
                    .current
                    .load_full()
                    .is_none_or(|c| c.refresh_due().is_some_and(|due| due <= SystemTime::now()));
                if due_now {
                    self.fetch_and_store().await.map(|_| ())
                } else {
                    Ok(())
                }
            };
            match result {
                Ok(()) => retry = RETRY_MIN,
                Err(_) => {
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
    }

    pub fn status(&self) -> CredentialStatus {
        let current = self.current.load_full();
        CredentialStatus {
            source: self.source.name(),
            expires_at: current.as_ref().and_then(|c| c.credentials.expiry()),
            usable: current
                .as_ref()
                .is_some_and(|c| c.usable_at(SystemTime::now())),
            last_error: self.last_error.load_full().map(|e| e.as_ref().clone()),
            refreshes: self.refreshes.load(Ordering::Relaxed),
        }
    }
}

/// Lets SDK clients (STS GetCallerIdentity) use exactly the credentials the proxy signs with.
#[derive(Debug, Clone)]
pub struct CacheAsProvider(pub Arc<CredentialCache>);

impl ProvideCredentials for CacheAsProvider {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            self.0
                .get()
                .await
                .map(|cached| cached.credentials.clone())
                .map_err(|e| {
                    aws_credential_types::provider::error::CredentialsError::not_loaded(
                        e.to_string(),
                    )
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A provider that counts calls and hands out credentials expiring after `lifetime`.
    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicUsize>,
        lifetime: Option<Duration>,
        fail: bool,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            aws_credential_types::provider::future::ProvideCredentials::new(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                if self.fail {
                    return Err(
                        aws_credential_types::provider::error::CredentialsError::not_loaded(
                            "nothing configured",
                        ),
                    );
                }
                Ok(Credentials::new(
                    format!("AKID{n}"),
                    "secret",
                    Some(format!("token{n}")),
                    self.lifetime.map(|l| SystemTime::now() + l),
                    "test",
                ))
            })
        }
    }

    fn cache(lifetime: Option<Duration>, fail: bool) -> (Arc<CredentialCache>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let provider = SharedCredentialsProvider::new(Counting {
            calls: calls.clone(),
            lifetime,
            fail,
        });
        (
            CredentialCache::new(CredentialSource::DefaultChain(provider)),
            calls,
        )
    }

    #[tokio::test]
    async fn concurrent_first_reads_share_one_fetch_and_later_reads_fetch_nothing() {
        let (cache, calls) = cache(Some(Duration::from_secs(3600)), false);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.get().await.unwrap() })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().credentials.access_key_id(), "AKID0");
        }
        for _ in 0..1000 {
            cache.get().await.unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn rejection_refreshes_once_for_all_callers_that_saw_the_same_credentials() {
        let (cache, calls) = cache(Some(Duration::from_secs(3600)), false);
        let first = cache.get().await.unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let cache = cache.clone();
                let first = first.clone();
                tokio::spawn(async move { cache.refresh_after_rejection(&first).await.unwrap() })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().credentials.access_key_id(), "AKID1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn expired_credentials_are_never_handed_out() {
        // Lifetime shorter than the leeway: every read must fetch again.
        let (cache, calls) = cache(Some(Duration::from_secs(5)), false);
        let a = cache.get().await.unwrap();
        let b = cache.get().await.unwrap();
        assert_ne!(a.credentials.access_key_id(), b.credentials.access_key_id());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn refresh_is_scheduled_ahead_of_expiry() {
        let (cache, _calls) = cache(Some(Duration::from_secs(3600)), false);
        let first = cache.get().await.unwrap();
        let due = first.refresh_due().unwrap();
        let ahead = first
            .credentials
            .expiry()
            .unwrap()
            .duration_since(due)
            .unwrap();
        assert_eq!(ahead, MAX_REFRESH_AHEAD);
        let short = CachedCredentials::new(
            Credentials::new(
                "a",
                "b",
                None,
                Some(first.fetched_at + Duration::from_secs(60)),
                "t",
            ),
            first.fetched_at,
        );
        let short_ahead = short
            .credentials
            .expiry()
            .unwrap()
            .duration_since(short.refresh_due().unwrap())
            .unwrap();
        assert_eq!(short_ahead, Duration::from_secs(30));
    }

    #[tokio::test]
    async fn failures_are_reported_in_status_and_as_no_credentials() {
        let (cache, _) = cache(None, true);
        let err = cache.get().await.unwrap_err();
        assert!(matches!(err, Error::NoCredentials(_)));
        let status = cache.status();
        assert!(!status.usable);
        assert!(status.last_error.unwrap().contains("nothing configured"));
    }

    #[test]
    fn sts_names() {
        assert_eq!(sts_safe_name("alice@example.com"), "alice@example.com");
        assert_eq!(sts_safe_name("Jöhn Doe/admin"), "J-hn-Doe-admin");
        assert_eq!(sts_safe_name("x"), "x-");
        assert_eq!(sts_safe_name(&"a".repeat(100)).len(), 64);
        assert_eq!(sts_tag_value("Jöhn <x>"), "Jöhn -x-");
    }

    #[tokio::test]
    async fn static_credentials_stop_the_refresher() {
        let (cache, calls) = cache(None, false);
        tokio::time::timeout(Duration::from_secs(5), cache.clone().run_refresher())
            .await
            .expect("refresher returns for non-expiring credentials");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(cache.status().usable);
    }
}
