//! Everything AWS: credentials, SigV4 signing, and the one STS call the dashboard uses.

pub mod credentials;
pub mod refreshing;
pub mod sagemaker;
pub mod sigv4;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde::Serialize;

use crate::error::Error;
use crate::settings::Settings;
use credentials::{CacheAsProvider, CredentialCache, CredentialSource};

/// The AWS side of the proxy: the credential cache and an STS client for identity look-ups.
#[derive(Debug, Clone)]
pub struct Aws {
    pub credentials: Arc<CredentialCache>,
    /// With `--per-user-sessions`: a credential cache per caller.
    pub per_user: Option<Arc<PerUserCredentials>>,
    sdk_config: aws_config::SdkConfig,
    /// The last GetCallerIdentity answer, with the access key it was asked with and when.
    identity_cache: Arc<std::sync::Mutex<Option<(String, Instant, CallerIdentity)>>>,
}

/// How long a GetCallerIdentity answer is reused for the same credentials.
const IDENTITY_TTL: Duration = Duration::from_secs(60);

/// Credential caches per caller, each assuming the role with the caller's name (bounded: the least
/// recently created entries go first).
#[derive(Debug)]
pub struct PerUserCredentials {
    sts: aws_sdk_sts::Client,
    role: crate::settings::AssumeRoleSettings,
    caches: std::sync::Mutex<std::collections::HashMap<String, (u64, Arc<CredentialCache>)>>,
    created: std::sync::atomic::AtomicU64,
}

/// Per-user credential caches kept at most.
const MAX_PER_USER: usize = 1000;

impl PerUserCredentials {
    fn new(sts: aws_sdk_sts::Client, role: crate::settings::AssumeRoleSettings) -> Arc<Self> {
        Arc::new(PerUserCredentials {
            sts,
            role,
            caches: Default::default(),
            created: Default::default(),
        })
    }

    /// The credential cache for `caller`, created on first use.
    pub fn for_caller(&self, caller: &str) -> Arc<CredentialCache> {
        let Ok(mut caches) = self.caches.lock() else {
            return CredentialCache::new(self.source(caller));
        };
        if let Some((_, cache)) = caches.get(caller) {
            return cache.clone();
        }
        if caches.len() >= MAX_PER_USER {
            if let Some(oldest) = caches
                .iter()
                .min_by_key(|(_, (n, _))| *n)
                .map(|(k, _)| k.clone())
            {
                caches.remove(&oldest);
            }
        }
        let n = self
            .created
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let cache = CredentialCache::new(self.source(caller));
        caches.insert(caller.to_string(), (n, cache.clone()));
        cache
    }

    fn source(&self, caller: &str) -> CredentialSource {
        CredentialSource::AssumeRole {
            sts: self.sts.clone(),
            settings: self.role.clone(),
            caller: Some(caller.to_string()),
        }
    }
}

/// The caller identity as STS reports it.
#[derive(Debug, Clone, Serialize)]
pub struct CallerIdentity {
    pub account: Option<String>,
    pub arn: Option<String>,
    pub user_id: Option<String>,
}

impl Aws {
    /// Loads the SDK's default configuration (credential chain, region, `AWS_ENDPOINT_URL_*` overrides)
    /// and builds the credential cache. `signing_region` is used when no region is configured.
    pub async fn load(settings: &Settings, signing_region: &str) -> Result<Self, Error> {
        let loaded = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let sdk_config = if loaded.region().is_some() {
            loaded
        } else {
            loaded
                .into_builder()
                .region(aws_config::Region::new(signing_region.to_string()))
                .build()
        };
        let base = sdk_config.credentials_provider().ok_or_else(|| {
            Error::NoCredentials("the AWS SDK configured no credential provider".into())
        })?;
        let source = match &settings.assume_role {
            Some(role) => CredentialSource::AssumeRole {
                sts: aws_sdk_sts::Client::new(&sdk_config),
                settings: role.clone(),
                caller: None,
            },
            None => CredentialSource::DefaultChain(base),
        };
        let per_user = match (&settings.assume_role, settings.per_user_sessions) {
            (Some(role), true) => Some(PerUserCredentials::new(
                aws_sdk_sts::Client::new(&sdk_config),
                role.clone(),
            )),
            _ => None,
        };
        Ok(Aws {
            credentials: CredentialCache::new(source),
            per_user,
            sdk_config,
            identity_cache: Default::default(),
        })
    }

    /// The caller identity, asked of STS at most once a minute for the same credentials.
    pub async fn caller_identity_cached(&self) -> Result<CallerIdentity, Error> {
        let key = self
            .credentials
            .get()
            .await?
            .credentials
            .access_key_id()
            .to_string();
        if let Ok(guard) = self.identity_cache.lock() {
            if let Some((cached_key, at, identity)) = guard.as_ref() {
                if *cached_key == key && at.elapsed() < IDENTITY_TTL {
                    return Ok(identity.clone());
                }
            }
        }
        let identity = self.caller_identity().await?;
        if let Ok(mut guard) = self.identity_cache.lock() {
            *guard = Some((key, Instant::now(), identity.clone()));
        }
        Ok(identity)
    }

    /// The loaded SDK configuration (region, endpoints), for other AWS clients of the proxy.
    pub fn sdk_config(&self) -> &aws_config::SdkConfig {
        &self.sdk_config
    }

    /// STS GetCallerIdentity with exactly the credentials the proxy signs with.
    pub async fn caller_identity(&self) -> Result<CallerIdentity, Error> {
        let config = aws_sdk_sts::config::Builder::from(&self.sdk_config)
            .credentials_provider(CacheAsProvider(self.credentials.clone()))
            .build();
        let output = aws_sdk_sts::Client::from_conf(config)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| {
                Error::UpstreamUnreachable(format!(
                    "STS GetCallerIdentity failed: {}",
                    DisplayErrorContext(e)
                ))
            })?;
        Ok(CallerIdentity {
            account: output.account().map(str::to_string),
            arn: output.arn().map(str::to_string),
            user_id: output.user_id().map(str::to_string),
        })
    }
}
