//! Assembles every module's routes and what every request passes through: the envelope (request
//! ids, tracing, metrics, error rendering, security headers), body-size and time limits.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::Response;
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::app::App;
use crate::tenant::resolve;
use crate::web::error::PageError;
use crate::{flow, notify, oidc, ops, selfservice, telemetry, trial, web};

/// The extractors of the `from_fn` middleware wrapped around the router (named, since nothing
/// around a plain service infers them).
type Stateful = (State<App>, Request);

/// Routes that live under a tenant's issuer.
fn tenant_routes() -> Router<App> {
    Router::new()
        .merge(oidc::routes())
        .merge(flow::routes())
        .merge(notify::page::routes())
        .merge(selfservice::routes())
        .merge(trial::routes())
        .merge(crate::admin::api::routes())
        .merge(crate::saml::routes())
}

pub fn build(app: App) -> Router {
    let by_path = tenant_routes().layer(middleware::from_fn_with_state(
        app.clone(),
        resolve::by_path,
    ));
    let by_host = tenant_routes()
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            app.clone(),
            resolve::by_host,
        ))
        .layer(telemetry::LabelRouteLayer)
        .with_state(app.clone());
    let timeout = Duration::from_secs(app.config.http.request_timeout_secs.max(1));
    let max_body = app.config.http.max_body_bytes;

    let routes = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/static/sesame.css", get(web::stylesheet))
        .route("/static/password.js", get(web::password_script))
        .nest("/t/{tenant}", by_path)
        // Reports each route's template on the response, for the metrics outside the router.
        .route_layer(telemetry::LabelRouteLayer)
        .fallback_service(by_host)
        .with_state(app.clone());

    // Around the router as a whole: `Router::layer` would wrap each route separately, and every
    // `from_fn` layer then clones the boxed stack below it on every request; around the router a
    // clone is an `Arc` bump.
    let stack = ServiceBuilder::new()
        .layer(middleware::from_fn_with_state::<_, _, Stateful>(
            app.clone(),
            web::envelope::envelope,
        ))
        // The layers below change the body types; the envelope wants axum's `Body`.
        .map_response(|r: Response<_>| r.map(Body::new))
        // Refuses by Content-Length before any handler runs; DefaultBodyLimit covers streamed bodies.
        .layer(RequestBodyLimitLayer::new(max_body))
        .map_request(|r: Request<_>| r.map(Body::new))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .service(routes);
    Router::new().fallback_service(stack)
}

async fn not_found() -> PageError {
    PageError::NotFound
}
