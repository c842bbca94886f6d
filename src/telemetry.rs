//! Structured logs (`tracing`, text or JSON) and Prometheus metrics: requests by route and status,
//! their latency, and the database pool.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{OnceLock, RwLock};
use std::task::{Context, Poll, ready};

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tower::{Layer, Service};

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber; `SESAME_LOG` (a `tracing` filter) wins over `log.level`.
pub fn init_logging(config: &LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("SESAME_LOG")
        .ok()
        .filter(|f| !f.trim().is_empty())
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_new(&config.level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    // Colours only for a person at a terminal: in a file or a pipe they are escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Label values are `&'static str` (methods are few, route templates interned), so counting a
/// request allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: &'static str,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    pool_connections: Gauge,
    pool_idle: Gauge,
    pool_max: Gauge,
    keyring_builds: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sesame");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ])
        });
        let pool_connections = Gauge::default();
        let pool_idle = Gauge::default();
        let pool_max = Gauge::default();
        let keyring_builds = Counter::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Open database connections",
            pool_connections.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Idle database connections",
            pool_idle.clone(),
        );
        registry.register(
            "db_pool_max_connections",
            "Configured pool size",
            pool_max.clone(),
        );
        registry.register(
            "keyring_builds",
            "Tenant keyrings decrypted and parsed: a first use, or a key rotated or retired",
            keyring_builds.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            pool_connections,
            pool_idle,
            pool_max,
            keyring_builds,
        }
    }
}

impl Metrics {
    pub fn observe(&self, method: &'static str, route: &'static str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { method, route })
            .observe(seconds);
    }

    pub fn keyring_built(&self) {
        self.keyring_builds.inc();
    }

    /// How many keyrings this node has built since it started.
    pub fn keyring_builds(&self) -> u64 {
        self.keyring_builds.get()
    }

    /// OpenMetrics text with the pool gauges read at scrape time.
    pub fn render(&self, pool: crate::store::PoolState) -> String {
        self.pool_connections.set(pool.connections.into());
        self.pool_idle.set(pool.idle.into());
        self.pool_max.set(pool.max.into());
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// A method as a label: the standard ones by name, anything else as `other`, so made-up methods
/// cannot grow the label set.
pub fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::HEAD,
        Method::OPTIONS,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::CONNECT,
        Method::TRACE,
    ];
    const NAMES: [&str; 9] = [
        "GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "CONNECT", "TRACE",
    ];
    KNOWN
        .iter()
        .position(|m| m == method)
        .map_or("other", |i| NAMES[i])
}

/// A route template as a `&'static str`. Templates are the router's own (`/t/{tenant}/jwks`),
/// never raw paths, so the set is bounded by the routes declared and each is leaked once.
fn intern(template: &str) -> &'static str {
    static SEEN: OnceLock<RwLock<HashSet<&'static str>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(known) = seen.read().ok().and_then(|s| s.get(template).copied()) {
        return known;
    }
    let Ok(mut seen) = seen.write() else {
        return "unmatched";
    };
    if let Some(known) = seen.get(template) {
        return known;
    }
    let leaked: &'static str = Box::leak(template.to_owned().into_boxed_str());
    seen.insert(leaked);
    leaked
}

/// The route template a nested or fallback router matched, carried out to the envelope on the
/// response (outside the router, the request's own match is not visible).
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

/// Reports the matched route template on the response, as [`RouteLabel`]. A plain service rather
/// than a `from_fn` middleware: it runs for every request and costs no allocation.
#[derive(Debug, Clone, Copy, Default)]
pub struct LabelRouteLayer;

impl<S> Layer<S> for LabelRouteLayer {
    type Service = LabelRoute<S>;

    fn layer(&self, inner: S) -> LabelRoute<S> {
        LabelRoute { inner }
    }
}

#[derive(Debug, Clone)]
pub struct LabelRoute<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for LabelRoute<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Labelled<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let label = req
            .extensions()
            .get::<MatchedPath>()
            .map(|p| RouteLabel(intern(p.as_str())));
        Labelled {
            inner: self.inner.call(req),
            label,
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner response with its [`RouteLabel`].
    pub struct Labelled<F> {
        #[pin]
        inner: F,
        label: Option<RouteLabel>,
    }
}

impl<F, E> Future for Labelled<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some(label) = this.label.take() {
            response.extensions_mut().insert(label);
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        let a = intern("/t/{tenant}/jwks");
        let b = intern(&String::from("/t/{tenant}/jwks"));
        assert!(std::ptr::eq(a, b), "one leaked copy per template");
    }
}
