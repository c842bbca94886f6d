//! `PageError`: the error of every non-protocol surface (pages, discovery, operations). A handler
//! returns it; [`render`] turns it into an HTML page or JSON, whichever the client accepts, with the
//! request id to quote, and logs the internal cause once. Nothing internal reaches the body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::App;
use crate::crypto::keys::KeyError;
use crate::i18n::{Locale, Text};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("There is no tenant '{0}' on this server. Check the address you were given.")]
    UnknownTenant(String),
    #[error("The page you asked for does not exist.")]
    NotFound,
    #[error("Sesame cannot reach its database right now. Please try again in a moment.")]
    Unavailable(String),
    #[error("Something went wrong on our side. Please try again.")]
    Internal(String),
    /// A protocol request that cannot be processed; the detail is for the app's developers
    /// (in English), shown under a sentence in the reader's language.
    #[error("{0}")]
    BadRequest(String),
    /// A request from a page that cannot be processed, with a message from the catalogs.
    #[error("{}", .0.key)]
    Invalid(Text),
    /// A form without a valid CSRF token, or an action the user may not take, with a message
    /// from the catalogs.
    #[error("{}", .0.key)]
    Refused(Text),
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(why) => PageError::Unavailable(why),
            other => PageError::Internal(other.to_string()),
        }
    }
}

impl From<KeyError> for PageError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(s) => s.into(),
            other => PageError::Internal(other.to_string()),
        }
    }
}

impl From<crate::web::TemplateError> for PageError {
    fn from(e: crate::web::TemplateError) -> Self {
        PageError::Internal(e.to_string())
    }
}

/// What [`render`] needs, carried in the response extensions.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub code: &'static str,
    pub title: &'static str,
    pub message: String,
    /// The message from the catalogs, when there is one; pages show it in the reader's language.
    pub text: Option<Text>,
    /// Logged, never shown.
    pub cause: Option<String>,
}

impl PageError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str, Option<String>) {
        match self {
            PageError::UnknownTenant(_) => (
                StatusCode::NOT_FOUND,
                "tenant_not_found",
                "Unknown tenant",
                None,
            ),
            PageError::NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found", None),
            PageError::Unavailable(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "Temporarily unavailable",
                Some(why.clone()),
            ),
            PageError::BadRequest(_) | PageError::Invalid(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request cannot be processed",
                None,
            ),
            PageError::Refused(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed", None),
            PageError::Internal(why) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "Something went wrong",
                Some(why.clone()),
            ),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, code, title, cause) = self.parts();
        let mut response = status.into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        let text = match &self {
            PageError::Refused(text) | PageError::Invalid(text) => Some(text.clone()),
            PageError::BadRequest(detail) => {
                Some(Text::new("error.invalid_request_detail").with("detail", detail.clone()))
            }
            PageError::UnknownTenant(name) => {
                Some(Text::new("error.tenant_not_found").with("tenant", name.clone()))
            }
            _ => None,
        };
        response.extensions_mut().insert(ErrorInfo {
            code,
            title,
            message: self.to_string(),
            text,
            cause,
        });
        response
    }
}

/// The error page's title and sentence in `locale`: from the catalogs where the error has a
/// text there, else the error's own message (a request's details, in English).
fn page_texts(app: &App, locale: Locale, info: &ErrorInfo) -> (String, minijinja::Value) {
    let catalogs = &app.templates.catalogs;
    let code = if info
        .text
        .as_ref()
        .is_some_and(|t| t.key == "error.too_large")
    {
        "too_large"
    } else {
        info.code
    };
    let title = catalogs.plain(locale, &format!("error.{code}_title"), &[]);
    let title = if title.starts_with("error.") {
        info.title.to_string()
    } else {
        title
    };
    let message = match &info.text {
        Some(text) => text.render(catalogs, locale),
        None => {
            let key = format!("error.{code}");
            match catalogs.text(locale, &key) {
                found if found != key => minijinja::Value::from_safe_string(found.to_string()),
                _ => minijinja::Value::from(info.message.clone()),
            }
        }
    };
    (title, message)
}

/// Renders an [`ErrorInfo`] response: JSON for API clients, a page for browsers. Any other
/// response passes unchanged. `html` is the reader's language when the client wants a page.
pub fn render(
    app: &App,
    html: Option<Locale>,
    request_id: &str,
    mut response: Response,
) -> Response {
    let info = match response.extensions_mut().remove::<ErrorInfo>() {
        Some(info) => info,
        // The body-limit layer refuses by Content-Length before any handler runs, with a bare
        // 413; give it the same shape as every other error (`invalid_request` for OAuth clients).
        None if response.status() == StatusCode::PAYLOAD_TOO_LARGE
            && response
                .headers()
                .get(header::CONTENT_TYPE)
                .is_none_or(|ct| !ct.to_str().unwrap_or("").starts_with("application/json")) =>
        {
            ErrorInfo {
                code: "invalid_request",
                title: "Request too large",
                message: "The request body is too large.".into(),
                text: Some(Text::new("error.too_large")),
                cause: None,
            }
        }
        // The framework's own refusals (a path segment that is not UTF-8, say) are plain text
        // naming its internals (the route's variables): give them the shape of every other error.
        None if matches!(
            response.status(),
            StatusCode::BAD_REQUEST
                | StatusCode::UNSUPPORTED_MEDIA_TYPE
                | StatusCode::UNPROCESSABLE_ENTITY
        ) && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|ct| ct.as_bytes().starts_with(b"text/plain")) =>
        {
            ErrorInfo {
                code: "invalid_request",
                title: "The request cannot be processed",
                message: "The request's address or body cannot be read.".into(),
                text: Some(Text::new("error.unreadable_request")),
                cause: None,
            }
        }
        None => return response,
    };
    let status = response.status();
    match &info.cause {
        Some(cause) if status.is_server_error() => {
            tracing::error!(%status, code = info.code, cause = %cause, request_id = %request_id, "request failed")
        }
        _ => {
            tracing::debug!(%status, code = info.code, request_id = %request_id, "request refused")
        }
    }
    let headers = std::mem::take(response.headers_mut());
    let mut rendered = if let Some(locale) = html {
        let (title, message) = page_texts(app, locale, &info);
        let ctx =
            minijinja::context! { title => title, message => message, request_id => request_id };
        match app.templates.render_in("error.html", locale, ctx) {
            Ok(page) => (status, page).into_response(),
            Err(_) => (status, info.message.clone()).into_response(),
        }
    } else {
        // A page's refusal carries only its catalog key as the message: programs (and people
        // reading a response by hand) get the English sentence.
        let description = match &info.text {
            Some(text) if text.key == info.message => {
                let args: Vec<(&str, &str)> =
                    text.args.iter().map(|(n, v)| (*n, v.as_str())).collect();
                app.templates.catalogs.plain(Locale::En, text.key, &args)
            }
            _ => info.message.clone(),
        };
        let body = json!({ "error": info.code, "error_description": description, "request_id": request_id });
        (status, axum::Json(body)).into_response()
    };
    // Keep what the handler set (Retry-After, Set-Cookie, ...), but never the framing of the
    // body it no longer sends: a copied `content-length: 0` would truncate the new body.
    for (name, value) in headers.iter() {
        if name == header::CONTENT_LENGTH || name == header::CONTENT_TYPE {
            continue;
        }
        rendered
            .headers_mut()
            .entry(name.clone())
            .or_insert(value.clone());
    }
    rendered
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    rendered
}
