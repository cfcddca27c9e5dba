//! Every setting: clap flags with `MLFLOW_PROXY_*` env fallbacks and defaults, validated into a typed
//! [`Settings`]. This is the only module that reads environment variables (besides the AWS SDK's own
//! credential chain).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

pub mod artifacts;
pub mod policy_file;
pub mod target;
pub mod text_source;
pub mod token_file;

use crate::net::cidr::Cidr;
use crate::net::tls::TlsReloader;
use policy_file::PolicyRules;
use target::{MlflowArn, SigningTarget, Upstream};
use text_source::TextSource;
use token_file::TokenFile;

#[derive(Parser, Debug)]
#[command(
    name = "sagemaker-mlflow-proxy",
    version,
    about = "Gives any MLflow client, browser and portal plain HTTP access to Amazon SageMaker managed MLflow, signing every call with AWS SigV4."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub args: Args,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Exit 0 when the proxy listening on --listen answers /healthz with 200 (for container HEALTHCHECKs).
    Healthcheck,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Signing {
    /// Sign every upstream request with AWS SigV4 (SageMaker managed MLflow).
    Sigv4,
    /// Forward unsigned (a self-hosted MLflow upstream).
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// No inbound authentication: anyone who reaches the listener uses the proxy's AWS identity.
    None,
    /// The `x-amzn-oidc-data` JWT an ALB adds after an OIDC login (ES256, signer = --alb-arn).
    AlbOidc,
    /// `Authorization: Bearer` tokens (MLFLOW_TRACKING_TOKEN) checked against --token-file.
    Token,
    /// An identity header set by an auth proxy in front, accepted only from --trusted-header-sources.
    TrustedHeader,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum UiAuth {
    /// Sign every UI request with SigV4, like a REST call.
    Sigv4,
    /// Hold a presigned-URL session with the upstream UI server-side and attach its cookie.
    PresignedSession,
}

impl UiAuth {
    pub fn name(self) -> &'static str {
        match self {
            UiAuth::Sigv4 => "sigv4",
            UiAuth::PresignedSession => "presigned-session",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Address and port to listen on.
    #[arg(long, env = "MLFLOW_PROXY_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// A second address serving only /healthz, /readyz and /metrics (then /metrics leaves the main port).
    #[arg(long, env = "MLFLOW_PROXY_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,

    /// PEM certificate chain: serve HTTPS directly (reloaded when the file changes). Needs --tls-key.
    #[arg(long, env = "MLFLOW_PROXY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "MLFLOW_PROXY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// SageMaker MLflow Tracking Server or MLflow App ARN; decides the upstream URL, SigV4 service and routing header.
    #[arg(long, env = "MLFLOW_PROXY_ARN")]
    pub arn: Option<String>,

    /// Replaces the upstream base URL derived from the ARN (VPC endpoint, self-hosted MLflow, local stand-in).
    /// Falls back to SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT, like the official plugin.
    #[arg(long, env = "MLFLOW_PROXY_UPSTREAM_URL")]
    pub upstream_url: Option<String>,

    /// How upstream requests are authenticated.
    #[arg(long, env = "MLFLOW_PROXY_SIGNING", value_enum, default_value_t = Signing::Sigv4)]
    pub signing: Signing,

    /// Role to assume (through STS) for signing; falls back to SAGEMAKER_MLFLOW_ASSUME_ROLE_ARN.
    #[arg(long, env = "MLFLOW_PROXY_ASSUME_ROLE_ARN")]
    pub assume_role_arn: Option<String>,

    /// RoleSessionName used with --assume-role-arn.
    #[arg(
        long,
        env = "MLFLOW_PROXY_ASSUME_ROLE_SESSION_NAME",
        default_value = "sagemaker-mlflow-proxy"
    )]
    pub assume_role_session_name: String,

    /// ExternalId used with --assume-role-arn.
    #[arg(long, env = "MLFLOW_PROXY_ASSUME_ROLE_EXTERNAL_ID")]
    pub assume_role_external_id: Option<String>,

    /// Lifetime requested for assumed-role sessions (900s to 12h, within the role's maximum).
    #[arg(long, env = "MLFLOW_PROXY_ASSUME_ROLE_DURATION", default_value = "1h", value_parser = parse_duration)]
    pub assume_role_duration: Duration,

    /// Inbound authentication modes, comma-separated (e.g. `alb-oidc,token`).
    #[arg(
        long,
        env = "MLFLOW_PROXY_AUTH",
        value_enum,
        value_delimiter = ',',
        default_value = "none"
    )]
    pub auth: Vec<AuthMode>,

    /// The ALB's ARN: ALB OIDC tokens must name it as their signer.
    #[arg(long, env = "MLFLOW_PROXY_ALB_ARN")]
    pub alb_arn: Option<String>,

    /// Where the ALB's public keys are fetched, `{kid}` replaced by the key id (default: the regional ELB
    /// key endpoint for --alb-arn's region).
    #[arg(long, env = "MLFLOW_PROXY_ALB_KEY_URL")]
    pub alb_key_url: Option<String>,

    /// The OIDC claim that names the user.
    #[arg(
        long,
        env = "MLFLOW_PROXY_OIDC_IDENTITY_CLAIM",
        default_value = "email"
    )]
    pub oidc_identity_claim: String,

    /// The OIDC claim that lists the user's groups.
    #[arg(long, env = "MLFLOW_PROXY_OIDC_GROUPS_CLAIM", default_value = "groups")]
    pub oidc_groups_claim: String,

    /// File of bearer tokens: one `NAME SHA256HEX [GROUP,GROUP]` per line; reloaded on SIGHUP.
    #[arg(long, env = "MLFLOW_PROXY_TOKEN_FILE", conflicts_with = "tokens")]
    pub token_file: Option<PathBuf>,

    /// The token file's content itself (same format, one entry per line), for platforms that hand
    /// secrets over as environment variables (ECS `secrets`); instead of --token-file.
    #[arg(long, env = "MLFLOW_PROXY_TOKENS", hide_env_values = true)]
    pub tokens: Option<String>,

    /// Header carrying the user name in trusted-header mode.
    #[arg(
        long,
        env = "MLFLOW_PROXY_TRUSTED_HEADER_USER",
        default_value = "x-forwarded-email"
    )]
    pub trusted_header_user: String,

    /// Header carrying comma-separated groups in trusted-header mode.
    #[arg(
        long,
        env = "MLFLOW_PROXY_TRUSTED_HEADER_GROUPS",
        default_value = "x-forwarded-groups"
    )]
    pub trusted_header_groups: String,

    /// Comma-separated CIDRs of the auth proxy allowed to set the trusted headers.
    #[arg(
        long,
        env = "MLFLOW_PROXY_TRUSTED_HEADER_SOURCES",
        value_delimiter = ','
    )]
    pub trusted_header_sources: Vec<String>,

    /// Permissions file (TOML): which identities and groups may read, write, delete or administer.
    #[arg(long, env = "MLFLOW_PROXY_POLICY", conflicts_with = "policy_toml")]
    pub policy: Option<PathBuf>,

    /// The permissions file's TOML content itself, for platforms that hand configuration over as
    /// environment variables (an SSM parameter in ECS); instead of --policy.
    #[arg(long, env = "MLFLOW_PROXY_POLICY_TOML")]
    pub policy_toml: Option<String>,

    #[command(flatten)]
    pub artifacts: artifacts::ArtifactArgs,

    /// Allow only read operations, for everyone (a shortcut for a policy granting `read`).
    #[arg(long, env = "MLFLOW_PROXY_READ_ONLY", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub read_only: bool,

    /// Assume --assume-role-arn once per caller (RoleSessionName and SourceIdentity = the caller), so
    /// CloudTrail shows who did what.
    #[arg(long, env = "MLFLOW_PROXY_PER_USER_SESSIONS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub per_user_sessions: bool,

    /// Requests per second allowed per identity (token bucket; 0 = unlimited).
    #[arg(long, env = "MLFLOW_PROXY_RATE_LIMIT", default_value_t = 0.0)]
    pub rate_limit: f64,

    /// Burst size of the per-identity token bucket.
    #[arg(long, env = "MLFLOW_PROXY_RATE_LIMIT_BURST", default_value_t = 50)]
    pub rate_limit_burst: u32,

    /// Requests handled at once, over all callers (429 beyond it; 0 = unlimited).
    #[arg(
        long,
        env = "MLFLOW_PROXY_MAX_CONCURRENT_REQUESTS",
        default_value_t = 1024
    )]
    pub max_concurrent_requests: usize,

    /// Failed authentications (a credential presented and refused) allowed per client address and
    /// minute; beyond it the address gets 429 until the minute ends, its credentials unchecked (0 = off).
    #[arg(long, env = "MLFLOW_PROXY_MAX_AUTH_FAILURES", default_value_t = 20)]
    pub max_auth_failures: u32,

    /// Most request headers accepted (431 beyond it).
    #[arg(long, env = "MLFLOW_PROXY_MAX_HEADER_COUNT", default_value_t = 100)]
    pub max_header_count: usize,

    /// Largest total size of request headers accepted (431 beyond it).
    #[arg(long, env = "MLFLOW_PROXY_MAX_HEADER_BYTES", default_value = "64KiB", value_parser = parse_size)]
    pub max_header_bytes: u64,

    /// How the MLflow UI under /mlflow/ authenticates upstream (default: sigv4 for apps,
    /// presigned-session for tracking servers; ignored with --signing none).
    #[arg(long, env = "MLFLOW_PROXY_UI_AUTH", value_enum)]
    pub ui_auth: Option<UiAuth>,

    /// Lifetime requested for the upstream UI session in presigned-session mode (30m to 12h); it is
    /// renewed ahead of expiry.
    #[arg(long, env = "MLFLOW_PROXY_UI_SESSION_DURATION", default_value = "8h", value_parser = parse_duration)]
    pub ui_session_duration: Duration,

    /// Comma-separated origins (https://portal.example.com) that may embed the UI in an iframe, besides
    /// this proxy (`'self'`, always allowed, may be listed too).
    #[arg(long, env = "MLFLOW_PROXY_FRAME_ANCESTORS", value_delimiter = ',')]
    pub frame_ancestors: Vec<String>,

    /// Comma-separated origins whose browsers may call the REST API cross-origin (CORS); none by default.
    #[arg(long, env = "MLFLOW_PROXY_CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,

    /// Comma-separated URLs browsers use to reach this proxy (https://mlflow.example.com), when that is not
    /// its listen address (a load balancer, a DNS name, a port mapping): browser writes are accepted only
    /// from these origins, the listen address's, and --cors-allowed-origins.
    #[arg(long, env = "MLFLOW_PROXY_PUBLIC_URL", value_delimiter = ',')]
    pub public_url: Vec<String>,

    /// Time allowed to open a TCP (and TLS) connection to the upstream.
    #[arg(long, env = "MLFLOW_PROXY_CONNECT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Time allowed from sending a request upstream until its response headers arrive (then 504).
    #[arg(long, env = "MLFLOW_PROXY_REQUEST_TIMEOUT", default_value = "300s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Longest pause allowed while streaming a body in either direction; also the pooled-connection idle time.
    #[arg(long, env = "MLFLOW_PROXY_IDLE_TIMEOUT", default_value = "90s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Slowest average rate, in bytes per second, at which a client may send a request body once
    /// --idle-timeout has passed since it began (0 = no minimum). Suffixes as for sizes (1KiB = 1024 B/s).
    #[arg(long, env = "MLFLOW_PROXY_MIN_BODY_RATE", default_value = "1KiB", value_parser = parse_size)]
    pub min_body_rate: u64,

    /// A client connection with no request in flight and no bytes moving for this long is closed
    /// (HTTP/2 with GOAWAY). Keep it above a load balancer's idle timeout (an ALB's is 60s by default),
    /// so that the balancer, not the proxy, closes idle connections.
    #[arg(long, env = "MLFLOW_PROXY_KEEP_ALIVE_TIMEOUT", default_value = "360s", value_parser = parse_duration)]
    pub keep_alive_timeout: Duration,

    /// Client connections open at once per listener; beyond it, accepting pauses (with a warning)
    /// until one closes. Keep it well under the file-descriptor limit (each connection may use an
    /// upstream connection too), so that --admin-listen and spool files still find descriptors.
    #[arg(long, env = "MLFLOW_PROXY_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// On SIGTERM/SIGINT, how long in-flight requests may run before the process exits anyway.
    #[arg(long, env = "MLFLOW_PROXY_DRAIN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Worker threads, each serving its share of the connections (default: one per available CPU).
    #[arg(long, env = "MLFLOW_PROXY_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: Option<u16>,

    /// Largest request body accepted (413 above it). Suffixes: KiB, MiB, GiB, KB, MB, GB.
    #[arg(long, env = "MLFLOW_PROXY_MAX_BODY_SIZE", default_value = "5GiB", value_parser = parse_size)]
    pub max_body_size: u64,

    /// Largest request body of a read operation (searches, gets; 413 above it). Reads carry small
    /// JSON (filters, ID lists), so a large one is refused before it is spooled.
    #[arg(long, env = "MLFLOW_PROXY_MAX_READ_BODY_SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_read_body_size: u64,

    /// Request bodies up to this size are hashed in memory; larger ones are spooled to --spool-dir.
    #[arg(long, env = "MLFLOW_PROXY_MEMORY_BODY_SIZE", default_value = "4MiB", value_parser = parse_size)]
    pub memory_body_size: u64,

    /// Directory for spooled request bodies (default: the system temporary directory).
    #[arg(long, env = "MLFLOW_PROXY_SPOOL_DIR")]
    pub spool_dir: Option<PathBuf>,

    /// Comma-separated CIDRs of proxies (e.g. the ALB's subnets) whose X-Forwarded-* headers are trusted.
    #[arg(long, env = "MLFLOW_PROXY_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, env = "MLFLOW_PROXY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter, e.g. `info` or `info,sagemaker_mlflow_proxy=debug`.
    #[arg(long, env = "MLFLOW_PROXY_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// Validated settings the rest of the program uses.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
    /// The listener's certificate and key when serving HTTPS, loaded (and then watched) once here.
    pub tls: Option<Arc<TlsReloader>>,
    pub upstream: Upstream,
    pub assume_role: Option<AssumeRoleSettings>,
    pub auth: AuthSettings,
    /// The rules of the permissions file (--policy) or of its content (--policy-toml).
    pub policy: Option<PolicyRules>,
    pub read_only: bool,
    /// The artifact gateway: on by default for ARN targets.
    pub artifacts: artifacts::GatewaySettings,
    pub per_user_sessions: bool,
    pub limits: LimitSettings,
    /// `None` with --signing none (the UI is forwarded unsigned).
    pub ui_auth: Option<UiAuth>,
    pub ui_session_duration: Duration,
    /// The SageMaker control-plane endpoint override (`AWS_ENDPOINT_URL_SAGEMAKER`).
    pub sagemaker_endpoint: Option<String>,
    pub frame_ancestors: Vec<String>,
    pub cors_allowed_origins: Vec<String>,
    /// `--public-url` as origins (`scheme://host[:port]`).
    pub public_origins: Vec<String>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
    pub min_body_rate: u64,
    pub keep_alive_timeout: Duration,
    pub max_connections: usize,
    pub drain_timeout: Duration,
    /// Worker threads (one single-threaded runtime each).
    pub worker_threads: usize,
    pub max_body_size: u64,
    pub max_read_body_size: u64,
    pub memory_body_size: u64,
    pub spool_dir: PathBuf,
    pub trusted_proxies: Vec<Cidr>,
    pub log_format: LogFormat,
    pub log_level: String,
    /// What goes out over OTLP, when an endpoint is configured.
    pub otlp: Option<OtlpSettings>,
}

