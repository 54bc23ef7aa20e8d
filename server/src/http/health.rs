//! Liveness, readiness and Prometheus metrics.

use super::AppState;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;
use service::Services;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up and serving.
async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// The process can do its work: the database answers (503 otherwise, and while draining).
/// Parts it can do without (Redis) are listed under `degraded` when they do not answer.
async fn readyz(State(svc): State<Services>) -> impl IntoResponse {
    if svc.shutdown.is_triggered() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "draining" })),
        );
    }
    match svc.ready().await {
        Ok(degraded) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "degraded": degraded })),
        ),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            let part = reason.split(':').next().unwrap_or("dependency").to_string();
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "failing": part })),
            )
        }
    }
}

async fn metrics(State(svc): State<Services>) -> impl IntoResponse {
    let (size, idle) = svc.db.pool_stats();
    let idle = i64::try_from(idle).unwrap_or(i64::MAX);
    svc.metrics
        .db_connections
        .with_label_values(&["idle"])
        .set(idle);
    svc.metrics
        .db_connections
        .with_label_values(&["active"])
        .set(i64::from(size) - idle);
    let m = &svc.metrics;
    m.open_grants
        .set(i64::try_from(svc.credit.open_accounts()).unwrap_or(i64::MAX));
    m.usage_queue_depth
        .set(i64::try_from(svc.usage.depth()).unwrap_or(i64::MAX));
    let now = service::now_ms();
    m.circuit_open.reset();
    for ch in &svc.routing.snapshot().channels {
        m.circuit_open
            .with_label_values(&[ch.name.as_str()])
            .set(i64::from(ch.health.is_open(now)));
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        svc.metrics.render(),
    )
}
