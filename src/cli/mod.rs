//! The `sesame` command. Each subcommand opens the database through [`crate::bootstrap`], so every
//! command sees migrated storage, a checked master key and the `default` tenant.

mod admin;
mod serve;
mod sp;
mod trial;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "sesame",
    version,
    about = "Sesame: identity provider and SSO broker (OIDC, OAuth 2, SAML 2.0)"
)]
pub struct Cli {
    /// TOML configuration file (see docs/configuration.md).
    #[arg(long, global = true, env = "SESAME_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Inspect configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage users of a tenant.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage OIDC clients of a tenant.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage signing keys of a tenant.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage SAML service providers of a tenant.
    #[command(subcommand)]
    Sp(SpCommand),
    /// Show the tenant's audit log, newest first.
    Audit {
        #[command(flatten)]
        tenant: TenantArg,
        /// How many events.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Messages the `outbox` email/SMS driver kept instead of sending (development, the demo).
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Apply a declarative file of tenants, departments, apps, roles, users and clients.
    Import {
        /// The TOML file (see examples/demo.toml).
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// The newest messages, newest first.
    List {
        /// Only this tenant's messages.
        #[arg(long, short)]
        tenant: Option<String>,
        /// How many messages.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Seed the `demo` tenant from examples/demo.toml and print the demo user's password.
    #[arg(long)]
    pub demo: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration (file plus environment) and print the effective values.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant with its signing keys.
    Add {
        /// Slug used in URLs and issuers: a-z, 0-9, '-'.
        id: String,
        /// Display name (defaults to the id).
        #[arg(long)]
        name: Option<String>,
        /// A host that routes to this tenant (repeatable).
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
    /// List tenants with their issuers.
    List,
    /// List pending free-trial applications.
    Applications,
    /// Approve a free-trial application: create its tenant (in trial), its keys and the
    /// contact's account, and email the contact a link to set a password.
    Approve {
        /// The application's id (see `sesame tenant applications`).
        id: String,
        /// The new tenant's id; made from the company's name when left out.
        #[arg(long)]
        tenant_id: Option<String>,
        /// Days the trial lasts.
        #[arg(long, default_value_t = crate::trial::DEFAULT_DAYS)]
        days: i64,
    },
}

#[derive(Debug, Args)]
pub struct TenantArg {
    /// The tenant to act on.
    #[arg(long, short, default_value = "default")]
    pub tenant: String,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. The password is read from stdin with --password-stdin, else generated and
    /// printed once.
    Add {
        #[command(flatten)]
        tenant: TenantArg,
        /// Username (letters, digits, . _ -; starting with a letter).
        username: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// Mobile number with country code, e.g. +8613800138000.
        #[arg(long)]
        phone: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        department: Option<String>,
        #[arg(long)]
        password_stdin: bool,
        /// Do not ask the user to change the password at first sign-in.
        #[arg(long)]
        permanent_password: bool,
    },
    /// List users.
    List {
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Set a user's password (stdin with --password-stdin, else generated and printed once); the
    /// user is signed out everywhere and their tokens are revoked.
    Passwd {
        #[command(flatten)]
        tenant: TenantArg,
        /// Username, email, mobile number or user id.
        user: String,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        permanent_password: bool,
    },
    /// Disable a user: they can no longer sign in.
    Disable {
        #[command(flatten)]
        tenant: TenantArg,
        user: String,
    },
    /// Re-enable a disabled user.
    Enable {
        #[command(flatten)]
        tenant: TenantArg,
        user: String,
    },
    /// Clear a lockout after failed sign-ins.
    Unlock {
        #[command(flatten)]
        tenant: TenantArg,
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; a confidential client's secret is printed once and only its hash kept.
    Add {
        #[command(flatten)]
        tenant: TenantArg,
        client_id: String,
        #[arg(long)]
        name: Option<String>,
        /// Redirect URI (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Post-logout redirect URI (repeatable).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Grant type (repeatable; default authorization_code and refresh_token).
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// A public client (mobile or single-page app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// client_secret_basic (default), client_secret_post, private_key_jwt or none.
        #[arg(long)]
        auth_method: Option<String>,
        /// The app this client belongs to.
        #[arg(long)]
        app: Option<String>,
        /// web (default) or mobile: which access scope of the app applies.
        #[arg(long)]
        channel: Option<String>,
        /// Skip the consent screen (the organisation's own apps).
        #[arg(long)]
        first_party: bool,
    },
    /// List clients.
    List {
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Remove a client.
    Remove {
        #[command(flatten)]
        tenant: TenantArg,
        client_id: String,
    },
}

#[derive(Debug, Subcommand)]
// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum SpCommand {
    /// Register a SAML service provider, or replace its registration: from its metadata file,
    /// from fields, or both (fields override the metadata).
    Add {
        #[command(flatten)]
        tenant: TenantArg,
        /// A short id: 1-64 letters, digits, '-' or '_' (used in /saml/launch/{id}).
        id: String,
        /// The SP's metadata, an XML file.
        #[arg(long, conflicts_with = "metadata_url")]
        metadata: Option<PathBuf>,
        /// The SP's metadata, fetched once from this https URL (at most 1 MiB, within 10 s, no
        /// redirects; public addresses only unless the tenant's settings have
        /// private_app_addresses = true).
        #[arg(long)]
        metadata_url: Option<String>,
        #[arg(long)]
        entity_id: Option<String>,
        /// An assertion consumer service URL (HTTP-POST binding; repeatable, the first is the
        /// default).
        #[arg(long = "acs")]
        acs: Vec<String>,
        /// The SP's single logout URL (HTTP-Redirect binding).
        #[arg(long)]
        slo: Option<String>,
        /// The certificate the SP signs its requests with (PEM or DER file).
        #[arg(long)]
        signing_cert: Option<PathBuf>,
        /// Encrypt assertions for the SP with this certificate (PEM or DER file).
        #[arg(long)]
        encryption_cert: Option<PathBuf>,
        #[arg(long)]
        name: Option<String>,
        /// The app whose access scope decides who may sign in to the SP.
        #[arg(long)]
        app: Option<String>,
        /// The NameID: email (default), username, persistent or transient.
        #[arg(long)]
        name_id: Option<String>,
        /// An attribute to send, NAME=SOURCE (repeatable); SOURCE is one of email, username,
        /// display_name, phone, employee_no, department, roles, user_id.
        #[arg(long = "attribute")]
        attributes: Vec<String>,
        /// Refuse AuthnRequests not signed with the SP's signing certificate.
        #[arg(long)]
        require_signed_requests: bool,
        /// Allow IdP-initiated sign-in (the "More Apps" tile) to this SP.
        #[arg(long)]
        idp_initiated: bool,
        /// What to sign: assertion (default), response or both.
        #[arg(long)]
        sign: Option<String>,
        /// Assertion encryption: aes256-gcm (default), aes128-gcm or aes128-cbc.
        #[arg(long)]
        encryption: Option<String>,
        /// How long an assertion is valid, in seconds (30 to 3600; default 300).
        #[arg(long)]
        assertion_lifetime: Option<i64>,
    },
    /// List service providers.
    List {
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Remove a service provider.
    Remove {
        #[command(flatten)]
        tenant: TenantArg,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys and their states.
    List {
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Activate the published next key, retire the active one and publish a new next key.
    Rotate {
        #[command(flatten)]
        tenant: TenantArg,
        /// Only this kind: RS256, PS256, ES256, EdDSA, or SAML (the SAML signing certificate).
        /// Without it, every JWS algorithm; the SAML key only when named, since SPs that do not
        /// refresh the IdP's metadata must be given the new certificate by hand.
        #[arg(long, value_parser = key_kind)]
        alg: Option<crate::crypto::keys::KeyKind>,
        /// Rotate even if the next key was published too recently for every relying party to
        /// have fetched it (use when the active key is compromised).
        #[arg(long)]
        force: bool,
    },
}

/// `--alg` as clap checks it, so a wrong kind is a usage error (exit status 2) like any other.
fn key_kind(s: &str) -> Result<crate::crypto::keys::KeyKind, String> {
    s.parse().map_err(|_: crate::crypto::CryptoError| {
        "Sesame signs with RS256, PS256, ES256, EdDSA or SAML".to_string()
    })
}

/// Runs the parsed command; the error is printed by `main` as one line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    let clock: SharedClock = std::sync::Arc::new(SystemClock);
    match cli.command {
        Command::Serve(args) => serve::serve(config, clock, args).await,
        Command::Config(ConfigCommand::Check) => {
            // What `serve` would load, loaded: a file that exists but is no PEM fails here.
            if let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) {
                crate::server::tls_config(cert, key).await?;
            }
            let shown = config.redacted();
            println!("configuration is valid\n");
            println!("{}", toml::to_string_pretty(&shown)?);
            Ok(())
        }
        Command::Tenant(
            command @ (TenantCommand::Applications | TenantCommand::Approve { .. }),
        ) => trial::run(command, config, clock).await,
        other => admin::run(other, config, clock).await,
    }
}