/// OpenTelemetry export, from the standard `OTEL_*` variables (the exporters read the endpoint,
/// headers, timeouts and intervals themselves).
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpSettings {
    /// `OTEL_SERVICE_NAME`, default `sagemaker-mlflow-proxy`.
    pub service_name: String,
    /// Spans, unless `OTEL_TRACES_EXPORTER=none` or no traces endpoint is set.
    pub traces: bool,
    /// Metrics, unless `OTEL_METRICS_EXPORTER=none` or no metrics endpoint is set.
    pub metrics: bool,
}

/// Inbound authentication settings.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub modes: Vec<AuthMode>,
    pub alb_arn: Option<String>,
    pub alb_key_url: String,
    pub oidc_identity_claim: String,
    pub oidc_groups_claim: String,
    /// The tokens of the token file (--token-file) or of its content (--tokens).
    pub tokens: Option<TokenFile>,
    pub trusted_header_user: http::HeaderName,
    pub trusted_header_groups: http::HeaderName,
    pub trusted_header_sources: Vec<Cidr>,
}

/// Limits on what one request or one caller may use.
#[derive(Clone, Debug)]
pub struct LimitSettings {
    pub rate_limit: f64,
    pub rate_limit_burst: u32,
    pub max_concurrent_requests: usize,
    pub max_header_count: usize,
    pub max_header_bytes: u64,
    /// Failed authentications per client address and minute before 429 (0: no limit).
    pub max_auth_failures: u32,
}

