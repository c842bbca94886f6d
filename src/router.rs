//! Assembles every module's routes and what every request passes through: the envelope (request
//! ids, tracing, limits, metrics, error rendering, security headers) around the tenant dispatch.
//!
//! A tenant's routes are one flat router, reached two ways: `/t/{tenant}/…` and the root of a host
//! the tenant lists. [`Dispatch`] resolves the tenant before routing (from the cache, without
//! awaiting, when it knows the tenant) and hands the router a request without the `/t/{tenant}`
//! prefix, so no route needs a middleware of its own to find its tenant.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::routing::get;
use tower::{Service, ServiceExt};

use crate::app::App;
use crate::tenant::resolve;
use crate::web::envelope::Envelope;
use crate::web::error::PageError;
use crate::{flow, notify, oidc, ops, selfservice, telemetry, trial, web};

/// The whole HTTP surface, as served (see `server::run`) and as tests call it.
pub type Http = Envelope<Dispatch>;

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

pub fn build(app: App) -> Http {
    let tenant = tenant_routes()
        .fallback(not_found)
        // Reports each route's template on the response, for the metrics in the envelope.
        .route_layer(telemetry::LabelRouteLayer)
        .with_state(app.clone());
    let by_host = {
        let (app, tenant) = (app.clone(), tenant.clone());
        tower::service_fn(move |req: Request| {
            let (app, tenant) = (app.clone(), tenant.clone());
            async move {
                match resolve::by_host(&app, req.headers(), req.uri()).await {
                    Ok(ctx) => {
                        let mut req = req;
                        req.extensions_mut().insert(ctx);
                        tenant.oneshot(req).await
                    }
                    Err(refused) => Ok(refused.into_response()),
                }
            }
        })
    };
    let root = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/static/sesame.css", get(web::stylesheet))
        .route("/static/password.js", get(web::password_script))
        .route_layer(telemetry::LabelRouteLayer)
        .fallback_service(by_host)
        .with_state(app.clone());
    Envelope::new(app.clone(), Dispatch { app, tenant, root })
}

/// Sends `/t/{tenant}/…` to the tenant's routes and everything else to the root router, whose
/// fallback resolves the tenant by host.
#[derive(Clone)]
pub struct Dispatch {
    app: App,
    tenant: Router,
    root: Router,
}

impl Service<Request> for Dispatch {
    type Response = Response;
    type Error = Infallible;
    type Future = Dispatched;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Dispatched {
        let Some((slug, tail)) = resolve::split_path(req.uri().path()) else {
            return Dispatched::Routed {
                future: self.root.call(req),
            };
        };
        let prefix = req.uri().path().len() - tail.len();
        if let Some(Some(ctx)) = self.app.cached_tenant_at_path(slug) {
            return match resolve::enter(req, prefix, ctx) {
                Ok(req) => Dispatched::Routed {
                    future: self.tenant.call(req),
                },
                Err(refused) => Dispatched::Resolving {
                    future: Box::pin(std::future::ready(Ok(refused.into_response()))),
                },
            };
        }
        // Not cached, or cached as unknown: resolve (and answer) by the store.
        let (app, tenant) = (self.app.clone(), self.tenant.clone());
        let slug = slug.to_owned();
        Dispatched::Resolving {
            future: Box::pin(async move {
                let entered = match resolve::by_path(&app, &slug).await {
                    Ok(ctx) => resolve::enter(req, prefix, ctx),
                    Err(refused) => Err(refused),
                };
                match entered {
                    Ok(req) => tenant.oneshot(req).await,
                    Err(refused) => Ok(refused.into_response()),
                }
            }),
        }
    }
}

type Boxed = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

pin_project_lite::pin_project! {
    /// A router's answer, or a boxed one where the tenant had to be looked up first.
    #[project = DispatchedProj]
    pub enum Dispatched {
        Routed { #[pin] future: RouteFuture<Infallible> },
        Resolving { future: Boxed },
    }
}

impl Future for Dispatched {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            DispatchedProj::Routed { future } => future.poll(cx),
            DispatchedProj::Resolving { future } => future.as_mut().poll(cx),
        }
    }
}

async fn not_found() -> PageError {
    PageError::NotFound
}
