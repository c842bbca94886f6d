//! Which tenant a request is for: the `{tenant}` path segment under `/t/`, or a host the tenant
//! lists. The resolved [`TenantCtx`] carries the issuer that matches how the tenant was reached.

use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{TenantId, normalize_host};
use crate::app::App;
use crate::store::tenants::Tenant;
use crate::web::error::PageError;

/// The tenant of the current request, and its issuer as reached (path or host).
#[derive(Debug, Clone)]
pub struct TenantCtx {
    pub tenant: Arc<Tenant>,
    pub issuer: String,
}

impl TenantCtx {
    pub fn id(&self) -> &TenantId {
        &self.tenant.id
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TenantCtx {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, PageError> {
        // Only reachable on routes mounted behind `by_path` or `by_host`.
        parts
            .extensions
            .get::<TenantCtx>()
            .cloned()
            .ok_or(PageError::NotFound)
    }
}

/// Middleware for routes under `/t/{tenant}`.
pub async fn by_path(
    State(app): State<App>,
    params: RawPathParams,
    mut req: Request,
    next: Next,
) -> Response {
    let raw = params
        .iter()
        .find(|(k, _)| *k == "tenant")
        .map_or("", |(_, v)| v);
    let Some(id) = TenantId::parse(raw) else {
        return PageError::UnknownTenant(printable(raw)).into_response();
    };
    match app.tenant(&id).await {
        Ok(Some(tenant)) => {
            let issuer = app.issuer(&id);
            req.extensions_mut().insert(TenantCtx { tenant, issuer });
            next.run(req).await
        }
        Ok(None) => PageError::UnknownTenant(id.to_string()).into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

/// Middleware for the same routes at the root of a host a tenant lists (`acme.example.com/jwks`).
pub async fn by_host(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let Some(host) = request_host(req.headers(), req.uri()) else {
        return PageError::NotFound.into_response();
    };
    match app.tenant_by_host(&host).await {
        Ok(Some(tenant)) => {
            let issuer = host_issuer(&app.config.public_url, &host);
            req.extensions_mut().insert(TenantCtx { tenant, issuer });
            next.run(req).await
        }
        Ok(None) => PageError::NotFound.into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

fn request_host(headers: &HeaderMap, uri: &axum::http::Uri) -> Option<String> {
    let raw = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.host())?;
    normalize_host(raw)
}

/// `{scheme}://{host}` with the scheme and any explicit port of `public_url`; the Host header's own
/// port is ignored so a client cannot choose the issuer.
pub fn host_issuer(public_url: &str, host: &str) -> String {
    match url::Url::parse(public_url) {
        Ok(u) => match u.port() {
            Some(port) => format!("{}://{host}:{port}", u.scheme()),
            None => format!("{}://{host}", u.scheme()),
        },
        Err(_) => format!("https://{host}"),
    }
}

/// Echo at most a short, harmless form of what the client sent.
fn printable(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_issuer_keeps_public_scheme_and_port() {
        assert_eq!(
            host_issuer("https://id.example.com", "acme.example.com"),
            "https://acme.example.com"
        );
        assert_eq!(
            host_issuer("http://127.0.0.1:8080", "acme.localhost"),
            "http://acme.localhost:8080"
        );
    }
}
