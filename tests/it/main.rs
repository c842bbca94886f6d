//! The one integration test binary. `support` gives the harness; each module is a scenario area.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod account;
mod admin_api;
mod agreement;
mod alerts;
mod browser;
pub(crate) mod cli;
mod client_auth;
mod codes;
mod cors;
mod http;
mod languages;
mod lockout;
mod logout;
mod notify;
mod oidc_cases;
mod oidc_flow;
mod outage;
mod policy;
mod remember;
mod reset;
mod saml;
mod saml_context;
mod saml_sso;
mod sessions;
mod smtp_sink;
mod store;
mod store_group;
mod store_quick;
mod token;
mod trial;
