//! Assembles every module's routes and the middleware every response passes through: request
//! ids, tracing, metrics, error rendering, security headers, body-size and time limits.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::app::App;
use crate::tenant::resolve;
use crate::web::error::PageError;
use crate::{flow, oidc, ops, telemetry, web};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The extractors of the `from_fn` middleware wrapped around the router (named, since nothing
/// around a plain service infers them).
type Stateful = (State<App>, Request);

/// Routes that live under a tenant's issuer.
fn tenant_routes() -> Router<App> {
    Router::new().merge(oidc::routes()).merge(flow::routes())
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
        .layer(middleware::from_fn(telemetry::label_route))
        .with_state(app.clone());
    let timeout = Duration::from_secs(app.config.http.request_timeout_secs.max(1));
    let max_body = app.config.http.max_body_bytes;

    let routes = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/static/sesame.css", get(web::stylesheet))
        .nest("/t/{tenant}", by_path)
        // Reports each route's template on the response, for the metrics outside the router.
        .route_layer(middleware::from_fn(telemetry::label_route))
        .fallback_service(by_host)
        .with_state(app.clone());

    // The stack every response passes, around the router as a whole. `Router::layer` would wrap
    // each route separately, and every `from_fn` layer then clones the boxed stack below it on
    // every request; around the router a clone is an `Arc` bump.
    let stack = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                // One access-log line per request at info; failures are logged by the error renderer.
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Millis)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(middleware::from_fn_with_state::<_, _, Stateful>(app.clone(), security_headers))
        .layer(middleware::from_fn_with_state::<_, _, Stateful>(app.clone(), web::error::render))
        // The layers below change the body types; the middleware above wants axum's `Body`.
        .map_response(|r: Response<_>| r.map(Body::new))
        // Refuses by Content-Length before any handler runs; DefaultBodyLimit covers streamed bodies.
        .layer(RequestBodyLimitLayer::new(max_body))
        .map_request(|r: Request<_>| r.map(Body::new))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state::<_, _, Stateful>(app.clone(), telemetry::track))
        .service(routes);
    Router::new().fallback_service(stack)
}

async fn not_found() -> PageError {
    PageError::NotFound
}

/// Headers every response carries; a handler that sets its own CSP (for example a form_post
/// page) keeps it.
async fn security_headers(State(app): State<App>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if app.config.https() {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    if is_html {
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
            ));
    }
    response
}
