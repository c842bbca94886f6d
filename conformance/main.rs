//! Conformance and interoperability suites: a real `sesame` binary on a loopback port, driven by
//! independent implementations (the `openidconnect` crate, headless Chromium) rather than by
//! Sesame's own code. One test binary; each module is a protocol.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod oidc;
mod saml;
mod support;
