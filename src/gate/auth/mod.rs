//! Who the caller is: no authentication, ALB OIDC tokens, bearer tokens, or a header set by a trusted
//! auth proxy. Several modes may be enabled at once (ALB users and CI tokens). This module only says who;
//! `policy` decides what they may do.

pub mod alb;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use http::{header, HeaderMap};
use serde_json::Value;

use crate::error::Error;
use crate::net::cidr::Cidr;
use crate::net::http_client::UpstreamClient;
use crate::settings::{AuthMode, AuthSettings};
use alb::AlbVerifier;
use tokens::TokenStore;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub groups: Vec<String>,
    /// Which mode authenticated it: `none`, `alb-oidc`, `token`, `trusted-header`.
    pub method: &'static str,
}

impl Identity {
    pub fn anonymous() -> Self {
        Identity {
            name: "anonymous".into(),
            groups: Vec::new(),
            method: "none",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("authentication required: {0}")]
    Missing(&'static str),
    #[error("authentication failed: {0}")]
    Invalid(String),
}

pub struct Authenticator {
    allow_anonymous: bool,
    alb: Option<AlbVerifier>,
    tokens: Option<Arc<TokenStore>>,
    trusted: Option<TrustedHeader>,
    identity_claim: String,
    groups_claim: String,
}

struct TrustedHeader {
    user: http::HeaderName,
    groups: http::HeaderName,
    sources: Vec<Cidr>,
}

impl TrustedHeader {
    /// The identity an auth proxy in `sources` vouches for. Each header must come once: an auth proxy
    /// that appends to a header the client already sent would leave two values (two field lines, or
    /// one joined with a comma), and which of them is the proxy's cannot be told, so the request is
    /// refused rather than the first (the client's) believed. The groups header is a comma-separated
    /// list, so group names cannot contain commas there (use an OIDC array claim for such names).
    fn identity(
        &self,
        headers: &HeaderMap,
        remote: Option<SocketAddr>,
    ) -> Result<Identity, AuthError> {
        let from_trusted = remote.is_some_and(|r| self.sources.iter().any(|c| c.contains(r.ip())));
        if !from_trusted {
            return Err(AuthError::Invalid(format!(
                "{} is only accepted from --trusted-header-sources",
                self.user
            )));
        }
        let name = single_value(headers, &self.user)?
            .unwrap_or_default()
            .trim();
        if name.is_empty() {
            return Err(AuthError::Invalid(format!("empty {}", self.user)));
        }
        if name.contains(',') {
            return Err(AuthError::Invalid(format!(
                "{} holds a list ({name:?}): the auth proxy must replace the header, not append to it",
                self.user
            )));
        }
        let groups = single_value(headers, &self.groups)?
            .map(comma_list)
            .unwrap_or_default();
        Ok(Identity {
            name: name.to_string(),
            groups,
            method: "trusted-header",
        })
    }
}

/// The one value of header `name` (`None` when absent); refused when it is sent more than once or is
/// not text.
fn single_value<'a>(
    headers: &'a HeaderMap,
    name: &http::HeaderName,
) -> Result<Option<&'a str>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::Invalid(format!(
            "{name} sent more than once: the auth proxy must replace the client's copy, not add its own"
        )));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| AuthError::Invalid(format!("{name} is not text")))
}

/// A comma-separated list of names (blanks dropped).
fn comma_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

impl Authenticator {
    pub fn new(settings: &AuthSettings, client: UpstreamClient) -> Result<Self, String> {
        let has = |mode| settings.modes.contains(&mode);
        let alb = if has(AuthMode::AlbOidc) {
            let signer = settings
                .alb_arn
                .clone()
                .ok_or("--alb-arn is required with --auth alb-oidc")?;
            Some(AlbVerifier::new(
                signer,
                settings.alb_key_url.clone(),
                client,
            ))
        } else {
            None
        };
        let tokens = if has(AuthMode::Token) {
            let file = settings
                .tokens
                .as_ref()
                .ok_or("--token-file is required with --auth token")?;
            Some(TokenStore::new(file))
        } else {
            None
        };
        let trusted = if has(AuthMode::TrustedHeader) {
            if settings.trusted_header_sources.is_empty() {
                return Err(
                    "--trusted-header-sources is required with --auth trusted-header".into(),
                );
            }
            Some(TrustedHeader {
                user: settings.trusted_header_user.clone(),
                groups: settings.trusted_header_groups.clone(),
                sources: settings.trusted_header_sources.clone(),
            })
        } else {
            None
        };
        Ok(Authenticator {
            allow_anonymous: has(AuthMode::None),
            alb,
            tokens,
            trusted,
            identity_claim: settings.oidc_identity_claim.clone(),
            groups_claim: settings.oidc_groups_claim.clone(),
        })
    }

    pub fn token_store(&self) -> Option<Arc<TokenStore>> {
        self.tokens.clone()
    }

    pub fn uses_bearer_tokens(&self) -> bool {
        self.tokens.is_some()
    }

    /// The refusal for a failed authentication: 401, with a bearer challenge when tokens are accepted.
    pub fn refusal(&self, error: &AuthError) -> Error {
        Error::Unauthenticated {
            message: error.to_string(),
            bearer_challenge: self.uses_bearer_tokens(),
        }
    }

    /// Authenticates a request. A credential that is presented must be valid: a wrong bearer token is
    /// refused even if another mode could have let the request through.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        remote: Option<SocketAddr>,
    ) -> Result<Identity, AuthError> {
        if let Some(store) = &self.tokens {
            if let Some(token) = bearer(headers) {
                return store
                    .check(token)
                    .map(|entry| Identity {
                        name: entry.name,
                        groups: entry.groups,
                        method: "token",
                    })
                    .ok_or_else(|| AuthError::Invalid("unknown bearer token".into()));
            }
        }
        if let Some(alb) = &self.alb {
            if let Some(data) = headers.get("x-amzn-oidc-data") {
                let token = data
                    .to_str()
                    .map_err(|_| AuthError::Invalid("malformed ALB token".into()))?;
                let claims = alb
                    .verify(token)
                    .await
                    .map_err(|e| AuthError::Invalid(format!("ALB token: {e}")))?;
                return Ok(self.identity_from_claims(&claims));
            }
        }
        if let Some(trusted) = &self.trusted {
            if headers.contains_key(&trusted.user) {
                return trusted.identity(headers, remote);
            }
        }
        if self.allow_anonymous {
            return Ok(Identity::anonymous());
        }
        Err(AuthError::Missing(if self.tokens.is_some() {
            "send Authorization: Bearer <token> (MLFLOW_TRACKING_TOKEN)"
        } else {
            "sign in through the load balancer"
        }))
    }

    fn identity_from_claims(&self, claims: &Value) -> Identity {
        let name = claims
            .get(&self.identity_claim)
            .and_then(Value::as_str)
            .or_else(|| claims.get("sub").and_then(Value::as_str))
            .unwrap_or("unknown")
            .to_string();
        let groups = match claims.get(&self.groups_claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            // A string claim is a comma-separated list (as the groups header); in an array each item
            // is one group, commas and all, so `"x,ml-engineers"` there is not `ml-engineers`.
            Some(Value::String(s)) => comma_list(s),
            _ => Vec::new(),
        };
        Identity {
            name,
            groups,
            method: "alb-oidc",
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
