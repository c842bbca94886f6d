//! The user's sessions: ending one (on a lost phone, say) or every other one. Each ends as a
//! logout does: its refresh tokens go, and its apps hear of it by back-channel logout.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::Response;

use super::{Me, audit, done};
use crate::app::App;
use crate::flow::session;
use crate::i18n::Text;
use crate::oidc::logout;
use crate::store::sessions;
use crate::tenant::resolve::TenantCtx;
use crate::web::ClientInfo;
use crate::web::error::PageError;

/// `POST /t/{tenant}/account/sessions/end`: `sid` ends that session, `others=yes` every
/// session but this one. Ending this one signs the browser out.
pub async fn end(
    State(app): State<App>,
    tenant: TenantCtx,
    headers: HeaderMap,
    client: ClientInfo,
    body: Bytes,
) -> Result<Response, PageError> {
    let (form, me) = Me::form(&app, &tenant, &headers, &body).await?;
    let (t, uid, now) = (tenant.id().clone(), me.user.id.clone(), app.now());
    let live = app
        .store
        .run(move |c| sessions::list_for_user(c, &t, &uid, now))
        .await?;
    let others = form.get("others") == Some("yes");
    let chosen: Vec<_> = match (others, form.get("sid")) {
        (true, _) => live.iter().filter(|s| s.sid != me.session.sid).collect(),
        // Only the user's own sessions are in `live`: another user's sid matches nothing.
        (false, Some(sid)) => live.iter().filter(|s| s.sid == sid).collect(),
        (false, None) => return Err(PageError::Invalid(Text::new("error.choose_option"))),
    };
    for s in &chosen {
        logout::end(&app, &tenant, s).await?;
    }
    audit(&app, &tenant, &client, &me, "account.sessions_end").await?;
    if chosen.iter().any(|s| s.sid == me.session.sid) {
        let mut response = super::home(&tenant);
        let jar = session::jar(&app);
        response.headers_mut().append(
            header::SET_COOKIE,
            jar.clear(&jar.session_name(tenant.id())),
        );
        return Ok(response);
    }
    Ok(done(&tenant, if others { "sessions" } else { "session" }))
}
