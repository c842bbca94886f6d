//! `GET /t/{tenant}/dev/outbox`: the development outbox as a page, so someone trying the demo
//! can read the code they asked for. Served only while a channel's driver is `outbox`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use minijinja::context;

use crate::app::App;
use crate::flow::language;
use crate::store::outbox;
use crate::tenant::resolve::TenantCtx;
use crate::web;
use crate::web::error::PageError;

/// Messages shown.
const SHOWN: i64 = 20;

pub fn routes() -> Router<App> {
    Router::new().route("/dev/outbox", get(outbox_page))
}

async fn outbox_page(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if !app.notifier.uses_outbox() {
        return Err(PageError::NotFound);
    }
    let t = tenant.id().clone();
    let messages = app
        .store
        .run(move |c| outbox::list(c, Some(&t), SHOWN))
        .await?;
    let messages: Vec<_> = messages
        .into_iter()
        .map(|m| {
            let at = time::OffsetDateTime::from_unix_timestamp(m.created_at)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
            context! {
                channel => m.channel,
                destination => m.destination,
                subject => m.subject,
                body => m.body,
                at => at,
            }
        })
        .collect();
    let locale = language::locale(&tenant, &headers, &[]);
    let html = app.templates.render_in(
        "outbox.html",
        locale,
        context! { tenant_name => &tenant.tenant.display_name, messages => messages },
    )?;
    Ok(web::page(StatusCode::OK, html, None))
}
