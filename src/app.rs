//! The application state every handler reaches through axum's `State`: configuration, store,
//! clock, key material and the per-node caches that keep the hot paths free of queries.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};

use crate::clock::{SharedClock, UnixTime};
use crate::config::Config;
use crate::crypto::keys::{KeyError, Keyring};
use crate::crypto::master::MasterKey;
use crate::crypto::password::PasswordHasher;
use crate::crypto::secret::DigestKey;
use crate::flow::cookies::Csrf;
use crate::limits::FailureLimiter;
use crate::saml::sso::RequestRecord;
use crate::store::access_revocations::{self, Revoke};
use crate::store::apps::App as AppRecord;
use crate::store::clients::Client;
use crate::store::group::Group;
use crate::store::service_providers::{self, ServiceProvider};
use crate::store::sessions::Session;
use crate::store::subjects::{self, Subject};
use crate::store::tenants::Tenant;
use crate::store::{Store, StoreError, apps, clients, keys as key_store, tenants};
use crate::telemetry::Metrics;
use crate::tenant::TenantId;
use crate::tenant::resolve::TenantCtx;
use crate::web::Templates;

/// How long a node trusts its cached tenants and keys. Changes made on this node invalidate at
/// once; changes made on another node are seen within this many seconds.
pub const CACHE_TTL_SECS: i64 = 10;

/// How long before its TTL ends a keyring in use is reloaded (see [`App::keyring`]).
const KEYRING_RELOAD_AHEAD_SECS: i64 = 2;

/// How far back from its last read of the revocations a node reads the store again, for rows
/// committed late and for nodes whose clocks are a little behind.
const REVOCATIONS_OVERLAP_SECS: i64 = 300;

/// The documents [`App::document`] keeps, each built from a tenant's keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Document {
    /// OpenID Connect Discovery.
    Discovery,
    /// The SAML IdP metadata, signed or not (the tenant's `saml_sign_metadata`).
    SamlMetadata { signed: bool },
}