#[derive(Clone, Debug)]
pub struct AssumeRoleSettings {
    pub role_arn: String,
    pub session_name: String,
    pub external_id: Option<String>,
    pub duration: Duration,
}

/// A settings error names the setting (flag and env var) and says what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {flag} ({env}): {message}")]
pub struct SettingsError {
    pub flag: String,
    pub env: String,
    pub message: String,
}

/// The error for the setting whose clap id (its field in [`Args`]) is `id`: the flag and env var are
/// read from the clap attributes, so each name is written once, where the setting is declared.
fn invalid(id: &str, message: impl Into<String>) -> SettingsError {
    let command = Cli::command();
    let arg = command.get_arguments().find(|a| a.get_id() == id);
    debug_assert!(arg.is_some(), "no setting with the id {id:?}");
    SettingsError {
        flag: arg
            .and_then(|a| a.get_long())
            .map(|long| format!("--{long}"))
            .unwrap_or_else(|| id.to_string()),
        env: arg
            .and_then(|a| a.get_env())
            .map(|env| env.to_string_lossy().into_owned())
            .unwrap_or_default(),
        message: message.into(),
    }
}

/// Environment fallbacks the official SageMaker MLflow plugin defines, read here and nowhere else.
#[derive(Default, Debug, Clone)]
pub struct PluginEnv {
    pub custom_endpoint: Option<String>,
    pub assume_role_arn: Option<String>,
    /// The OTLP traces endpoint if one is configured (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, unless `OTEL_TRACES_EXPORTER=none`).
    pub otlp_traces_endpoint: Option<String>,
    /// The OTLP metrics endpoint likewise (`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, unless `OTEL_METRICS_EXPORTER=none`).
    pub otlp_metrics_endpoint: Option<String>,
    /// `OTEL_SERVICE_NAME`, default `sagemaker-mlflow-proxy`.
    pub otel_service_name: Option<String>,
    /// The AWS SDK's standard endpoint override for SageMaker (`AWS_ENDPOINT_URL_SAGEMAKER`, else
    /// `AWS_ENDPOINT_URL`), used for the hand-signed control-plane calls.
    pub sagemaker_endpoint: Option<String>,
}

