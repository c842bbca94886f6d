//! Serving the router over HTTP or HTTPS (rustls) with graceful shutdown: on SIGTERM or SIGINT
//! the listener closes and in-flight requests get `http.shutdown_grace_secs` to finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::Context;
use axum::ServiceExt;
use axum::extract::Request;
use axum::http::{StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use tower::Service;

/// Loads the PEM certificate chain and key; errors name the config key.
pub async fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<RustlsConfig> {
    // One process-wide provider; installing twice is harmless (the second call is refused).
    let _ = rustls::crypto::ring::default_provider().install_default();
    RustlsConfig::from_pem_file(cert, key).await.with_context(|| {
        format!(
            "config keys `tls.cert` / `tls.key`: cannot load {} / {} as a PEM certificate chain and private key",
            cert.display(),
            key.display()
        )
    })
}

/// Serves `service` (the router, see `router::build`) until `shutdown` completes, then drains for
/// at most `grace`.
pub async fn run<S>(
    listener: std::net::TcpListener,
    service: S,
    tls: Option<RustlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> anyhow::Result<()>
where
    S: Service<Request<hyper::body::Incoming>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    listener.set_nonblocking(true)?;
    let handle: Handle<SocketAddr> = Handle::new();
    let on_signal = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: finishing in-flight requests"
        );
        on_signal.graceful_shutdown(Some(grace));
    });
    let service = RequireHost(service).into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        Some(config) => {
            axum_server::from_tcp_rustls(listener, config)?
                .handle(handle)
                .serve(service)
                .await?
        }
        None => {
            axum_server::from_tcp(listener)?
                .handle(handle)
                .serve(service)
                .await?
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// RFC 9112 §3.2: an HTTP/1.1 request without a Host header is refused with 400 (HTTP/2 carries
/// the authority in the request's URI instead). A transport rule, so it sits here and not in the
/// router, which in-process callers reach without a connection.
#[derive(Clone)]
struct RequireHost<S>(S);

impl<S, B> Service<Request<B>> for RequireHost<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = HostChecked<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if req.version() == Version::HTTP_11 && !req.headers().contains_key(header::HOST) {
            let body = serde_json::json!({
                "error": "invalid_request",
                "error_description": "an HTTP/1.1 request must carry a Host header",
            });
            let refusal = (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
            return HostChecked::Refused {
                refusal: Some(refusal),
            };
        }
        HostChecked::Served {
            future: self.0.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    /// The router's answer, or the refusal of a request without Host.
    #[project = HostCheckedProj]
    enum HostChecked<F> {
        Served { #[pin] future: F },
        Refused { refusal: Option<Response> },
    }
}

impl<F> Future for HostChecked<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.project() {
            HostCheckedProj::Served { future } => future.poll(cx),
            HostCheckedProj::Refused { refusal } => Poll::Ready(Ok(refusal
                .take()
                .unwrap_or_else(|| StatusCode::BAD_REQUEST.into_response()))),
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
