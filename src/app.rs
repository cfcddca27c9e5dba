//! The application's shared state, built once from the settings: the forwarder and its pools, the AWS
//! credentials, the gate's authenticator, policy and limits, the UI session, and the figures the
//! dashboard and metrics read. Request logic lives in `serve::pipeline`, not here.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::HeaderValue;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use serde_json::json;

use crate::artifacts::{self, Gateway};
use crate::aws::sagemaker::{self, ControlPlane};
use crate::aws::Aws;
use crate::error::Error;
use crate::gate::auth::Authenticator;
use crate::gate::browser;
use crate::gate::limits::Limits;
use crate::gate::policy::Policy;
use crate::observe::metrics::{Gauges, StoreGauge};
use crate::observe::stats::Stats;
use crate::settings::{Settings, UiAuth};
use crate::upstream::ui_session::UiSession;
use crate::upstream::Forwarder;

pub struct App {
    pub settings: Settings,
    pub forwarder: Forwarder,
    /// Present when signing with SigV4.
    pub aws: Option<Aws>,
    pub stats: Arc<Stats>,
    pub started_at: SystemTime,
    pub started: Instant,
    /// Set on SIGTERM: `/readyz` answers 503 so load balancers stop sending new requests.
    pub draining: AtomicBool,
    /// `Content-Security-Policy` for pages that may be framed.
    pub frame_policy: HeaderValue,
    /// The proxy's own origins and the CORS-allowed ones (browser writes are checked against them).
    pub origins: browser::OriginPolicy,
    /// Present in presigned-session UI mode.
    pub ui_session: Option<Arc<UiSession>>,
    pub authenticator: Authenticator,
    pub policy: Policy,
    pub limits: Limits,
    /// Present with the artifact gateway on (ARN targets by default).
    pub artifacts: Option<Arc<Gateway>>,
}

impl App {
    /// Builds the application; with SigV4 signing this loads the AWS configuration.
    pub async fn new(settings: Settings) -> Result<Arc<Self>, Error> {
        let aws = match &settings.upstream.signing {
            Some(signing) => Some(Aws::load(&settings, &signing.region).await?),
            None => None,
        };
        let stats = Arc::new(Stats::new(settings.worker_threads));
        let forwarder = Forwarder::new(&settings, stats.clone());
        let authenticator =
            Authenticator::new(&settings.auth, forwarder.client()).map_err(Error::Internal)?;
        let policy = match &settings.policy {
            Some(rules) => Policy::from_rules(rules.clone()),
            None => Policy::allow_all(),
        };
        let policy = if settings.read_only {
            policy.restricted_to_reads()
        } else {
            policy
        };
        let limits = Limits::new(settings.limits.clone());
        let frame_policy = browser::frame_ancestors_policy(&settings.frame_ancestors);
        let origins = browser::OriginPolicy::new(
            settings.listen,
            settings.tls.is_some(),
            &settings.public_origins,
            &settings.cors_allowed_origins,
        );
        let ui_session = match (&aws, &settings.upstream.signing, settings.ui_auth) {
            (Some(aws), Some(signing), Some(UiAuth::PresignedSession)) => {
                let control = Self::control_plane(&settings, aws, &signing.region, &forwarder)?;
                Some(UiSession::new(
                    control,
                    signing.arn.clone(),
                    forwarder.client(),
                    settings.ui_session_duration.as_secs(),
                    settings.request_timeout.min(Duration::from_secs(30)),
                ))
            }
            _ => None,
        };
        let artifacts = Self::artifact_gateway(&settings, aws.as_ref(), &forwarder).await?;
        Ok(Arc::new(App {
            settings,
            forwarder,
            aws,
            stats,
            started_at: SystemTime::now(),
            started: Instant::now(),
            draining: AtomicBool::new(false),
            frame_policy,
            origins,
            ui_session,
            authenticator,
            policy,
            limits,
            artifacts,
        }))
    }

    /// The SageMaker control plane (`AWS_ENDPOINT_URL_SAGEMAKER` or the region's endpoint), signed with
    /// the proxy's credentials; used by the UI session and the artifact store's discovery.
    fn control_plane(
        settings: &Settings,
        aws: &Aws,
        region: &str,
        forwarder: &Forwarder,
    ) -> Result<ControlPlane, Error> {
        let endpoint = settings
            .sagemaker_endpoint
            .clone()
            .unwrap_or_else(|| sagemaker::default_endpoint(region));
        ControlPlane::new(
            &endpoint,
            region,
            aws.credentials.clone(),
            forwarder.client(),
            settings.request_timeout.min(Duration::from_secs(30)),
        )
    }

