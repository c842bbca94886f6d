//! Which tenant a request is for: the `{tenant}` path segment under `/t/`, or a host the tenant
//! lists. The resolved [`TenantCtx`] carries the issuer that matches how the tenant was reached.
//!
//! The router (`crate::router`) resolves once, before routing, and hands the tenant's routes a
//! request whose path no longer carries `/t/{tenant}`: one flat set of routes serves both ways of
//! reaching a tenant, with no per-route middleware.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderMap, Uri, header};

use super::{TenantId, normalize_host};
use crate::app::App;
use crate::store::tenants::Tenant;
use crate::web::error::PageError;

/// The tenant of the current request, and its issuer as reached (path or host).
#[derive(Debug, Clone)]
pub struct TenantCtx {
    pub tenant: Arc<Tenant>,
    /// Shared, not rebuilt per request: the path issuer is cached with the tenant.
    pub issuer: Arc<str>,
}

impl TenantCtx {
    pub fn id(&self) -> &TenantId {
        &self.tenant.id
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TenantCtx {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, PageError> {
        // Set by the router on every request it hands to the tenant routes.
        parts
            .extensions
            .get::<TenantCtx>()
            .cloned()
            .ok_or(PageError::NotFound)
    }
}

/// A path under `/t/`, split into the tenant's slug as written and the rest of the path (empty or
/// starting with `/`). `None` for paths outside `/t/`.
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/t/")?;
    Some(rest.split_at(rest.find('/').unwrap_or(rest.len())))
}

/// The request as the tenant's routes see it: its path from byte `prefix` on (what followed
/// `/t/{tenant}`; see [`split_path`]), the query kept, and the tenant in its extensions.
pub fn enter(mut req: Request, prefix: usize, ctx: TenantCtx) -> Result<Request, PageError> {
    let path = match req.uri().path().get(prefix..) {
        None | Some("") => "/",
        Some(tail) => tail,
    };
    let rewritten = match req.uri().query() {
        Some(query) => PathAndQuery::try_from(format!("{path}?{query}")),
        None => PathAndQuery::try_from(path),
    };
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    parts.path_and_query = Some(rewritten.map_err(|_| PageError::NotFound)?);
    *req.uri_mut() = Uri::from_parts(parts).map_err(|_| PageError::NotFound)?;
    req.extensions_mut().insert(ctx);
    Ok(req)
}

/// Resolves the tenant of a `/t/{slug}` path by the store (the router's cache missed).
pub async fn by_path(app: &App, slug: &str) -> Result<TenantCtx, PageError> {
    let Some(id) = TenantId::parse(slug) else {
        return Err(PageError::UnknownTenant(printable(slug)));
    };
    app.tenant_at_path(&id)
        .await?
        .ok_or_else(|| PageError::UnknownTenant(id.to_string()))
}

/// Resolves the tenant whose listed host the request came to (`acme.example.com/jwks`).
pub async fn by_host(app: &App, headers: &HeaderMap, uri: &Uri) -> Result<TenantCtx, PageError> {
    let host = request_host(headers, uri).ok_or(PageError::NotFound)?;
    let tenant = app
        .tenant_by_host(&host)
        .await?
        .ok_or(PageError::NotFound)?;
    Ok(TenantCtx {
        tenant,
        issuer: host_issuer(&app.config.public_url, &host).into(),
    })
}

fn request_host(headers: &HeaderMap, uri: &Uri) -> Option<String> {
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

    #[test]
    fn tenant_paths_split_at_the_slug() {
        assert_eq!(split_path("/t/acme/jwks"), Some(("acme", "/jwks")));
        assert_eq!(split_path("/t/acme"), Some(("acme", "")));
        assert_eq!(split_path("/t//jwks"), Some(("", "/jwks")));
        assert_eq!(split_path("/tx/acme/jwks"), None);
        assert_eq!(split_path("/jwks"), None);
    }

    #[test]
    fn entering_a_tenant_strips_the_prefix_and_keeps_the_query() {
        let tenant = Arc::new(crate::store::tenants::Tenant::for_tests("acme"));
        let ctx = TenantCtx {
            tenant,
            issuer: "https://id.example.com/t/acme".into(),
        };
        let req = Request::builder()
            .uri("https://id.example.com/t/acme/authorize?client_id=a&state=%2Fx")
            .body(axum::body::Body::empty())
            .unwrap();
        let (slug, _) = split_path(req.uri().path()).unwrap();
        assert_eq!(slug, "acme");
        let req = enter(req, "/t/acme".len(), ctx).unwrap();
        assert_eq!(req.uri().path(), "/authorize");
        assert_eq!(req.uri().query(), Some("client_id=a&state=%2Fx"));
        assert_eq!(req.uri().host(), Some("id.example.com"));
        assert_eq!(
            req.extensions().get::<TenantCtx>().unwrap().issuer.as_ref(),
            "https://id.example.com/t/acme"
        );
        let bare = Request::builder()
            .uri("/t/acme")
            .body(axum::body::Body::empty())
            .unwrap();
        let ctx = req.extensions().get::<TenantCtx>().unwrap().clone();
        assert_eq!(enter(bare, "/t/acme".len(), ctx).unwrap().uri().path(), "/");
    }
}