impl PluginEnv {
    fn otlp_settings(&self) -> Option<OtlpSettings> {
        let traces = self.otlp_traces_endpoint.is_some();
        let metrics = self.otlp_metrics_endpoint.is_some();
        (traces || metrics).then(|| OtlpSettings {
            service_name: self
                .otel_service_name
                .clone()
                .unwrap_or_else(|| "sagemaker-mlflow-proxy".to_string()),
            traces,
            metrics,
        })
    }

    pub fn from_process_env() -> Self {
        let read = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        PluginEnv {
            custom_endpoint: read("SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT"),
            assume_role_arn: read("SAGEMAKER_MLFLOW_ASSUME_ROLE_ARN"),
            sagemaker_endpoint: read("AWS_ENDPOINT_URL_SAGEMAKER")
                .or_else(|| read("AWS_ENDPOINT_URL")),
            otlp_traces_endpoint: read("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                .or_else(|| read("OTEL_EXPORTER_OTLP_ENDPOINT"))
                .filter(|_| read("OTEL_TRACES_EXPORTER").as_deref() != Some("none")),
            otlp_metrics_endpoint: read("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
                .or_else(|| read("OTEL_EXPORTER_OTLP_ENDPOINT"))
                .filter(|_| read("OTEL_METRICS_EXPORTER").as_deref() != Some("none")),
            otel_service_name: read("OTEL_SERVICE_NAME"),
        }
    }
}

impl Args {
    /// Validates the raw arguments into [`Settings`].
    pub fn validate(&self, plugin_env: &PluginEnv) -> Result<Settings, SettingsError> {
        let upstream = self.upstream(plugin_env)?;
        let assume_role = self.assume_role(plugin_env)?;
        let ui_auth = self.ui_auth(&upstream)?;
        self.check_timeouts_and_sizes()?;
        let auth = self.auth_settings()?;
        let policy = self.policy_rules()?;
        if self.per_user_sessions && assume_role.is_none() {
            return Err(invalid(
                "per_user_sessions",
                "needs --assume-role-arn (the role assumed per caller)",
            ));
        }
        let frame_ancestors = parse_frame_ancestors(&self.frame_ancestors)?;
        let cors_allowed_origins =
            parse_origins(&self.cors_allowed_origins, "cors_allowed_origins")?;
        let public_origins = parse_public_urls(&self.public_url)?;

        let spool_dir = self.spool_dir.clone().unwrap_or_else(std::env::temp_dir);
        if !spool_dir.is_dir() {
            return Err(invalid(
                "spool_dir",
                format!("{} is not a directory", spool_dir.display()),
            ));
        }
        let trusted_proxies = self.trusted_proxies()?;
        let tls = self.tls()?;
        let artifacts = self
            .artifacts
            .validate(upstream.signing.is_some())
            .map_err(|e| invalid("artifact_gateway", e))?;
        Ok(Settings {
            listen: self.listen,
            admin_listen: self.admin_listen,
            tls,
            upstream,
            assume_role,
            auth,
            policy,
            read_only: self.read_only,
            artifacts,
            per_user_sessions: self.per_user_sessions,
            limits: LimitSettings {
                rate_limit: self.rate_limit,
                rate_limit_burst: self.rate_limit_burst.max(1),
                max_concurrent_requests: self.max_concurrent_requests,
                max_header_count: self.max_header_count,
                max_header_bytes: self.max_header_bytes,
                max_auth_failures: self.max_auth_failures,
            },
            ui_auth,
            ui_session_duration: self.ui_session_duration,
            sagemaker_endpoint: plugin_env.sagemaker_endpoint.clone(),
            frame_ancestors,
            cors_allowed_origins,
            public_origins,
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            idle_timeout: self.idle_timeout,
            min_body_rate: self.min_body_rate,
            keep_alive_timeout: self.keep_alive_timeout,
            max_connections: self.max_connections,
            drain_timeout: self.drain_timeout,
            worker_threads: self
                .worker_threads
                .map(usize::from)
                .unwrap_or_else(default_worker_count),
            max_body_size: self.max_body_size,
            max_read_body_size: self.max_read_body_size,
            memory_body_size: self.memory_body_size.min(self.max_body_size),
            spool_dir,
            trusted_proxies,
            log_format: self.log_format,
            log_level: self.log_level.clone(),
            otlp: plugin_env.otlp_settings(),
        })
    }
}

impl Args {
    /// Where requests go: the ARN's data plane (or `--upstream-url`), signed or not.
    fn upstream(&self, plugin_env: &PluginEnv) -> Result<Upstream, SettingsError> {
        let arn = match self.arn.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(raw) => Some(
                raw.parse::<MlflowArn>()
                    .map_err(|e| invalid("arn", e.to_string()))?,
            ),
            None => None,
        };
        let upstream_url = self
            .upstream_url
            .clone()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| plugin_env.custom_endpoint.clone());

        let signing =
            match (self.signing, &arn) {
                (Signing::Sigv4, Some(arn)) => Some(SigningTarget::for_arn(arn)),
                (Signing::Sigv4, None) => return Err(invalid(
                    "arn",
                    "required with --signing sigv4 (use --signing none for a self-hosted MLflow)",
                )),
                (Signing::None, _) => None,
            };
        let base_url = match (&upstream_url, &arn) {
            (Some(url), _) => url.clone(),
            (None, Some(arn)) => arn.default_base_url(),
            (None, None) => return Err(invalid("upstream_url", "required with --signing none")),
        };
        let upstream = Upstream::new(&base_url, signing)
            .map_err(|e| invalid("upstream_url", e.to_string()))?;

        Ok(upstream)
    }

