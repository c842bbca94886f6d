//! Sesame: an identity provider and SSO broker (OpenID Connect, OAuth 2, SAML 2.0) for a
//! company's apps. See `docs/architecture.md` for how the modules fit together.

pub mod account;
pub mod admin;
pub mod app;
pub mod bootstrap;
pub mod cli;
pub mod clock;
pub mod codes;
pub mod config;
pub mod crypto;
pub mod data_dir;
pub mod demo;
pub mod flow;
pub mod i18n;
pub mod limits;
pub mod notify;
pub mod oidc;
pub mod ops;
pub mod outbound;
pub mod router;
pub mod saml;
pub mod selfservice;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tenant;
pub mod trial;
pub mod web;
