//! Conformance and interoperability suites: a real `sesame` binary on a loopback port, driven by
//! independent implementations (the `openidconnect` crate, `openid-client` from npm, pysaml2,
//! headless Chromium) rather than by Sesame's own code. One test binary; each module is a protocol.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod apps;
mod chromium;
/// The example apps, compiled in for the browser suites that drive them.
#[path = "../examples/crm/app.rs"]
mod crm;
#[path = "../examples/marketing/app.rs"]
mod marketing;
mod oidc;
mod saml;
mod support;