    /// The role to assume, from `--assume-role-arn` or the plugin's `SAGEMAKER_MLFLOW_ASSUME_ROLE_ARN`.
    fn assume_role(
        &self,
        plugin_env: &PluginEnv,
    ) -> Result<Option<AssumeRoleSettings>, SettingsError> {
        let assume_role_arn = self
            .assume_role_arn
            .clone()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| plugin_env.assume_role_arn.clone());
        Ok(match assume_role_arn {
            Some(role_arn) => {
                if !role_arn.starts_with("arn:") || !role_arn.contains(":role/") {
                    return Err(invalid(
                        "assume_role_arn",
                        format!("{role_arn:?} is not an IAM role ARN"),
                    ));
                }
                if self.signing == Signing::None {
                    return Err(invalid(
                        "assume_role_arn",
                        "has no effect with --signing none",
                    ));
                }
                validate_session_name(&self.assume_role_session_name)?;
                let secs = self.assume_role_duration.as_secs();
                if !(900..=43_200).contains(&secs) {
                    return Err(invalid(
                        "assume_role_duration",
                        "must be between 15m and 12h",
                    ));
                }
                Some(AssumeRoleSettings {
                    role_arn,
                    session_name: self.assume_role_session_name.clone(),
                    external_id: self.assume_role_external_id.clone(),
                    duration: self.assume_role_duration,
                })
            }
            None => None,
        })
    }

    /// The UI mode: chosen, or the default per ARN kind; none for an unsigned upstream.
    fn ui_auth(&self, upstream: &Upstream) -> Result<Option<UiAuth>, SettingsError> {
        let ui_auth = match (&upstream.signing, self.ui_auth) {
            (None, _) => None,
            (Some(_), Some(chosen)) => Some(chosen),
            (Some(signing), None) => Some(match signing.arn.kind {
                crate::settings::target::ArnKind::App => UiAuth::Sigv4,
                crate::settings::target::ArnKind::TrackingServer => UiAuth::PresignedSession,
            }),
        };
        let ui_session_secs = self.ui_session_duration.as_secs();
        if ui_auth == Some(UiAuth::PresignedSession) && !(1800..=43_200).contains(&ui_session_secs)
        {
            return Err(invalid(
                "ui_session_duration",
                "must be between 30m and 12h (SageMaker's limits)",
            ));
        }
        Ok(ui_auth)
    }

    /// Timeouts and body sizes that must be positive or bounded.
    fn check_timeouts_and_sizes(&self) -> Result<(), SettingsError> {
        if !(self.rate_limit >= 0.0 && self.rate_limit.is_finite()) {
            return Err(invalid("rate_limit", "must be zero or more"));
        }
        for (id, value) in [
            ("connect_timeout", self.connect_timeout),
            ("request_timeout", self.request_timeout),
            ("idle_timeout", self.idle_timeout),
            ("keep_alive_timeout", self.keep_alive_timeout),
        ] {
            if value.is_zero() {
                return Err(invalid(id, "must be greater than zero"));
            }
        }
        if self.max_body_size == 0 {
            return Err(invalid("max_body_size", "must be greater than zero"));
        }
        if self.max_connections == 0 {
            return Err(invalid("max_connections", "must be greater than zero"));
        }
        if self.max_read_body_size == 0 {
            return Err(invalid("max_read_body_size", "must be greater than zero"));
        }
        if self.memory_body_size > 256 * 1024 * 1024 {
            return Err(invalid(
                "memory_body_size",
                "at most 256MiB (larger bodies are spooled to disk)",
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log_level) {
            return Err(invalid("log_level", e.to_string()));
        }
        Ok(())
    }

    /// `--trusted-proxies` as CIDRs.
    fn trusted_proxies(&self) -> Result<Vec<Cidr>, SettingsError> {
        self.trusted_proxies
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                s.parse::<Cidr>()
                    .map_err(|e| invalid("trusted_proxies", e.to_string()))
            })
            .collect()
    }

    /// The listener's certificate, loaded once here and handed on.
    fn tls(&self) -> Result<Option<Arc<TlsReloader>>, SettingsError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => TlsReloader::load(cert.clone(), key.clone())
                .map(Some)
                .map_err(|e| invalid("tls_cert", e)),
            _ => Ok(None),
        }
    }
}

