//! ALB OIDC: verifying the `x-amzn-oidc-data` JWT an Application Load Balancer adds after an OIDC login.
//!
//! The token is ES256-signed by the ALB; its header names the key (`kid`), the ALB (`signer`) and the
//! expiry (`exp`). The public key for a `kid` is a PEM document at the regional key endpoint
//! (`https://public-keys.auth.elb.REGION.amazonaws.com/KID`), fetched once and cached. Anything other than
//! ES256 with a known-shaped `kid`, the configured signer and a future `exp` is refused.
//!
//! Key fetches are an outbound call an unauthenticated client can cause, so they are held down: every
//! check that needs no key comes first (shape, algorithm, `kid`, signer, expiry, signature length), one
//! fetch runs at a time and a `kid` fetched or failed meanwhile is not fetched again, at most
//! [`MAX_FETCHES_PER_MINUTE`] fetches start per minute, failures are remembered for [`NEGATIVE_TTL`],
//! and keys are kept for [`KEY_TTL`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use base64::Engine;
use http_body_util::{BodyExt, Empty};
use serde_json::Value;

use crate::net::http_client::UpstreamClient;

/// Keys cached at most (an ALB rotates through few).
const MAX_CACHED_KEYS: usize = 64;
/// A failed key fetch is not retried for this long (a forged `kid` must not make us hammer the endpoint).
const NEGATIVE_TTL: Duration = Duration::from_secs(30);
/// A fetched key is used for this long, then fetched again (the endpoint stays the authority).
const KEY_TTL: Duration = Duration::from_secs(3600);
/// Key fetches started per minute at most; beyond it, tokens naming an uncached key are refused.
const MAX_FETCHES_PER_MINUTE: u32 = 10;
/// Tokens larger than this are refused unread.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The DER prefix of a P-256 SubjectPublicKeyInfo; the uncompressed point (65 bytes) follows it.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported algorithm {0:?} (only ES256)")]
    Algorithm(String),
    #[error("invalid key id")]
    KeyId,
    #[error("token signed by {0:?}, not the configured ALB")]
    Signer(String),
    #[error("token expired")]
    Expired,
    #[error("bad signature")]
    Signature,
    #[error("public key unavailable: {0}")]
    Key(String),
}

/// The parts of a token before its signature is checked.
#[derive(Debug)]
pub struct ParsedToken {
    pub header: Value,
    pub claims: Value,
    pub kid: String,
    signed_part: Vec<u8>,
    signature: Vec<u8>,
}

fn b64(segment: &str) -> Result<Vec<u8>, JwtError> {
    // ALB tokens may carry base64 padding; accept both padded and unpadded URL-safe base64.
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .map_err(|_| JwtError::Malformed)
}

/// Splits and decodes a token and checks everything that needs no key: algorithm, key id shape,
/// signer and expiry. Pure: the fuzz target calls this.
pub fn parse_and_check(
    token: &str,
    expected_signer: &str,
    now: SystemTime,
) -> Result<ParsedToken, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Value = serde_json::from_slice(&b64(h)?).map_err(|_| JwtError::Malformed)?;
    let claims: Value = serde_json::from_slice(&b64(p)?).map_err(|_| JwtError::Malformed)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if alg != "ES256" {
        return Err(JwtError::Algorithm(alg.to_string()));
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kid_ok = !kid.is_empty()
        && kid.len() <= 128
        && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !kid_ok {
        return Err(JwtError::KeyId);
    }
    let signer = header
        .get("signer")
        .or_else(|| claims.get("signer"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if signer != expected_signer {
        return Err(JwtError::Signer(signer.to_string()));
    }
    let exp = header
        .get("exp")
        .or_else(|| claims.get("exp"))
        .and_then(Value::as_u64)
        .ok_or(JwtError::Expired)?;
    let now_secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    if exp <= now_secs {
        return Err(JwtError::Expired);
    }
    let signature = b64(s)?;
    if signature.len() != 64 {
        return Err(JwtError::Signature);
    }
    Ok(ParsedToken {
        header,
        claims,
        kid,
        signed_part: format!("{h}.{p}").into_bytes(),
        signature,
    })
}

/// Verifies the ES256 signature with an uncompressed P-256 public key point.
pub fn verify_signature(token: &ParsedToken, public_point: &[u8]) -> Result<(), JwtError> {
    let key = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
        public_point,
    );
    key.verify(&token.signed_part, &token.signature)
        .map_err(|_| JwtError::Signature)
}

/// Extracts the EC point from a PEM-encoded P-256 public key.
pub fn p256_point_from_pem(pem: &str) -> Result<Vec<u8>, JwtError> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| JwtError::Key("not PEM".into()))?;
    match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
        Some(point) if point.len() == 65 && point[0] == 0x04 => Ok(point.to_vec()),
        _ => Err(JwtError::Key("not a P-256 public key".into())),
    }
}

