//! OIDC clients. The secret is kept only as a keyed digest (see
//! [`crate::crypto::secret::DigestKey`]) and compared in constant time.

use diesel::prelude::*;

use super::StoreError;
use super::apps::Channel;
use super::conn::Conn;
use super::schema::oidc_clients as c;
use crate::clock::UnixTime;
use crate::crypto::secret::TokenHash;
use crate::tenant::TenantId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<AuthMethod> {
        [
            AuthMethod::ClientSecretBasic,
            AuthMethod::ClientSecretPost,
            AuthMethod::PrivateKeyJwt,
            AuthMethod::None,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }

    /// Whether the method authenticates with a shared secret we must hold a hash of.
    pub fn uses_secret(self) -> bool {
        matches!(
            self,
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub client_id: String,
    pub app_id: Option<String>,
    pub name: String,
    pub secret_hash: Option<TokenHash>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub auth_method: AuthMethod,
    pub channel: Channel,
    pub first_party: bool,
    pub access_token_lifetime: Option<i64>,
    pub id_token_lifetime: Option<i64>,
    pub refresh_token_lifetime: Option<i64>,
    /// private_key_jwt: the client's public keys, by value (a JWK Set) or by URI.
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<String>,
    /// OIDC Back-Channel Logout 1.0 §2.2.
    pub backchannel_logout_uri: Option<String>,
    /// The ID token algorithm (RS256 when unset, as OIDC Core §15.1 expects).
    pub id_token_alg: Option<String>,
    /// The access token algorithm (ES256 when unset): RS256 for resource servers that verify
    /// nothing else.
    pub access_token_alg: Option<String>,
    /// Scopes beyond the OIDC user scopes that the client may obtain (API scopes).
    pub allowed_scopes: Vec<String>,
    /// RFC 8707 resources the client may name as its tokens' audience.
    pub allowed_resources: Vec<String>,
}

#[cfg(test)]
impl Client {
    /// A first-party web client with nothing else registered, for unit tests to adjust.
    pub fn for_tests(client_id: &str, auth_method: AuthMethod) -> Client {
        Client {
            client_id: client_id.into(),
            app_id: None,
            name: client_id.to_uppercase(),
            secret_hash: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec![],
            auth_method,
            channel: Channel::Web,
            first_party: true,
            access_token_lifetime: None,
            id_token_lifetime: None,
            refresh_token_lifetime: None,
            jwks: None,
            jwks_uri: None,
            backchannel_logout_uri: None,
            id_token_alg: None,
            access_token_alg: None,
            allowed_scopes: vec![],
            allowed_resources: vec![],
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = c, check_for_backend(crate::store::conn::MultiBackend))]
struct Row {
    client_id: String,
    app_id: Option<String>,
    name: String,
    secret_hash: Option<Vec<u8>>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    grant_types: String,
    token_endpoint_auth_method: String,
    channel: String,
    first_party: bool,
    access_token_lifetime: Option<i64>,
    id_token_lifetime: Option<i64>,
    refresh_token_lifetime: Option<i64>,
    jwks: Option<String>,
    jwks_uri: Option<String>,
    backchannel_logout_uri: Option<String>,
    id_token_signed_response_alg: Option<String>,
    allowed_scopes: String,
    allowed_resources: String,
    access_token_signed_response_alg: Option<String>,
}

fn json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

fn to_json(v: &[String]) -> String {
    serde_json::Value::from(v.to_vec()).to_string()
}

impl From<Row> for Client {
    fn from(r: Row) -> Client {
        Client {
            client_id: r.client_id,
            app_id: r.app_id,
            name: r.name,
            secret_hash: r.secret_hash.as_deref().and_then(TokenHash::from_bytes),
            redirect_uris: json_list(&r.redirect_uris),
            post_logout_redirect_uris: json_list(&r.post_logout_redirect_uris),
            grant_types: json_list(&r.grant_types),
            // An unknown method authenticates nobody.
            auth_method: AuthMethod::parse(&r.token_endpoint_auth_method)
                .unwrap_or(AuthMethod::PrivateKeyJwt),
            channel: Channel::parse(&r.channel).unwrap_or(Channel::Web),
            first_party: r.first_party,
            access_token_lifetime: r.access_token_lifetime,
            id_token_lifetime: r.id_token_lifetime,
            refresh_token_lifetime: r.refresh_token_lifetime,
            jwks: r.jwks.as_deref().and_then(|j| serde_json::from_str(j).ok()),
            jwks_uri: r.jwks_uri,
            backchannel_logout_uri: r.backchannel_logout_uri,
            id_token_alg: r.id_token_signed_response_alg,
            access_token_alg: r.access_token_signed_response_alg,
            allowed_scopes: json_list(&r.allowed_scopes),
            allowed_resources: json_list(&r.allowed_resources),
        }
    }
}

pub fn list(conn: &mut Conn, tenant: &TenantId) -> Result<Vec<Client>, StoreError> {
    let rows: Vec<Row> = c::table
        .filter(c::tenant_id.eq(tenant.as_str()))
        .order(c::client_id.asc())
        .select(Row::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(Client::from).collect())
}

pub fn find(
    conn: &mut Conn,
    tenant: &TenantId,
    client_id: &str,
) -> Result<Option<Client>, StoreError> {
    let row: Option<Row> = c::table
        .filter(c::tenant_id.eq(tenant.as_str()))
        .filter(c::client_id.eq(client_id))
        .select(Row::as_select())
        .get_result(conn)
        .optional()?;
    Ok(row.map(Client::from))
}

/// Every column an administrator sets, shared by insert and update.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = c, treat_none_as_null = true)]
struct Columns<'a> {
    app_id: Option<&'a str>,
    name: &'a str,
    secret_hash: Option<&'a [u8]>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    grant_types: String,
    token_endpoint_auth_method: &'a str,
    channel: &'a str,
    first_party: bool,
    access_token_lifetime: Option<i64>,
    id_token_lifetime: Option<i64>,
    refresh_token_lifetime: Option<i64>,
    jwks: Option<String>,
    jwks_uri: Option<&'a str>,
    backchannel_logout_uri: Option<&'a str>,
    id_token_signed_response_alg: Option<&'a str>,
    allowed_scopes: String,
    allowed_resources: String,
    access_token_signed_response_alg: Option<&'a str>,
}

impl<'a> From<&'a Client> for Columns<'a> {
    fn from(client: &'a Client) -> Self {
        Columns {
            app_id: client.app_id.as_deref(),
            name: &client.name,
            secret_hash: client.secret_hash.as_ref().map(|h| h.as_bytes().as_slice()),
            redirect_uris: to_json(&client.redirect_uris),
            post_logout_redirect_uris: to_json(&client.post_logout_redirect_uris),
            grant_types: to_json(&client.grant_types),
            token_endpoint_auth_method: client.auth_method.as_str(),
            channel: client.channel.as_str(),
            first_party: client.first_party,
            access_token_lifetime: client.access_token_lifetime,
            id_token_lifetime: client.id_token_lifetime,
            refresh_token_lifetime: client.refresh_token_lifetime,
            jwks: client.jwks.as_ref().map(|j| j.to_string()),
            jwks_uri: client.jwks_uri.as_deref(),
            backchannel_logout_uri: client.backchannel_logout_uri.as_deref(),
            id_token_signed_response_alg: client.id_token_alg.as_deref(),
            allowed_scopes: to_json(&client.allowed_scopes),
            allowed_resources: to_json(&client.allowed_resources),
            access_token_signed_response_alg: client.access_token_alg.as_deref(),
        }
    }
}

pub fn insert(
    conn: &mut Conn,
    tenant: &TenantId,
    client: &Client,
    now: UnixTime,
) -> Result<(), StoreError> {
    diesel::insert_into(c::table)
        .values((
            c::tenant_id.eq(tenant.as_str()),
            c::client_id.eq(&client.client_id),
            c::created_at.eq(now.0),
            c::updated_at.eq(now.0),
            Columns::from(client),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn update(
    conn: &mut Conn,
    tenant: &TenantId,
    client: &Client,
    now: UnixTime,
) -> Result<(), StoreError> {
    let n = diesel::update(
        c::table
            .filter(c::tenant_id.eq(tenant.as_str()))
            .filter(c::client_id.eq(&client.client_id)),
    )
    .set((c::updated_at.eq(now.0), Columns::from(client)))
    .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound(format!(
            "no client '{}' in tenant '{tenant}'",
            client.client_id
        )));
    }
    Ok(())
}

/// Removes a client and its refresh tokens; returns whether there was one. The tokens go
/// explicitly, not by a cascade: refresh tokens carry no foreign keys (see the migration
/// `hot_path_foreign_keys`), and a client registered again under the same ID must not inherit
/// them.
pub fn remove(conn: &mut Conn, tenant: &TenantId, client_id: &str) -> Result<bool, StoreError> {
    use super::schema::refresh_tokens as r;
    super::tx::write(conn, |conn| {
        diesel::delete(
            r::table
                .filter(r::tenant_id.eq(tenant.as_str()))
                .filter(r::client_id.eq(client_id)),
        )
        .execute(conn)?;
        let n = diesel::delete(
            c::table
                .filter(c::tenant_id.eq(tenant.as_str()))
                .filter(c::client_id.eq(client_id)),
        )
        .execute(conn)?;
        Ok(n > 0)
    })
}

/// The longest access-token lifetime any client of any tenant has of its own.
pub fn longest_access_token_lifetime(conn: &mut Conn) -> Result<Option<i64>, StoreError> {
    Ok(c::table
        .select(diesel::dsl::max(c::access_token_lifetime))
        .get_result(conn)?)
}

/// The longest access- or ID-token lifetime any client of the tenant sets, so a retired key
/// stays published for as long as something it signed can be valid.
pub fn max_token_lifetime(conn: &mut Conn, tenant: &TenantId) -> Result<Option<i64>, StoreError> {
    let rows: Vec<(Option<i64>, Option<i64>)> = c::table
        .filter(c::tenant_id.eq(tenant.as_str()))
        .select((c::access_token_lifetime, c::id_token_lifetime))
        .load(conn)?;
    Ok(rows.into_iter().flat_map(|(a, i)| [a, i]).flatten().max())
}