impl Args {
    /// The policy file's rules, read once: from --policy, or --policy-toml.
    fn policy_rules(&self) -> Result<Option<PolicyRules>, SettingsError> {
        let (source, id) = match (&self.policy, &self.policy_toml) {
            (Some(path), _) => (TextSource::File(path.clone()), "policy"),
            (None, Some(text)) if !text.trim().is_empty() => (
                TextSource::Inline {
                    flag: "--policy-toml",
                    text: text.clone(),
                },
                "policy_toml",
            ),
            (None, _) => return Ok(None),
        };
        let text = source.read().map_err(|e| invalid(id, e))?;
        PolicyRules::parse(&text)
            .map(Some)
            .map_err(|e| invalid(id, format!("{}: {e}", source.describe())))
    }

    /// The bearer tokens, read once: from --token-file, or --tokens.
    fn token_file(&self) -> Result<Option<TokenFile>, SettingsError> {
        let (source, id) = match (&self.token_file, &self.tokens) {
            (Some(path), _) => (TextSource::File(path.clone()), "token_file"),
            (None, Some(text)) if !text.trim().is_empty() => (
                TextSource::Inline {
                    flag: "--tokens",
                    text: text.clone(),
                },
                "tokens",
            ),
            (None, _) => return Ok(None),
        };
        TokenFile::load(&source)
            .map(Some)
            .map_err(|e| invalid(id, e))
    }

    fn auth_settings(&self) -> Result<AuthSettings, SettingsError> {
        let modes = if self.auth.is_empty() {
            vec![AuthMode::None]
        } else {
            self.auth.clone()
        };
        let err = |id, message: &str| Err(invalid(id, message));
        if modes.contains(&AuthMode::AlbOidc) && self.alb_arn.is_none() {
            return err("alb_arn", "required with --auth alb-oidc");
        }
        let tokens = self.token_file()?;
        if modes.contains(&AuthMode::Token) && tokens.is_none() {
            return err("token_file",
                "required with --auth token (or the file's content in --tokens / MLFLOW_PROXY_TOKENS)",
            );
        }
        let trusted_header_sources = self
            .trusted_header_sources
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.parse::<Cidr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("trusted_header_sources", e))?;
        if modes.contains(&AuthMode::TrustedHeader) && trusted_header_sources.is_empty() {
            return err(
                "trusted_header_sources",
                "required with --auth trusted-header",
            );
        }
        let header_name = |value: &str, id| {
            http::HeaderName::from_bytes(value.trim().as_bytes())
                .map_err(|_| invalid(id, format!("{value:?} is not a header name")))
        };
        let alb_region = self
            .alb_arn
            .as_deref()
            .and_then(|arn| arn.split(':').nth(3))
            .unwrap_or("us-east-1");
        let alb_key_url = self.alb_key_url.clone().unwrap_or_else(|| {
            format!("https://public-keys.auth.elb.{alb_region}.amazonaws.com/{{kid}}")
        });
        if !alb_key_url.contains("{kid}") {
            return err("alb_key_url", "must contain {kid}");
        }
        Ok(AuthSettings {
            modes,
            alb_arn: self.alb_arn.clone(),
            alb_key_url,
            oidc_identity_claim: self.oidc_identity_claim.clone(),
            oidc_groups_claim: self.oidc_groups_claim.clone(),
            tokens,
            trusted_header_user: header_name(&self.trusted_header_user, "trusted_header_user")?,
            trusted_header_groups: header_name(
                &self.trusted_header_groups,
                "trusted_header_groups",
            )?,
            trusted_header_sources,
        })
    }
}

/// The default number of workers: the CPUs this process may use (cgroup limits included).
fn default_worker_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// `--frame-ancestors`: origins, plus the CSP keyword `'self'`, which is always in the policy (the
/// dashboard frames the UI), so listing it changes nothing. `'none'` would break the dashboard: refused.
fn parse_frame_ancestors(raw: &[String]) -> Result<Vec<String>, SettingsError> {
    let mut origins = Vec::new();
    for value in raw.iter().map(|s| s.trim()) {
        match value.to_ascii_lowercase().as_str() {
            "'self'" => {}
            "'none'" => {
                return Err(invalid(
                    "frame_ancestors",
                    "'none' cannot be honoured: the proxy's own dashboard frames the UI ('self' is always allowed); list only the other origins that may frame it",
                ))
            }
            _ => origins.push(value.to_string()),
        }
    }
    parse_origins(&origins, "frame_ancestors")
}

