//! The process-wide Prometheus recorder (installed once, shared by every server in the
//! process, as in tests), and the router of the optional metrics-only listener.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The handle that renders `/metrics`; `None` if another recorder was installed first.
pub(crate) fn handle() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let latency = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ];
            let batch = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full("trustbox_issuance_seconds".into()),
                    &latency,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(
                            "trustbox_store_commit_seconds".into(),
                        ),
                        &latency,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(
                            "trustbox_store_commit_batch_size".into(),
                        ),
                        &batch,
                    )
                });
            match builder {
                Ok(b) => b.install_recorder().ok(),
                Err(_) => None,
            }
        })
        .clone()
}

/// The router of the metrics listener (`metrics_listen`): `/metrics` and nothing else.
pub(crate) fn router(app: crate::api::App) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(crate::api::metrics))
        .fallback(|| async { crate::api::ApiError::not_found("route") })
        .with_state(app)
}
