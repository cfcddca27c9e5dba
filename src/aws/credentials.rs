//! AWS credentials: the SDK's default chain, optionally an assumed role, behind a refresh-ahead cache.
//!
//! The Rust SDK's providers do not cache by themselves (PROTOCOL.md section 5), so [`CredentialCache`]
//! holds the current credentials in a [`Refreshing`]: request paths read them without taking any lock, a
//! background task refreshes them ahead of expiry, and at most one refresh runs at a time (the refresh
//! mutex is only ever taken by refreshers, never by readers of fresh credentials).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_smithy_types::error::display::DisplayErrorContext;
use sha2::{Digest, Sha256};

use crate::aws::refreshing::{Refreshing, Source};
use crate::aws::sigv4::SigningKeys;
use crate::error::Error;
use crate::net::clock::Clock;
use crate::settings::AssumeRoleSettings;

/// Credentials closer than this to expiry are not used to sign (a request may take a while to arrive).
const EXPIRY_LEEWAY: Duration = Duration::from_secs(15);
/// Refresh at most this long before expiry (less for short-lived credentials: half their lifetime).
const MAX_REFRESH_AHEAD: Duration = Duration::from_secs(300);

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

/// Longest RoleSessionName / SourceIdentity STS takes.
const STS_NAME_MAX: usize = 64;