enum CachedKey {
    Point { point: Vec<u8>, fetched: Instant },
    Failed(Instant),
}

/// The keys fetched (or failed) and the fetches started in the current minute.
struct KeyCache {
    keys: HashMap<String, CachedKey>,
    window_started: Instant,
    fetches_in_window: u32,
}

impl KeyCache {
    fn new(now: Instant) -> Self {
        KeyCache {
            keys: HashMap::new(),
            window_started: now,
            fetches_in_window: 0,
        }
    }

    /// The cached answer for `kid`, if there is a fresh one.
    fn get(&self, kid: &str, now: Instant) -> Option<Result<Vec<u8>, JwtError>> {
        match self.keys.get(kid)? {
            CachedKey::Point { point, fetched } if now.duration_since(*fetched) < KEY_TTL => {
                Some(Ok(point.clone()))
            }
            CachedKey::Failed(at) if now.duration_since(*at) < NEGATIVE_TTL => {
                Some(Err(JwtError::Key("recently failed to fetch".into())))
            }
            _ => None,
        }
    }

    /// Counts a fetch about to start; false when this minute's fetches are used up.
    fn reserve_fetch(&mut self, now: Instant) -> bool {
        if now.duration_since(self.window_started) >= Duration::from_secs(60) {
            self.window_started = now;
            self.fetches_in_window = 0;
        }
        if self.fetches_in_window >= MAX_FETCHES_PER_MINUTE {
            return false;
        }
        self.fetches_in_window += 1;
        true
    }

    fn store(&mut self, kid: &str, fetched: &Result<Vec<u8>, JwtError>, now: Instant) {
        if self.keys.len() >= MAX_CACHED_KEYS {
            self.keys
                .retain(|_, v| matches!(v, CachedKey::Point { .. }));
            if self.keys.len() >= MAX_CACHED_KEYS {
                self.keys.clear();
            }
        }
        let entry = match fetched {
            Ok(point) => CachedKey::Point {
                point: point.clone(),
                fetched: now,
            },
            Err(_) => CachedKey::Failed(now),
        };
        self.keys.insert(kid.to_string(), entry);
    }
}

/// Fetches and caches the ALB's public keys.
pub struct AlbVerifier {
    signer: String,
    /// Key URL with `{kid}` in it.
    key_url: String,
    client: UpstreamClient,
    keys: Mutex<KeyCache>,
    /// Held while a key is fetched: concurrent requests for an uncached `kid` wait for the one fetch.
    fetching: tokio::sync::Mutex<()>,
}