/// Origins as `scheme://host[:port]` (a leading `*.` in the host is allowed, as in CSP); never `*`.
fn parse_origins(raw: &[String], id: &str) -> Result<Vec<String>, SettingsError> {
    raw.iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|origin| {
            let origin = origin.trim_end_matches('/');
            let (scheme, host) = origin.split_once("://").unwrap_or(("", ""));
            let host_ok = !host.is_empty()
                && !host.contains('/')
                && host
                    .trim_start_matches("*.")
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
            if (scheme == "http" || scheme == "https") && host_ok {
                Ok(origin.to_ascii_lowercase())
            } else {
                Err(invalid(
                    id,
                    format!("{origin:?} is not an origin like https://portal.example.com"),
                ))
            }
        })
        .collect()
}

/// `--public-url`: the proxy's own addresses as browsers see them, as origins (a path other than `/` is
/// refused: the proxy serves from the root; no wildcards: each name is one the proxy answers to).
fn parse_public_urls(raw: &[String]) -> Result<Vec<String>, SettingsError> {
    if let Some(wildcard) = raw.iter().find(|url| url.contains('*')) {
        return Err(invalid(
            "public_url",
            format!(
                "{:?}: list each address, without wildcards",
                wildcard.trim()
            ),
        ));
    }
    parse_origins(raw, "public_url").map_err(|e| SettingsError {
        message: format!("{}; a URL like https://mlflow.example.com", e.message),
        ..e
    })
}

fn validate_session_name(name: &str) -> Result<(), SettingsError> {
    // STS: 2-64 characters of [\w+=,.@-].
    let ok = (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "assume_role_session_name",
            "2 to 64 characters of letters, digits and _+=,.@-",
        ))
    }
}