/// Maps a caller's name into STS's alphabet for RoleSessionName and SourceIdentity
/// (`[A-Za-z0-9_+=,.@-]`, 2 to 64 characters). A name that fits is kept as it is; one that had to be
/// changed (characters replaced, cut at 64, padded) ends in `-` and 8 hex digits of its SHA-256, so two
/// callers never share a session name in CloudTrail (`a b` and `a-b`, two long names with one prefix).
pub fn sts_safe_name(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if mapped == name && (2..=STS_NAME_MAX).contains(&name.len()) {
        return mapped;
    }
    let digest = hex::encode(&Sha256::digest(name.as_bytes())[..4]);
    let keep = STS_NAME_MAX - digest.len() - 1;
    // `mapped` is ASCII, so cutting at a byte count is cutting at a character.
    format!("{}-{digest}", &mapped[..mapped.len().min(keep)])
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

    async fn fetch_credentials(&self) -> Result<Credentials, String> {
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

impl Source for CredentialSource {
    type Value = CachedCredentials;
    const FETCH_AT_START: bool = true;

    fn label(&self) -> &'static str {
        self.name()
    }

    async fn fetch(&self, clock: Clock) -> Result<CachedCredentials, Error> {
        let credentials = self
            .fetch_credentials()
            .await
            .map_err(Error::NoCredentials)?;
        Ok(CachedCredentials::new(credentials, clock.now()))
    }

    fn usable(&self, value: &CachedCredentials, now: SystemTime) -> bool {
        value.usable_at(now)
    }

    fn refresh_due(&self, value: &CachedCredentials) -> Option<SystemTime> {
        value.refresh_due()
    }

    fn error_text(&self, error: &Error) -> String {
        match error {
            Error::NoCredentials(message) => message.clone(),
            other => other.to_string(),
        }
    }

    fn log_refreshed(&self, value: &CachedCredentials, now: SystemTime) {
        tracing::info!(
            source = self.name(),
            expires_in_secs = value
                .credentials
                .expiry()
                .and_then(|e| e.duration_since(now).ok())
                .map(|d| d.as_secs()),
            "AWS credentials refreshed"
        );
    }

    fn log_failed(&self, error: &str) {
        tracing::warn!(source = self.name(), error = %error, "AWS credentials unavailable");
    }
}

/// The credentials the proxy signs with: readers load them without a lock, a background task refreshes
/// them ahead of expiry, and one refresh runs at a time (see [`Refreshing`]).
#[derive(Debug)]
pub struct CredentialCache(Refreshing<CredentialSource>);

impl CredentialCache {
    pub fn new(source: CredentialSource) -> Arc<Self> {
        Arc::new(CredentialCache(Refreshing::new(source)))
    }

    #[cfg(test)]
    fn with_clock(source: CredentialSource, clock: Clock) -> Arc<Self> {
        Arc::new(CredentialCache(Refreshing::with_clock(source, clock)))
    }

    /// Usable credentials: lock-free when cached; otherwise waits for the (single) refresh.
    pub async fn get(&self) -> Result<Arc<CachedCredentials>, Error> {
        self.0.get().await
    }

    /// Refreshes because the upstream rejected `rejected` as expired. Concurrent callers that saw the
    /// same credentials share one refresh; a caller whose credentials were already replaced gets the new ones.
    pub async fn refresh_after_rejection(
        &self,
        rejected: &CachedCredentials,
    ) -> Result<Arc<CachedCredentials>, Error> {
        self.0.refresh_after_rejection(rejected).await
    }

    /// Keeps credentials fresh in the background: fetches once at start, then ahead of each expiry,
    /// retrying with back-off after failures. Returns when credentials never expire.
    pub async fn run_refresher(self: Arc<Self>) {
        self.0.run().await
    }

    pub fn status(&self) -> CredentialStatus {
        let snapshot = self.0.snapshot();
        CredentialStatus {
            source: self.0.source().name(),
            expires_at: snapshot
                .current
                .as_ref()
                .and_then(|c| c.credentials.expiry()),
            usable: snapshot.usable,
            last_error: snapshot.last_error,
            refreshes: snapshot.refreshes,
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
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// A provider that counts calls and hands out credentials expiring `lifetime` after the clock's now
    /// (each call takes 20 ms, so that concurrent callers overlap); it fails while `fail` is set.
    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicUsize>,
        lifetime: Option<Duration>,
        fail: Arc<AtomicBool>,
        clock: Clock,
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
                if self.fail.load(Ordering::SeqCst) {
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
                    self.lifetime.map(|l| self.clock.now() + l),
                    "test",
                ))
            })
        }
    }

    struct Fixture {
        cache: Arc<CredentialCache>,
        calls: Arc<AtomicUsize>,
        fail: Arc<AtomicBool>,
    }

    impl Fixture {
        fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    fn fixture(lifetime: Option<Duration>, fail: bool, clock: Clock) -> Fixture {
        let calls = Arc::new(AtomicUsize::new(0));
        let fail = Arc::new(AtomicBool::new(fail));
        let provider = SharedCredentialsProvider::new(Counting {
            calls: calls.clone(),
            lifetime,
            fail: fail.clone(),
            clock,
        });
        Fixture {
            cache: CredentialCache::with_clock(CredentialSource::DefaultChain(provider), clock),
            calls,
            fail,
        }
    }

    fn cache(lifetime: Option<Duration>, fail: bool) -> (Arc<CredentialCache>, Arc<AtomicUsize>) {
        let f = fixture(lifetime, fail, Clock::System);
        (f.cache, f.calls)
    }

    /// Lets paused time jump on by `by`, then run 100 ms more: the timers due by then fire (a timer set
    /// after the jump counts from its end), and the provider's 20 ms calls complete on the way.
    async fn pass(by: Duration) {
        tokio::time::advance(by).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
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

    #[tokio::test(start_paused = true)]
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
        // A caller that comes late with the rejected credentials gets the replacement, no new fetch.
        let late = cache.refresh_after_rejection(&first).await.unwrap();
        assert_eq!(late.credentials.access_key_id(), "AKID1");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(cache.status().refreshes, 2);
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

    #[tokio::test(start_paused = true)]
    async fn the_refresher_replaces_credentials_ahead_of_expiry() {
        let f = fixture(
            Some(Duration::from_secs(3600)),
            false,
            Clock::following_tokio(),
        );
        let refresher = tokio::spawn(f.cache.clone().run_refresher());
        pass(Duration::ZERO).await;
        assert_eq!(f.calls(), 1, "fetched at start");
        let first = f.cache.get().await.unwrap();
        assert_eq!(first.credentials.access_key_id(), "AKID0");
        // Due 5 minutes before expiry: nothing happens a second earlier...
        pass(Duration::from_secs(3600 - 300 - 1)).await;
        assert_eq!(f.calls(), 1);
        assert!(Arc::ptr_eq(&f.cache.get().await.unwrap(), &first));
        // ...and then the new credentials are in place before the old ones expire, with no reader waiting.
        pass(Duration::from_secs(1)).await;
        assert_eq!(f.calls(), 2);
        let status = f.cache.status();
        assert!(status.usable && status.last_error.is_none());
        assert_eq!(status.refreshes, 2);
        assert!(
            first.usable_at(f.cache.0.clock().now()),
            "refreshed ahead, not at expiry"
        );
        assert_eq!(
            f.cache.get().await.unwrap().credentials.access_key_id(),
            "AKID1"
        );
        // And again an hour later, for the new credentials.
        pass(Duration::from_secs(3600 - 300)).await;
        assert_eq!(f.calls(), 3);
        assert_eq!(f.calls(), f.cache.status().refreshes as usize);
        refresher.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn short_lived_credentials_are_refreshed_at_half_their_lifetime() {
        let f = fixture(
            Some(Duration::from_secs(60)),
            false,
            Clock::following_tokio(),
        );
        let refresher = tokio::spawn(f.cache.clone().run_refresher());
        pass(Duration::ZERO).await;
        assert_eq!(f.calls(), 1);
        pass(Duration::from_secs(29)).await;
        assert_eq!(f.calls(), 1);
        pass(Duration::from_secs(1)).await;
        assert_eq!(f.calls(), 2);
        refresher.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_source_is_retried_with_back_off_until_it_recovers() {
        let f = fixture(
            Some(Duration::from_secs(3600)),
            true,
            Clock::following_tokio(),
        );
        let refresher = tokio::spawn(f.cache.clone().run_refresher());
        pass(Duration::ZERO).await;
        assert_eq!(f.calls(), 1);
        let status = f.cache.status();
        assert!(!status.usable);
        assert!(status.last_error.unwrap().contains("nothing configured"));
        // Retries after 2 s, then 4 s, 8 s, ... (each measured from the end of the failed fetch).
        for (n, back_off) in [(2, 2), (3, 4), (4, 8), (5, 16)] {
            pass(Duration::from_secs(back_off - 1)).await;
            assert_eq!(f.calls(), n - 1, "no retry before {back_off} s");
            pass(Duration::from_secs(1)).await;
            assert_eq!(f.calls(), n, "a retry after {back_off} s");
        }
        assert_eq!(f.cache.status().refreshes, 0);
        // The source recovers: the next retry (after 32 s) succeeds and clears the error.
        f.fail.store(false, Ordering::SeqCst);
        pass(Duration::from_secs(32)).await;
        assert_eq!(f.calls(), 6);
        let status = f.cache.status();
        assert!(status.usable && status.last_error.is_none(), "{status:?}");
        assert_eq!(status.refreshes, 1);
        assert_eq!(
            f.cache.get().await.unwrap().credentials.access_key_id(),
            "AKID5"
        );
        // From then on the loop waits for the refresh ahead of expiry, not the back-off.
        pass(Duration::from_secs(600)).await;
        assert_eq!(f.calls(), 6);
        refresher.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn the_back_off_stops_growing_at_a_minute() {
        let f = fixture(
            Some(Duration::from_secs(3600)),
            true,
            Clock::following_tokio(),
        );
        let refresher = tokio::spawn(f.cache.clone().run_refresher());
        pass(Duration::ZERO).await;
        // 2, 4, 8, 16 and 32 s (time is advanced by steps: a jump fires each timer once, at its end)...
        for back_off in [2, 4, 8, 16, 32] {
            pass(Duration::from_secs(back_off)).await;
        }
        assert_eq!(f.calls(), 6);
        // ...then 60 s each time.
        for n in 7..10 {
            pass(Duration::from_secs(59)).await;
            assert_eq!(f.calls(), n - 1);
            pass(Duration::from_secs(1)).await;
            assert_eq!(f.calls(), n);
        }
        refresher.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn readers_never_get_credentials_within_the_leeway_of_expiry() {
        // No background loop: the reader's own check must notice the approaching expiry.
        let f = fixture(
            Some(Duration::from_secs(600)),
            false,
            Clock::following_tokio(),
        );
        let first = f.cache.get().await.unwrap();
        tokio::time::advance(Duration::from_secs(600) - EXPIRY_LEEWAY - Duration::from_secs(1))
            .await;
        assert!(Arc::ptr_eq(&f.cache.get().await.unwrap(), &first));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!f.cache.status().usable);
        let second = f.cache.get().await.unwrap();
        assert_eq!(second.credentials.access_key_id(), "AKID1");
        assert_eq!(f.calls(), 2);
    }

    #[test]
    fn sts_names() {
        assert_eq!(sts_safe_name("alice@example.com"), "alice@example.com");
        let changed = sts_safe_name("Jöhn Doe/admin");
        assert!(changed.starts_with("J-hn-Doe-admin-"), "{changed}");
        assert_eq!(changed.len(), "J-hn-Doe-admin-".len() + 8);
        assert_ne!(sts_safe_name("a b"), sts_safe_name("a-b"));
        assert_eq!(sts_safe_name("a-b"), "a-b");
        assert!(sts_safe_name("x").starts_with("x-"));
        let long_a = sts_safe_name(&format!("{}a", "p".repeat(100)));
        let long_b = sts_safe_name(&format!("{}b", "p".repeat(100)));
        assert_eq!(long_a.len(), 64);
        assert_ne!(long_a, long_b);
        assert_eq!(sts_safe_name(&"a".repeat(64)), "a".repeat(64));
        for name in ["", "é", "a b", &"z".repeat(300)] {
            let safe = sts_safe_name(name);
            assert!((2..=64).contains(&safe.len()), "{name:?}: {safe}");
            assert!(safe
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b)));
        }
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