impl AlbVerifier {
    pub fn new(signer: String, key_url: String, client: UpstreamClient) -> Self {
        AlbVerifier {
            signer,
            key_url,
            client,
            keys: Mutex::new(KeyCache::new(Instant::now())),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Verifies a token and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Value, JwtError> {
        let parsed = parse_and_check(token, &self.signer, SystemTime::now())?;
        let point = self.key(&parsed.kid).await?;
        verify_signature(&parsed, &point)?;
        Ok(parsed.claims)
    }

    fn cache(&self) -> MutexGuard<'_, KeyCache> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn key(&self, kid: &str) -> Result<Vec<u8>, JwtError> {
        if let Some(cached) = self.cache().get(kid, Instant::now()) {
            return cached;
        }
        let _one_fetch_at_a_time = self.fetching.lock().await;
        // Whoever held the lock before may have fetched this very key.
        {
            let mut cache = self.cache();
            let now = Instant::now();
            if let Some(cached) = cache.get(kid, now) {
                return cached;
            }
            if !cache.reserve_fetch(now) {
                return Err(JwtError::Key(format!(
                    "more than {MAX_FETCHES_PER_MINUTE} key fetches this minute"
                )));
            }
        }
        // Boxed: a key fetch is rare and its future large; see `CredentialCache::get`.
        let fetched = Box::pin(self.fetch(kid)).await;
        self.cache().store(kid, &fetched, Instant::now());
        fetched
    }

    async fn fetch(&self, kid: &str) -> Result<Vec<u8>, JwtError> {
        let url = self.key_url.replace("{kid}", kid);
        let uri: http::Uri = url
            .parse()
            .map_err(|_| JwtError::Key("bad key URL".into()))?;
        let mut request = http::Request::new(Empty::new().map_err(|never| match never {}).boxed());
        *request.uri_mut() = uri;
        let response = tokio::time::timeout(Duration::from_secs(5), self.client.request(request))
            .await
            .map_err(|_| JwtError::Key("timeout".into()))?
            .map_err(|e| JwtError::Key(e.to_string()))?;
        if !response.status().is_success() {
            return Err(JwtError::Key(format!(
                "key endpoint answered {}",
                response.status()
            )));
        }
        let body = tokio::time::timeout(Duration::from_secs(5), response.into_body().collect())
            .await
            .map_err(|_| JwtError::Key("timeout".into()))?
            .map_err(|e| JwtError::Key(e.to_string()))?
            .to_bytes();
        p256_point_from_pem(&String::from_utf8_lossy(&body))
    }
}

/// Test helpers: a P-256 key pair that signs ALB-shaped tokens. Used by unit and integration tests;
/// not compiled into the release binary.
#[cfg(any(test, feature = "test-util"))]
pub mod testing {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    pub struct TestSigner {
        pair: EcdsaKeyPair,
    }

    /// Seconds since the epoch, `secs` from now (a token `exp`).
    pub fn expiry_in(secs: u64) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            + secs
    }

    /// An ALB-shaped token header.
    pub fn alb_header(alg: &str, kid: &str, signer: &str, exp: u64) -> Value {
        serde_json::json!({"alg": alg, "kid": kid, "signer": signer, "exp": exp, "typ": "JWT", "iss": "https://idp.example.com", "client": "c"})
    }

    impl Default for TestSigner {
        fn default() -> Self {
            Self::new()
        }
    }

    impl TestSigner {
        pub fn new() -> Self {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .expect("key generation");
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .expect("key");
            TestSigner { pair }
        }

        /// The public key as the ALB key endpoint serves it (PEM SubjectPublicKeyInfo).
        pub fn public_pem(&self) -> String {
            let mut der = P256_SPKI_PREFIX.to_vec();
            der.extend_from_slice(self.pair.public_key().as_ref());
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
        }

        pub fn public_point(&self) -> Vec<u8> {
            self.pair.public_key().as_ref().to_vec()
        }