#[derive(Clone)]
pub struct App(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub clock: SharedClock,
    pub master: MasterKey,
    pub hasher: PasswordHasher,
    /// Keyed digest for client secrets, derived from the master key.
    pub client_secrets: DigestKey,
    pub templates: Templates,
    pub metrics: Metrics,
    /// CSRF tokens for every form, keyed by a digest key derived from the master key.
    pub csrf: Csrf,
    /// Keys the captcha answers (see `flow::captcha`).
    pub captcha_key: DigestKey,
    /// Keys the digests verification codes are stored as (see `codes`).
    pub code_key: DigestKey,
    /// Seals self-contained authorization codes (see `oidc::code`).
    pub code_seal: MasterKey,
    /// Keys the digests of browsers and networks users signed in from (see `flow::alerts`): a
    /// plain hash of a /24 would be reversed by trying all 2^24.
    pub origin_key: DigestKey,
    /// Keys the persistent SAML NameIDs, one pseudonym per user and service provider (see
    /// `saml::nameid`).
    pub pseudonym_key: DigestKey,
    /// Keys the SAML SessionIndex each SP is given for a session (see `saml::nameid`).
    pub session_index_key: DigestKey,
    /// Email and SMS delivery.
    pub notifier: Arc<crate::notify::Notifier>,
    /// Balancers whose `X-Forwarded-For` names the client (see `web::proxies`).
    pub trusted_proxies: crate::web::proxies::TrustedProxies,
    /// Verified against when the account does not exist, so a wrong account costs the same
    /// argon2 time as a wrong password and timing tells nobody which accounts exist. Made at the
    /// first sign-in, not at start-up, so an idle node never holds argon2's memory.
    dummy_password_hash: tokio::sync::OnceCell<String>,
    /// Tenants with their issuer as reached by path, so routing a request builds no string.
    tenants_by_id: TtlCache<TenantId, Option<TenantCtx>>,
    /// All tenant hosts in one map, so probing random Host headers costs no query.
    hosts: TtlCache<(), Arc<HashMap<String, TenantId>>>,
    keyrings: TtlCache<TenantId, Arc<Keyring>>,
    /// Held while a keyring loads, so the requests that find it expired wait for one load instead
    /// of each decrypting and parsing every key on the same cores.
    keyring_loads: tokio::sync::Mutex<()>,
    clients: TtlCache<(TenantId, String), Option<Arc<Client>>>,
    /// Documents built from the keyring (discovery, SAML metadata) by issuer, serialized once.
    documents: TtlCache<(Arc<str>, Document), bytes::Bytes>,
    /// Users as protocols see them (account, department path, roles), by (tenant, user id), so
    /// UserInfo, refresh grants and single sign-on cost no query for a user seen recently.
    subjects: TtlCache<(TenantId, String), Option<Arc<Subject>>>,
    /// Apps with their access scopes, by (tenant, app id).
    apps: TtlCache<(TenantId, String), Option<Arc<AppRecord>>>,
    /// (tenant, sid, client id) this node recorded in `session_clients` lately, so a client
    /// signing in again through the same session costs no write.
    pub(crate) recorded_session_clients: TtlCache<(TenantId, String, String), ()>,
    /// AuthnRequest IDs remembered against replay, in transactions shared by the requests that
    /// arrive together.
    pub(crate) saml_requests: Group<RequestRecord, (bool, Option<Session>)>,
    /// SAML service providers by (tenant, entityID), as AuthnRequests name them.
    service_providers: TtlCache<(TenantId, String), Option<Arc<ServiceProvider>>>,
    /// Client JWK Sets fetched from `jwks_uri`, by (tenant, client id).
    pub(crate) client_jwks: TtlCache<(TenantId, String), Arc<serde_json::Value>>,
    /// Failed client authentications per (tenant, client id, address).
    pub client_auth_failures: FailureLimiter,
    /// Failed password sign-ins per (tenant, account) and per (tenant, address).
    pub sign_in_failures: FailureLimiter,
    pub address_failures: FailureLimiter,
    /// Captcha images drawn per address (see `flow::captcha::MAX_PER_ADDRESS`).
    pub captchas_drawn: FailureLimiter,
    /// Free-trial applications per address (see `trial`).
    pub trial_applications: FailureLimiter,
    /// Set once the node was told to stop: `/readyz` fails while it drains.
    pub draining: std::sync::atomic::AtomicBool,
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl App {
    pub fn new(
        config: Config,
        store: Store,
        clock: SharedClock,
        master: MasterKey,
    ) -> anyhow::Result<App> {
        let hasher = PasswordHasher::new(&config.password_hash)?;
        let trusted_proxies = crate::web::proxies::TrustedProxies::parse(
            &config.http.trusted_proxies,
        )
        .map_err(|bad| {
            anyhow::anyhow!(
                "config key `http.trusted_proxies`: '{bad}' is not an address or network"
            )
        })?;
        let notifier = Arc::new(crate::notify::Notifier::new(
            &config,
            store.clone(),
            clock.clone(),
        )?);
        let templates = Templates::load()?;
        // Unknown accounts fail like real ones lock (see flow::login), so a lock tells nothing
        // about which accounts exist.
        let limits = &config.sign_in;
        let sign_in_failures = FailureLimiter::sliding(
            u32::try_from(limits.lockout_threshold).unwrap_or(u32::MAX),
            limits.lockout_duration,
        );
        let address_failures = FailureLimiter::new(
            u32::try_from(limits.address_limit).unwrap_or(u32::MAX),
            limits.lockout_duration,
        );
        let limits_window = limits.lockout_duration;
        Ok(App(Arc::new(Inner {
            csrf: Csrf::new(DigestKey::new(master.derive("csrf"))),
            captcha_key: DigestKey::new(master.derive("captcha")),
            code_key: DigestKey::new(master.derive("verification-code")),
            origin_key: DigestKey::new(master.derive("sign-in-origins")),
            pseudonym_key: DigestKey::new(master.derive("saml-persistent-nameid")),
            session_index_key: DigestKey::new(master.derive("saml-session-index")),
            code_seal: master.sub_key("authorization-code-v1"),
            notifier,
            trusted_proxies,
            dummy_password_hash: tokio::sync::OnceCell::new(),
            config,
            store,
            clock,
            client_secrets: master.client_secret_key(),
            master,
            hasher,
            templates,
            metrics: Metrics::default(),
            tenants_by_id: TtlCache::default(),
            hosts: TtlCache::default(),
            keyrings: TtlCache::default(),
            keyring_loads: tokio::sync::Mutex::new(()),
            clients: TtlCache::default(),
            documents: TtlCache::default(),
            client_jwks: TtlCache::default(),
            recorded_session_clients: TtlCache::default(),
            saml_requests: Group::new(crate::saml::sso::remember_requests),
            service_providers: TtlCache::default(),
            subjects: TtlCache::default(),
            apps: TtlCache::default(),
            client_auth_failures: FailureLimiter::new(
                crate::oidc::client_auth::MAX_FAILURES,
                crate::oidc::client_auth::FAILURE_WINDOW,
            ),
            captchas_drawn: FailureLimiter::new(
                crate::flow::captcha::MAX_PER_ADDRESS,
                limits_window,
            ),
            trial_applications: crate::trial::limiter(),
            draining: std::sync::atomic::AtomicBool::new(false),
            sign_in_failures,
            address_failures,
        })))
    }

    /// A hash of a random password with the configured cost (see `dummy_password_hash`).
    pub async fn dummy_hash(&self) -> Result<String, crate::crypto::CryptoError> {
        self.dummy_password_hash
            .get_or_try_init(|| {
                let password = crate::crypto::secret::random_token(16);
                self.hasher
                    .hash(crate::crypto::secret::SecretString::new(password))
            })
            .await
            .cloned()
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The issuer of a tenant reached by path: `{public_url}/t/{tenant}`.
    pub fn issuer(&self, tenant: &TenantId) -> String {
        format!("{}/t/{}", self.config.public_base(), tenant)
    }

    /// A registered client, cached like tenants so a grant costs no lookup query. A client removed
    /// on another node stops working within the cache TTL.
    pub async fn client(
        &self,
        tenant: &TenantId,
        client_id: &str,
    ) -> Result<Option<Arc<Client>>, StoreError> {
        let now = self.now();
        let key = (tenant.clone(), client_id.to_string());
        if let Some(hit) = self.clients.get(&key, now) {
            return Ok(hit);
        }
        let (t, id) = key.clone();
        let found = self
            .store
            .run(move |c| clients::find(c, &t, &id))
            .await?
            .map(Arc::new);
        self.clients.put(key, found.clone(), now);
        Ok(found)
    }

    /// The SAML service provider with `entity_id`, cached like clients: a registration changed on
    /// another node is seen within the cache TTL.
    pub async fn service_provider(
        &self,
        tenant: &TenantId,
        entity_id: &str,
    ) -> Result<Option<Arc<ServiceProvider>>, StoreError> {
        let now = self.now();
        let key = (tenant.clone(), entity_id.to_string());
        if let Some(hit) = self.service_providers.get(&key, now) {
            return Ok(hit);
        }
        let (t, id) = key.clone();
        let found = self
            .store
            .run(move |c| service_providers::find_by_entity_id(c, &t, &id))
            .await?
            .map(Arc::new);
        self.service_providers.put(key, found.clone(), now);
        Ok(found)
    }

    pub async fn tenant(&self, id: &TenantId) -> Result<Option<Arc<Tenant>>, StoreError> {
        Ok(self.tenant_at_path(id).await?.map(|ctx| ctx.tenant))
    }

    /// The tenant reached at `/t/{id}`, with that issuer.
    pub async fn tenant_at_path(&self, id: &TenantId) -> Result<Option<TenantCtx>, StoreError> {
        let now = self.now();
        if let Some(hit) = self.tenants_by_id.get(id, now) {
            return Ok(hit);
        }
        let key = id.clone();
        let found = self
            .store
            .run(move |c| tenants::find(c, &key))
            .await?
            .map(|tenant| TenantCtx {
                issuer: self.issuer(&tenant.id).into(),
                tenant: Arc::new(tenant),
            });
        self.tenants_by_id.put(id.clone(), found.clone(), now);
        Ok(found)
    }

    /// [`App::tenant_at_path`] from the cache alone, by the slug as written: `None` when the cache
    /// does not know it, so the router resolves a known tenant without awaiting anything.
    pub fn cached_tenant_at_path(&self, slug: &str) -> Option<Option<TenantCtx>> {
        self.tenants_by_id.get(slug, self.now())
    }

    pub async fn tenant_by_host(&self, host: &str) -> Result<Option<Arc<Tenant>>, StoreError> {
        let now = self.now();
        let hosts = match self.hosts.get(&(), now) {
            Some(hit) => hit,
            None => {
                let rows = self.store.run(tenants::all_hosts).await?;
                let map: HashMap<String, TenantId> = rows
                    .into_iter()
                    .filter_map(|(host, id)| Some((host, TenantId::parse(&id)?)))
                    .collect();
                let map = Arc::new(map);
                self.hosts.put((), map.clone(), now);
                map
            }
        };
        match hosts.get(host) {
            Some(id) => self.tenant(id).await,
            None => Ok(None),
        }
    }

    /// The tenant's parsed signing keys and JWKS, loaded once per TTL.
    ///
    /// A load decrypts and parses every key of the tenant, milliseconds of CPU. Under load, the
    /// requests that find the keyring expired wait for one of them to load it, and in the last
    /// seconds of its TTL one request reloads it while the others go on with the current one:
    /// an expiry costs one load, not one per request in flight.
    pub async fn keyring(&self, tenant: &TenantId) -> Result<Arc<Keyring>, KeyError> {
        let now = self.now();
        if let Some((hit, age)) = self.keyrings.get_aged(tenant, now) {
            if age < CACHE_TTL_SECS - KEYRING_RELOAD_AHEAD_SECS {
                return Ok(hit);
            }
            let Ok(_loading) = self.keyring_loads.try_lock() else {
                return Ok(hit);
            };
            return match self.load_keyring(tenant, now, Some(hit.clone())).await {
                Ok(ring) => Ok(ring),
                // The current keyring is still within its TTL: a failed early reload can wait.
                Err(e) => {
                    tracing::warn!(tenant = %tenant.as_str(), error = %e, "reloading the keyring failed");
                    Ok(hit)
                }
            };
        }
        let _loading = self.keyring_loads.lock().await;
        let now = self.now();
        if let Some(hit) = self.keyrings.get(tenant, now) {
            return Ok(hit);
        }
        let expired = self.keyrings.get_stale(tenant);
        self.load_keyring(tenant, now, expired).await
    }

    /// Reads the tenant's keys and keeps `current` if they are the ones it was built from: the
    /// TTL is there to notice rotations made on other nodes, and most reloads find none.
    async fn load_keyring(
        &self,
        tenant: &TenantId,
        now: UnixTime,
        current: Option<Arc<Keyring>>,
    ) -> Result<Arc<Keyring>, KeyError> {
        let key = tenant.clone();
        // Revocations are read from a little before this node last read them, for rows that
        // other nodes (or clocks a little behind) committed late.
        let since = current
            .as_ref()
            .and_then(|ring| ring.revocations().read_at())
            .map(|read| read.plus(-REVOCATIONS_OVERLAP_SECS));
        let (stored, revoked, longest) = self
            .store
            .run(move |c| {
                Ok((
                    key_store::list(c, &key)?,
                    access_revocations::load(c, &key, since, now)?,
                    clients::max_token_lifetime(c, &key)?,
                ))
            })
            .await?;
        let (ring, replaced) = match current {
            Some(ring) if ring.built_from(&stored, now) => (ring, None),
            current => {
                self.metrics.keyring_built();
                (
                    Arc::new(Keyring::load(tenant, &stored, &self.master, now)?),
                    current,
                )
            }
        };
        // No token issued before this is still live.
        let lifetime = longest
            .unwrap_or(0)
            .max(self.config.tokens.access_token_lifetime);
        let forget_before = now.plus(-(lifetime + REVOCATIONS_OVERLAP_SECS));
        ring.merge_revocations(revoked, forget_before);
        self.keyrings.put(tenant.clone(), ring.clone(), now);
        // A new ring takes over what the old one held, read before or noted here (by
        // `note_revoked`) until the new one was in place.
        if let Some(old) = replaced {
            ring.merge_revocations((*old.revocations()).clone(), forget_before);
        }
        Ok(ring)
    }

    /// Makes a revocation just recorded in the store hold on this node at once; the other nodes
    /// read it with the tenant's keys within the keyring's lifetime.
    pub fn note_revoked(&self, tenant: &TenantId, what: Revoke<'_>, at: UnixTime) {
        if let Some(ring) = self.keyrings.get_stale(tenant) {
            ring.note_revoked(what, at);
        }
    }

    /// The `which` document for `issuer`, built by `build` at most once per TTL.
    pub async fn document(
        &self,
        tenant: &TenantId,
        issuer: &Arc<str>,
        which: Document,
        build: impl FnOnce(&Keyring) -> bytes::Bytes,
    ) -> Result<bytes::Bytes, KeyError> {
        let now = self.now();
        let key = (issuer.clone(), which);
        if let Some(hit) = self.documents.get(&key, now) {
            return Ok(hit);
        }
        let ring = self.keyring(tenant).await?;
        let bytes = build(&ring);
        self.documents.put(key, bytes.clone(), now);
        Ok(bytes)
    }

    /// Forget cached state after a local change (tenant edited, keys rotated).
    pub fn invalidate_caches(&self) {
        self.tenants_by_id.clear();
        self.hosts.clear();
        self.keyrings.clear();
        self.clients.clear();
        self.service_providers.clear();
        self.documents.clear();
        self.client_jwks.clear();
        self.subjects.clear();
        self.apps.clear();
    }

    /// A user with department path and roles, cached like clients: a user disabled or changed on
    /// another node is seen within the cache TTL (sign-in itself always reads the store).
    pub async fn subject(
        &self,
        tenant: &TenantId,
        user_id: &str,
    ) -> Result<Option<Arc<Subject>>, StoreError> {
        let now = self.now();
        let key = (tenant.clone(), user_id.to_string());
        if let Some(hit) = self.subjects.get(&key, now) {
            return Ok(hit);
        }
        let (t, id) = key.clone();
        let found = self
            .store
            .run(move |c| subjects::find(c, &t, &id))
            .await?
            .map(Arc::new);
        self.subjects.put(key, found.clone(), now);
        Ok(found)
    }

    /// Forgets this node's copy of a user after a change made here (a destination verified),
    /// so the next token carries it.
    pub fn forget_subject(&self, tenant: &TenantId, user_id: &str) {
        self.subjects.remove(&(tenant.clone(), user_id.to_string()));
    }

    /// An app and who may use it, cached like clients.
    pub async fn app_record(
        &self,
        tenant: &TenantId,
        app_id: &str,
    ) -> Result<Option<Arc<AppRecord>>, StoreError> {
        let now = self.now();
        let key = (tenant.clone(), app_id.to_string());
        if let Some(hit) = self.apps.get(&key, now) {
            return Ok(hit);
        }
        let (t, id) = key.clone();
        let found = self
            .store
            .run(move |c| apps::find(c, &t, &id))
            .await?
            .map(Arc::new);
        self.apps.put(key, found.clone(), now);
        Ok(found)
    }
}

/// A small map whose entries are trusted for [`CACHE_TTL_SECS`].
pub(crate) struct TtlCache<K, V> {
    entries: RwLock<HashMap<K, (V, UnixTime)>>,
}

impl<K, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        TtlCache {
            entries: RwLock::new(HashMap::new()),
        }
    }
}

/// Bounds memory when someone probes many unknown tenants or hosts.
const CACHE_MAX_ENTRIES: usize = 10_000;

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub(crate) fn get<Q>(&self, key: &Q, now: UnixTime) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_aged(key, now).map(|(value, _)| value)
    }

    /// A live entry with its age in seconds.
    pub(crate) fn get_aged<Q>(&self, key: &Q, now: UnixTime) -> Option<(V, i64)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.read().ok()?;
        let (value, at) = entries.get(key)?;
        let age = now.0 - at.0;
        (0..CACHE_TTL_SECS)
            .contains(&age)
            .then(|| (value.clone(), age))
    }

    /// The entry whatever its age, for a reload that may keep it.
    pub(crate) fn get_stale<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.read().ok()?;
        entries.get(key).map(|(value, _)| value.clone())
    }

    pub(crate) fn put(&self, key: K, value: V, now: UnixTime) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= CACHE_MAX_ENTRIES {
                entries.retain(|_, (_, at)| now.0 - at.0 < CACHE_TTL_SECS);
                if entries.len() >= CACHE_MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(key, (value, now));
        }
    }

    fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }

    fn remove(&self, key: &K) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(key);
        }
    }
}