    /// The artifact gateway, when on: the store found with SageMaker's `Describe…` (retried in the
    /// background if that fails now) unless `--artifact-store-uri` names it.
    async fn artifact_gateway(
        settings: &Settings,
        aws: Option<&Aws>,
        forwarder: &Forwarder,
    ) -> Result<Option<Arc<Gateway>>, Error> {
        let (Some(aws), Some(signing), true) =
            (aws, &settings.upstream.signing, settings.artifacts.enabled)
        else {
            return Ok(None);
        };
        let control = Self::control_plane(settings, aws, &signing.region, forwarder)?;
        let discovery = artifacts::Discovery {
            control,
            arn: signing.arn.clone(),
        };
        let gateway =
            Gateway::from_settings(&settings.artifacts, settings.max_body_size, aws, discovery)
                .map_err(Error::Internal)?;
        // Known before the first request when SageMaker answers; retried in the background if not.
        if let Err(e) = gateway.discover().await {
            tracing::error!(error = %e, "artifact store not found yet; retrying in the background");
        }
        Ok(Some(gateway))
    }

    /// Starts background work (credential refresh ahead of expiry).
    pub fn start_background(self: &Arc<Self>) {
        if let Some(aws) = &self.aws {
            tokio::spawn(aws.credentials.clone().run_refresher());
        }
        if let Some(ui_session) = &self.ui_session {
            tokio::spawn(ui_session.clone().run_renewer());
        }
        if let Some(store) = self.authenticator.token_store() {
            tokio::spawn(reload_tokens_on_sighup(store));
        }
        if let Some(gateway) = &self.artifacts {
            tokio::spawn(gateway.clone().run_checks());
        }
    }

    /// The figures owned outside the metrics registry, read at scrape or export time.
    pub fn gauges(&self) -> Gauges {
        Gauges {
            in_flight: self.stats.in_flight(),
            credential_refreshes: self.aws.as_ref().map(|a| a.credentials.status().refreshes),
            ui_session_renewals: self.ui_session.as_ref().map(|s| s.renewals()),
            artifact_store: self.artifacts.as_ref().map(|g| g.gauge()),
        }
    }

    /// Exports the metrics over OTLP too: the per-request instruments, and the gauges as observable
    /// instruments read at each export.
    pub fn export_metrics(self: &Arc<Self>, meter: &Meter) {
        self.stats.metrics.export_over_otlp(meter);
        // Weak: the meter provider (owned by main) must not keep the application alive.
        let app = Arc::downgrade(self);
        let read = move || app.upgrade().map(|app| app.gauges());
        let reader = read.clone();
        meter
            .i64_observable_up_down_counter("http.server.active_requests")
            .with_description("Requests being handled now.")
            .with_callback(move |observer| {
                if let Some(gauges) = reader() {
                    observer.observe(gauges.in_flight, &[]);
                }
            })
            .build();
        if self.aws.is_some() {
            let reader = read.clone();
            meter
                .u64_observable_counter("mlflow_proxy.credential.refreshes")
                .with_description(
                    "AWS credential fetches (start-up, ahead of expiry, after rejection).",
                )
                .with_callback(move |observer| {
                    if let Some(n) = reader().and_then(|g| g.credential_refreshes) {
                        observer.observe(n, &[]);
                    }
                })
                .build();
        }
        if self.artifacts.is_some() {
            register_store_gauges(meter, read.clone());
        }
        if self.ui_session.is_some() {
            meter
                .u64_observable_counter("mlflow_proxy.ui_session.renewals")
                .with_description("Upstream UI sessions established.")
                .with_callback(move |observer| {
                    if let Some(n) = read().and_then(|g| g.ui_session_renewals) {
                        observer.observe(n, &[]);
                    }
                })
                .build();
        }
    }

    pub fn ui_session_status(&self) -> serde_json::Value {
        match &self.ui_session {
            Some(ui_session) => ui_session.status(),
            None => json!({"state": "none", "expires_at": null}),
        }
    }
}

/// The artifact store's state over OTLP: `mlflow_proxy.artifact_store.up` (1/0) and
/// `mlflow_proxy.artifact_store.state` (1 for the state in force, 0 for the others, by `state`), as at
/// `/metrics`.
fn register_store_gauges(meter: &Meter, read: impl Fn() -> Option<Gauges> + Send + Sync + 'static) {
    let read = Arc::new(read);
    let reader = read.clone();
    meter
        .i64_observable_gauge("mlflow_proxy.artifact_store.up")
        .with_description(
            "Whether the artifact gateway's last check could list the artifact store (1) or not (0).",
        )
        .with_callback(move |observer| {
            if let Some(store) = reader().and_then(|g| g.artifact_store) {
                observer.observe(store.up(), &[]);
            }
        })
        .build();
    meter
        .i64_observable_gauge("mlflow_proxy.artifact_store.state")
        .with_description("The artifact store's state: 1 for the state in force, 0 for the others.")
        .with_callback(move |observer| {
            if let Some(store) = read().and_then(|g| g.artifact_store) {
                for state in StoreGauge::STATES {
                    observer.observe(
                        i64::from(state == store),
                        &[KeyValue::new("state", state.label())],
                    );
                }
            }
        })
        .build();
}

/// Re-reads the token file on every SIGHUP; a broken file keeps the tokens in force.
async fn reload_tokens_on_sighup(store: Arc<crate::gate::auth::tokens::TokenStore>) {
    #[cfg(unix)]
    {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hangups.recv().await.is_some() {
            match store.reload() {
                Ok(count) => tracing::info!(tokens = count, "token file reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "token file not reloaded; keeping the previous tokens")
                }
            }
        }
    }
}