        /// Signs `header` and `claims` as JSON (ALB-style, with padding on the segments).
        pub fn sign(&self, header: &Value, claims: &Value) -> String {
            let engine = base64::engine::general_purpose::URL_SAFE;
            let h = engine.encode(serde_json::to_vec(header).unwrap_or_default());
            let p = engine.encode(serde_json::to_vec(claims).unwrap_or_default());
            let signed = format!("{h}.{p}");
            let rng = SystemRandom::new();
            let signature = self.pair.sign(&rng, signed.as_bytes()).expect("signing");
            format!("{signed}.{}", engine.encode(signature.as_ref()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::TestSigner;
    use super::*;
    use serde_json::json;

    const SIGNER: &str =
        "arn:aws:elasticloadbalancing:us-west-2:111122223333:loadbalancer/app/mlflow/abc";

    fn future() -> u64 {
        super::testing::expiry_in(600)
    }

    use super::testing::alb_header as header;

    fn verify(signer: &TestSigner, token: &str) -> Result<Value, JwtError> {
        let parsed = parse_and_check(token, SIGNER, SystemTime::now())?;
        verify_signature(&parsed, &signer.public_point())?;
        Ok(parsed.claims)
    }

    #[test]
    fn a_valid_token_verifies_and_yields_claims() {
        let signer = TestSigner::new();
        let token = signer.sign(
            &header("ES256", "kid-1", SIGNER, future()),
            &json!({"sub": "123", "email": "alice@example.com"}),
        );
        assert_eq!(
            verify(&signer, &token).unwrap()["email"],
            "alice@example.com"
        );
        assert_eq!(
            p256_point_from_pem(&signer.public_pem()).unwrap(),
            signer.public_point()
        );
    }

    #[test]
    fn forged_tokens_are_refused() {
        let signer = TestSigner::new();
        let other = TestSigner::new();
        let claims = json!({"sub": "1", "email": "mallory@example.com"});
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        // alg none with an empty signature
        let none = format!(
            "{}.{}.",
            engine.encode(serde_json::to_vec(&header("none", "kid-1", SIGNER, future())).unwrap()),
            engine.encode(serde_json::to_vec(&claims).unwrap())
        );
        assert_eq!(
            verify(&signer, &none).unwrap_err(),
            JwtError::Algorithm("none".into())
        );
        // HS256 "signed" with the public key as the HMAC secret
        let hs = signer.sign(&header("HS256", "kid-1", SIGNER, future()), &claims);
        assert_eq!(
            verify(&signer, &hs).unwrap_err(),
            JwtError::Algorithm("HS256".into())
        );
        // signed by another key
        let wrong_key = other.sign(&header("ES256", "kid-1", SIGNER, future()), &claims);
        assert_eq!(
            verify(&signer, &wrong_key).unwrap_err(),
            JwtError::Signature
        );
        // path tricks in the key id
        let bad_kid = signer.sign(
            &header("ES256", "../../etc/passwd", SIGNER, future()),
            &claims,
        );
        assert_eq!(verify(&signer, &bad_kid).unwrap_err(), JwtError::KeyId);
        // another load balancer
        let other_alb = signer.sign(
            &header(
                "ES256",
                "kid-1",
                "arn:aws:elasticloadbalancing:us-west-2:999:loadbalancer/app/x/y",
                future(),
            ),
            &claims,
        );
        assert!(matches!(
            verify(&signer, &other_alb).unwrap_err(),
            JwtError::Signer(_)
        ));
        // expired
        let expired = signer.sign(&header("ES256", "kid-1", SIGNER, 1_000), &claims);
        assert_eq!(verify(&signer, &expired).unwrap_err(), JwtError::Expired);
        // claims swapped after signing
        let good = signer.sign(
            &header("ES256", "kid-1", SIGNER, future()),
            &json!({"email": "alice@example.com"}),
        );
        let mut parts: Vec<&str> = good.split('.').collect();
        let evil_claims = engine.encode(serde_json::to_vec(&claims).unwrap());
        parts[1] = &evil_claims;
        assert_eq!(
            verify(&signer, &parts.join(".")).unwrap_err(),
            JwtError::Signature
        );
        // garbage
        for junk in ["", "a.b", "a.b.c.d", "!!!.???.***", "e30.e30.e30"] {
            assert!(verify(&signer, junk).is_err(), "{junk}");
        }
    }

    #[test]
    fn key_cache_expires_keys_and_failures_and_bounds_fetches() {
        let t0 = Instant::now();
        let mut cache = KeyCache::new(t0);
        assert!(cache.get("k", t0).is_none());
        cache.store("k", &Ok(vec![4]), t0);
        cache.store("bad", &Err(JwtError::Key("404".into())), t0);
        assert_eq!(cache.get("k", t0 + KEY_TTL / 2), Some(Ok(vec![4])));
        assert!(cache.get("k", t0 + KEY_TTL).is_none(), "keys expire");
        assert!(matches!(cache.get("bad", t0), Some(Err(_))));
        assert!(cache.get("bad", t0 + NEGATIVE_TTL).is_none());
        let reserved = (0..MAX_FETCHES_PER_MINUTE + 5)
            .filter(|_| cache.reserve_fetch(t0))
            .count();
        assert_eq!(reserved, MAX_FETCHES_PER_MINUTE as usize);
        assert!(
            cache.reserve_fetch(t0 + Duration::from_secs(60)),
            "next minute"
        );
    }
}
