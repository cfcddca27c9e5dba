"""Helpers for running a *stock* MLflow client in an environment that also has the sagemaker-mlflow plugin."""

from __future__ import annotations


def drop_sagemaker_plugin_header_provider() -> None:
    """The venv has the sagemaker-mlflow plugin (for the cross-check). A stock client has no plugin: stop its
    request-header provider, which assumes the tracking URI is an ARN and logs a warning on every other request."""
    try:
        from mlflow.tracking.request_header import registry as reg
    except ImportError:
        return
    r = reg._request_header_provider_registry
    r._registry = [p for p in r._registry if not type(p).__module__.startswith("sagemaker_mlflow")]
