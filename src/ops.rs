//! Operations endpoints: liveness, readiness and Prometheus metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::App;

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> Response {
    (no_store(), Json(json!({ "status": "ok" }))).into_response()
}

/// `GET /readyz`: the database answers; a load balancer should stop sending traffic otherwise.
pub async fn readyz(State(app): State<App>) -> Response {
    // Told to stop: the load balancer is to send its traffic elsewhere while in-flight
    // requests finish (`http.shutdown_delay_secs`).
    if app.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            no_store(),
            Json(json!({ "status": "draining" })),
        )
            .into_response();
    }
    // A pooled connection the database dropped (a restart, a failover) fails once and is
    // discarded; the second try takes a fresh one, so a database that is back reads as ready.
    let pinged = match app.store.ping().await {
        Err(_) => app.store.ping().await,
        ok => ok,
    };
    match pinged {
        Ok(()) => (
            no_store(),
            Json(json!({ "status": "ready", "database": "ok" })),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                no_store(),
                Json(json!({ "status": "unavailable", "database": "unreachable" })),
            )
                .into_response()
        }
    }
}

/// `GET /metrics`: OpenMetrics text.
pub async fn metrics(State(app): State<App>) -> Response {
    let body = app.metrics.render(app.store.pool_state());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn no_store() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}
