#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

use sagemaker_mlflow_proxy::run::{self, healthcheck, App, Telemetry, WorkerHandles, Workers};

fn main() -> ExitCode {
    let cli = run::Cli::parse();
    if let Some(run::Command::Healthcheck) = cli.command {
        return healthcheck::run(cli.args.listen, cli.args.tls_cert.as_deref());
    }
    let settings = match cli.args.validate(&run::PluginEnv::from_process_env()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("sagemaker-mlflow-proxy: {e}");
            return ExitCode::from(2);
        }
    };
    // Worker 0: the main thread's own single-threaded runtime (see `workers`).
    let runtime = match run::main_runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sagemaker-mlflow-proxy: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(settings))
}

async fn run(settings: run::Settings) -> ExitCode {
    let telemetry = run::init_telemetry(
        settings.log_format,
        &settings.log_level,
        settings.otlp.as_ref(),
    );
    let workers = match Workers::start(settings.worker_threads, tokio::runtime::Handle::current()) {
        Ok(workers) => workers,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the worker threads (--worker-threads)");
            return ExitCode::FAILURE;
        }
    };
    let code = serve(settings, &telemetry, workers.handles()).await;
    // Off this thread: flushing the exporters needs this runtime free to send their last requests.
    let _ = tokio::task::spawn_blocking(move || {
        workers.stop();
        telemetry.shutdown();
    })
    .await;
    code
}

async fn serve(
    mut settings: run::Settings,
    telemetry: &Telemetry,
    workers: std::sync::Arc<WorkerHandles>,
) -> ExitCode {
    let listen = settings.listen;
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(%listen, error = %e, "cannot listen (--listen)");
            return ExitCode::FAILURE;
        }
    };
    let admin_listener = match settings.admin_listen {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => Some(listener),
            Err(e) => {
                tracing::error!(%addr, error = %e, "cannot listen (--admin-listen)");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    // With `--listen …:0` the port is the one the system gave: the proxy's own origins (browser
    // writes are accepted from them) name it.
    if let Ok(bound) = listener.local_addr() {
        settings.listen = bound;
    }
    if settings.auth.modes.contains(&run::AuthMode::None) && !listen.ip().is_loopback() {
        tracing::warn!(%listen, "inbound authentication is off (--auth none) and the proxy listens beyond loopback: anyone who reaches it acts with its AWS identity");
    }
    let app = match App::new(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    app.start_background();
    if let Some(meter) = telemetry.meter() {
        app.export_metrics(&meter);
    }
    let bound = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| listen.to_string());
    tracing::info!(
        listen = %bound,
        upstream = %app.settings.upstream.base_url(),
        mode = app.settings.upstream.signing.as_ref().map(|s| s.arn.kind.mode_name()).unwrap_or("self-hosted"),
        version = env!("CARGO_PKG_VERSION"),
        workers = workers.count(),
        "sagemaker-mlflow-proxy listening"
    );
    let tls = app.settings.tls.clone();
    // One signal stops both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    if let Some(admin) = admin_listener {
        let bound = admin
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::info!(admin_listen = %bound, "admin endpoints listening");
        tokio::spawn(run::serve_admin(
            app.clone(),
            admin,
            stopped(stop_rx.clone()),
        ));
    }
    run::serve(app, listener, tls, workers, stopped(stop_rx)).await;
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
