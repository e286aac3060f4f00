//! `/health` (JSON), `/ready` and `/metrics` (Prometheus text).

use crate::health::Health;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

/// The routes of the deduplicator's HTTP server.
pub fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/health", get(health_json))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .with_state(health)
}

async fn health_json(State(health): State<Arc<Health>>) -> Response {
    Json(health.report()).into_response()
}

async fn ready(State(health): State<Arc<Health>>) -> Response {
    if health.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "production not reachable or not migrated\n",
        )
            .into_response()
    }
}

async fn metrics_text(State(health): State<Arc<Health>>) -> Response {
    health.refresh_lag_gauges();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        kd_core::telemetry::render_metrics(),
    )
        .into_response()
}
