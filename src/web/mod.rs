//! Server-rendered pages: the minijinja environment (templates embedded in the binary, so a
//! release is one file), static assets, and error pages.

pub mod error;

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;

/// Every template, embedded at build time.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("error.html", include_str!("../../templates/error.html")),
];

pub const STYLESHEET: &str = include_str!("../../templates/static/sesame.css");

pub struct Templates {
    env: Environment<'static>,
}

#[derive(Debug, thiserror::Error)]
#[error("template error: {0}")]
pub struct TemplateError(#[from] minijinja::Error);

impl Templates {
    pub fn load() -> Result<Templates, TemplateError> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        Ok(Templates { env })
    }

    pub fn render(&self, name: &str, ctx: minijinja::Value) -> Result<Html<String>, TemplateError> {
        Ok(Html(self.env.get_template(name)?.render(ctx)?))
    }
}

/// `GET /static/sesame.css`
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_escape() {
        let t = Templates::load().unwrap();
        let html = t
            .render(
                "error.html",
                minijinja::context! { title => "Oops", message => "<script>x</script>" },
            )
            .unwrap()
            .0;
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>x"));
    }
}