/// Parses durations such as `250ms`, `30s`, `5m`, `1h`; a bare number means seconds.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let input = input.trim();
    let split = input
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(input.len());
    let (number, unit) = input.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{input:?} is not a duration like 30s, 500ms, 5m or 1h"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (use ms, s, m or h)"
            ))
        }
    };
    if !seconds.is_finite() || !(0.0..=365.0 * 24.0 * 3600.0).contains(&seconds) {
        return Err(format!("{input:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses sizes such as `4096`, `64KiB`, `8MiB`, `5GiB`, `10MB`.
pub fn parse_size(input: &str) -> Result<u64, String> {
    let input = input.trim();
    let split = input
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(input.len());
    let (number, unit) = input.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{input:?} is not a size like 4096, 64KiB, 8MiB or 5GiB"))?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => return Err(format!("unknown size unit {other:?}")),
    };
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{input:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "arn:aws:sagemaker:us-west-2:111122223333:mlflow-tracking-server/my-server";

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["sagemaker-mlflow-proxy"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn arn_alone_is_enough() {
        let s = args(&["--arn", TS])
            .validate(&PluginEnv::default())
            .unwrap();
        assert_eq!(
            s.upstream.base_url(),
            "https://us-west-2.experiments.sagemaker.aws"
        );
        assert_eq!(s.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(s.upstream.signing.unwrap().service, "sagemaker-mlflow");
        assert_eq!(s.request_timeout, Duration::from_secs(300));
        assert_eq!(s.max_body_size, 5 << 30);
    }

    #[test]
    fn custom_endpoint_fallback_and_precedence() {
        let env = PluginEnv {
            custom_endpoint: Some("http://127.0.0.1:9000".into()),
            ..PluginEnv::default()
        };
        let s = args(&["--arn", TS]).validate(&env).unwrap();
        assert_eq!(s.upstream.base_url(), "http://127.0.0.1:9000");
        let s = args(&["--arn", TS, "--upstream-url", "http://127.0.0.1:7000"])
            .validate(&env)
            .unwrap();
        assert_eq!(s.upstream.base_url(), "http://127.0.0.1:7000");
    }

    #[test]
    fn otlp_signals_follow_their_endpoints() {
        let none = args(&["--arn", TS])
            .validate(&PluginEnv::default())
            .unwrap();
        assert_eq!(none.otlp, None);
        let metrics_only = PluginEnv {
            otlp_metrics_endpoint: Some("http://127.0.0.1:4318".into()),
            otel_service_name: Some("mlflow-gateway".into()),
            ..PluginEnv::default()
        };
        let s = args(&["--arn", TS]).validate(&metrics_only).unwrap();
        assert_eq!(
            s.otlp,
            Some(OtlpSettings {
                service_name: "mlflow-gateway".into(),
                traces: false,
                metrics: true,
            })
        );
        let both = PluginEnv {
            otlp_traces_endpoint: Some("http://127.0.0.1:4318".into()),
            otlp_metrics_endpoint: Some("http://127.0.0.1:4318".into()),
            ..PluginEnv::default()
        };
        let otlp = args(&["--arn", TS]).validate(&both).unwrap().otlp.unwrap();
        assert!(otlp.traces && otlp.metrics);
        assert_eq!(otlp.service_name, "sagemaker-mlflow-proxy");
    }

    #[test]
    fn assume_role_fallback_env() {
        let env = PluginEnv {
            assume_role_arn: Some("arn:aws:iam::111122223333:role/mlflow".into()),
            ..PluginEnv::default()
        };
        let s = args(&["--arn", TS]).validate(&env).unwrap();
        let role = s.assume_role.unwrap();
        assert_eq!(role.role_arn, "arn:aws:iam::111122223333:role/mlflow");
        assert_eq!(role.session_name, "sagemaker-mlflow-proxy");
    }

    #[test]
    fn errors_name_the_setting() {
        let env = PluginEnv::default();
        let cases: [(&[&str], &str); 7] = [
            (&[], "--arn"),
            (&["--arn", "arn:aws:s3:::bucket"], "--arn"),
            (&["--signing", "none"], "--upstream-url"),
            (
                &["--arn", TS, "--upstream-url", "ftp://x"],
                "--upstream-url",
            ),
            (
                &["--arn", TS, "--assume-role-arn", "arn:aws:iam::1:user/x"],
                "--assume-role-arn",
            ),
            (
                &["--arn", TS, "--trusted-proxies", "10.0.0.0/99"],
                "--trusted-proxies",
            ),
            (
                &["--arn", TS, "--log-level", "foo=notalevel"],
                "--log-level",
            ),
        ];
        for (argv, flag) in cases {
            let err = args(argv).validate(&env).unwrap_err();
            assert_eq!(err.flag, flag, "{argv:?}");
            assert!(err
                .to_string()
                .starts_with(&format!("invalid setting {flag} (MLFLOW_PROXY_")));
        }
    }

    #[test]
    fn ui_auth_defaults_per_arn_kind_and_origins() {
        let s = args(&["--arn", TS])
            .validate(&PluginEnv::default())
            .unwrap();
        assert_eq!(s.ui_auth, Some(UiAuth::PresignedSession));
        let app = "arn:aws:sagemaker:us-west-2:111122223333:mlflow-app/app-X";
        let s = args(&[
            "--arn",
            app,
            "--frame-ancestors",
            "https://portal.example.com/, http://127.0.0.1:3000",
        ])
        .validate(&PluginEnv::default())
        .unwrap();
        assert_eq!(s.ui_auth, Some(UiAuth::Sigv4));
        assert_eq!(
            s.frame_ancestors,
            ["https://portal.example.com", "http://127.0.0.1:3000"]
        );
        for bad in [
            "*",
            "portal.example.com",
            "https://x.example/path",
            "javascript://x",
        ] {
            let err = args(&["--arn", app, "--cors-allowed-origins", bad])
                .validate(&PluginEnv::default())
                .unwrap_err();
            assert_eq!(err.flag, "--cors-allowed-origins", "{bad}");
        }
    }

    #[test]
    fn frame_ancestors_take_self_but_not_none() {
        // The shipped ECS files pass 'self'; it is always in the policy, so it is accepted and dropped.
        let s = args(&[
            "--arn",
            TS,
            "--frame-ancestors",
            "'self',https://portal.example.com",
        ])
        .validate(&PluginEnv::default())
        .unwrap();
        assert_eq!(s.frame_ancestors, ["https://portal.example.com"]);
        let s = args(&["--arn", TS, "--frame-ancestors", "'self'"])
            .validate(&PluginEnv::default())
            .unwrap();
        assert!(s.frame_ancestors.is_empty());
        let err = args(&["--arn", TS, "--frame-ancestors", "'none'"])
            .validate(&PluginEnv::default())
            .unwrap_err();
        assert_eq!(err.env, "MLFLOW_PROXY_FRAME_ANCESTORS");
        assert!(err.message.contains("'none'"), "{}", err.message);
    }

    #[test]
    fn public_urls_are_origins_without_wildcards_or_paths() {
        let s = args(&[
            "--arn",
            TS,
            "--public-url",
            "https://MLflow.example.com/, http://127.0.0.1:8081",
        ])
        .validate(&PluginEnv::default())
        .unwrap();
        assert_eq!(
            s.public_origins,
            ["https://mlflow.example.com", "http://127.0.0.1:8081"]
        );
        for bad in [
            "mlflow.example.com",
            "https://*.example.com",
            "https://mlflow.example.com/mlflow",
            "ftp://x",
        ] {
            let err = args(&["--arn", TS, "--public-url", bad])
                .validate(&PluginEnv::default())
                .unwrap_err();
            assert_eq!(err.env, "MLFLOW_PROXY_PUBLIC_URL", "{bad}");
        }
    }

    #[test]
    fn tokens_and_policy_inline_or_from_files() {
        let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let inline = format!("# from Secrets Manager\nci {hash} ci\n");
        let s = args(&["--arn", TS, "--auth", "token", "--tokens", &inline])
            .validate(&PluginEnv::default())
            .unwrap();
        let tokens = s.auth.tokens.unwrap();
        assert_eq!(
            tokens.source,
            TextSource::Inline {
                flag: "--tokens",
                text: inline.clone()
            }
        );
        assert_eq!(tokens.entries[0].name, "ci");
        let err = args(&["--arn", TS, "--auth", "token", "--tokens", "ci nothex"])
            .validate(&PluginEnv::default())
            .unwrap_err();
        assert_eq!(err.env, "MLFLOW_PROXY_TOKENS");
        assert!(err.message.contains("line 1"), "{}", err.message);
        let err = args(&["--arn", TS, "--auth", "token"])
            .validate(&PluginEnv::default())
            .unwrap_err();
        assert!(
            err.message.contains("MLFLOW_PROXY_TOKENS"),
            "{}",
            err.message
        );
        assert!(Cli::try_parse_from([
            "p",
            "--arn",
            TS,
            "--tokens",
            &inline,
            "--token-file",
            "/etc/tokens"
        ])
        .is_err());

        let toml = "default = [\"read\"]\n";
        let s = args(&["--arn", TS, "--policy-toml", toml])
            .validate(&PluginEnv::default())
            .unwrap();
        assert_eq!(
            s.policy.unwrap().default,
            [crate::mlflow::routes::Class::Read].into()
        );
        let err = args(&["--arn", TS, "--policy-toml", "default = [\"fly\"]"])
            .validate(&PluginEnv::default())
            .unwrap_err();
        assert_eq!(err.env, "MLFLOW_PROXY_POLICY_TOML");
    }

    #[test]
    fn self_hosted_needs_no_arn() {
        let s = args(&[
            "--signing",
            "none",
            "--upstream-url",
            "http://127.0.0.1:5000",
        ])
        .validate(&PluginEnv::default())
        .unwrap();
        assert!(s.upstream.signing.is_none());
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_size("5GiB").unwrap(), 5 << 30);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("99999999999999999999GiB").is_err());
        assert!(parse_size("lots").is_err());
    }
}
