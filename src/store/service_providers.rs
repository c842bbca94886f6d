//! Registered SAML service providers. The columns are what is looked up (the SP's short id, its
//! entityID, the app whose access scope applies); everything else is [`SpSettings`], one JSON
//! document, read leniently so a field added later does not break older rows.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::conn::{Conn, per_backend};
use super::schema::saml_service_providers as s;
use crate::clock::UnixTime;
use crate::tenant::TenantId;

/// An assertion consumer service: where the SP receives Responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub url: String,
    pub binding: String,
    /// `index` of an indexed endpoint (ACS); SLO endpoints have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    #[serde(default)]
    pub is_default: bool,
    /// An SLO endpoint's `ResponseLocation`: where LogoutResponses go when it differs from where
    /// requests go (Metadata §2.2.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_url: Option<String>,
}

impl Endpoint {
    /// The endpoint that takes responses: `response_url` when the SP named one.
    pub fn for_responses(&self) -> Endpoint {
        Endpoint {
            url: self
                .response_url
                .clone()
                .unwrap_or_else(|| self.url.clone()),
            response_url: None,
            ..self.clone()
        }
    }
}

/// Where the NameID's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameIdSource {
    #[default]
    Email,
    Username,
    /// A stable pseudonym per user and SP, so SPs cannot correlate users.
    Persistent,
    /// A fresh value per assertion.
    Transient,
}

impl NameIdSource {
    pub const ALL: [NameIdSource; 4] = [
        NameIdSource::Email,
        NameIdSource::Username,
        NameIdSource::Persistent,
        NameIdSource::Transient,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NameIdSource::Email => "email",
            NameIdSource::Username => "username",
            NameIdSource::Persistent => "persistent",
            NameIdSource::Transient => "transient",
        }
    }

    pub fn parse(s: &str) -> Option<NameIdSource> {
        NameIdSource::ALL.into_iter().find(|n| n.as_str() == s)
    }
}

/// How the assertion is encrypted for an SP that has an encryption certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encryption {
    #[default]
    Aes256Gcm,
    /// For SP libraries that know GCM with 128-bit keys only (samael).
    Aes128Gcm,
    /// For SP libraries that predate GCM.
    Aes128Cbc,
}

/// Which elements carry a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signed {
    /// The assertion: it stays verifiable wherever the SP passes it on.
    #[default]
    Assertion,
    Response,
    Both,
}

/// One attribute the SP receives: a SAML attribute `name` filled from a user field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeMapping {
    pub name: String,
    /// `email`, `username`, `display_name`, `phone`, `employee_no`, `department`, `roles`, ...
    pub source: String,
    /// The attribute's `NameFormat`; `basic` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SpSettings {
    pub acs: Vec<Endpoint>,
    pub slo: Option<Endpoint>,
    /// Certificates (base64 DER) that may sign the SP's requests.
    pub signing_certificates: Vec<String>,
    /// When set, assertions to this SP are encrypted for it (base64 DER).
    pub encryption_certificate: Option<String>,
    pub encryption: Encryption,
    pub name_id: NameIdSource,
    pub attributes: Vec<AttributeMapping>,
    /// Refuse AuthnRequests that are not signed by one of `signing_certificates`.
    pub want_requests_signed: bool,
    pub signed: Signed,
    /// May `/saml/launch/{sp}` send an unsolicited Response.
    pub idp_initiated: bool,
    /// Seconds an assertion is valid; the default when unset.
    pub assertion_lifetime: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceProvider {
    /// A short name for URLs and the command line (`/saml/launch/{id}`).
    pub id: String,
    pub entity_id: String,
    pub name: String,
    /// The app whose access scope decides who may sign in to this SP.
    pub app_id: Option<String>,
    pub settings: SpSettings,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = s, check_for_backend(crate::store::conn::MultiBackend))]
struct Row {
    id: String,
    entity_id: String,
    name: String,
    app_id: Option<String>,
    settings: String,
}

impl From<Row> for ServiceProvider {
    fn from(r: Row) -> ServiceProvider {
        ServiceProvider {
            id: r.id,
            entity_id: r.entity_id,
            name: r.name,
            app_id: r.app_id,
            // A document this version cannot read registers nothing usable: no ACS, no SSO.
            settings: serde_json::from_str(&r.settings).unwrap_or_default(),
        }
    }
}

pub fn list(conn: &mut Conn, tenant: &TenantId) -> Result<Vec<ServiceProvider>, StoreError> {
    let rows: Vec<Row> = s::table
        .filter(s::tenant_id.eq(tenant.as_str()))
        .order(s::id.asc())
        .select(Row::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(ServiceProvider::from).collect())
}

pub fn find(
    conn: &mut Conn,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<ServiceProvider>, StoreError> {
    let row: Option<Row> = s::table
        .filter(s::tenant_id.eq(tenant.as_str()))
        .filter(s::id.eq(id))
        .select(Row::as_select())
        .get_result(conn)
        .optional()?;
    Ok(row.map(ServiceProvider::from))
}

/// The SP whose entityID is `entity_id`: how an AuthnRequest's `Issuer` is resolved.
pub fn find_by_entity_id(
    conn: &mut Conn,
    tenant: &TenantId,
    entity_id: &str,
) -> Result<Option<ServiceProvider>, StoreError> {
    let row: Option<Row> = s::table
        .filter(s::tenant_id.eq(tenant.as_str()))
        .filter(s::entity_id.eq(entity_id))
        .select(Row::as_select())
        .get_result(conn)
        .optional()?;
    Ok(row.map(ServiceProvider::from))
}

/// Registers `sp`, or replaces the registration with the same id. Another SP of the tenant with
/// the same entityID is a conflict.
pub fn save(
    conn: &mut Conn,
    tenant: &TenantId,
    sp: &ServiceProvider,
    now: UnixTime,
) -> Result<(), StoreError> {
    let settings = serde_json::to_string(&sp.settings)
        .map_err(|e| StoreError::Invalid(format!("SP settings: {e}")))?;
    super::tx::write(conn, |c| {
        let updated = diesel::update(
            s::table
                .filter(s::tenant_id.eq(tenant.as_str()))
                .filter(s::id.eq(&sp.id)),
        )
        .set((
            s::entity_id.eq(&sp.entity_id),
            s::name.eq(&sp.name),
            s::app_id.eq(sp.app_id.as_deref()),
            s::settings.eq(&settings),
            s::updated_at.eq(now.0),
        ))
        .execute(c)?;
        if updated == 0 {
            diesel::insert_into(s::table)
                .values((
                    s::tenant_id.eq(tenant.as_str()),
                    s::id.eq(&sp.id),
                    s::entity_id.eq(&sp.entity_id),
                    s::name.eq(&sp.name),
                    s::app_id.eq(sp.app_id.as_deref()),
                    s::settings.eq(&settings),
                    s::created_at.eq(now.0),
                    s::updated_at.eq(now.0),
                ))
                .execute(c)?;
        }
        Ok(())
    })
}

/// Returns whether an SP was removed.
pub fn remove(conn: &mut Conn, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
    let n = diesel::delete(
        s::table
            .filter(s::tenant_id.eq(tenant.as_str()))
            .filter(s::id.eq(id)),
    )
    .execute(conn)?;
    Ok(n > 0)
}

/// What an SP was told about a session's user, for Single Logout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSp {
    pub sp_id: String,
    pub name_id: String,
    pub name_id_format: String,
}

/// Records that session `sid` signed in to `sp` as `name_id`, replacing what an earlier sign-in
/// of the session to `sp` recorded.
pub fn add_to_session(
    conn: &mut Conn,
    tenant: &TenantId,
    sid: &str,
    sp: &SessionSp,
    now: UnixTime,
) -> Result<(), StoreError> {
    use super::schema::session_service_providers as ssp;
    // The NameID of the latest assertion replaces the one before (it changes with the SP's
    // registered NameID source): the SP's Single Logout names the one its session holds.
    per_backend!(conn, |c| {
        diesel::insert_into(ssp::table)
            .values((
                ssp::tenant_id.eq(tenant.as_str()),
                ssp::sid.eq(sid),
                ssp::sp_id.eq(&sp.sp_id),
                ssp::name_id.eq(&sp.name_id),
                ssp::name_id_format.eq(&sp.name_id_format),
                ssp::created_at.eq(now.0),
            ))
            .on_conflict((ssp::tenant_id, ssp::sid, ssp::sp_id))
            .do_update()
            .set((
                ssp::name_id.eq(&sp.name_id),
                ssp::name_id_format.eq(&sp.name_id_format),
            ))
            .execute(c)
    })?;
    Ok(())
}

/// The sessions that gave SP `sp_id` the NameID `name_id` (a Single Logout names the user by it).
pub fn sessions_of(
    conn: &mut Conn,
    tenant: &TenantId,
    sp_id: &str,
    name_id: &str,
) -> Result<Vec<String>, StoreError> {
    use super::schema::session_service_providers as ssp;
    Ok(ssp::table
        .filter(ssp::tenant_id.eq(tenant.as_str()))
        .filter(ssp::sp_id.eq(sp_id))
        .filter(ssp::name_id.eq(name_id))
        .select(ssp::sid)
        .limit(100)
        .load(conn)?)
}

/// The SPs session `sid` signed in to, by SP id.
pub fn of_session(
    conn: &mut Conn,
    tenant: &TenantId,
    sid: &str,
) -> Result<Vec<SessionSp>, StoreError> {
    use super::schema::session_service_providers as ssp;
    let rows: Vec<(String, String, String)> = ssp::table
        .filter(ssp::tenant_id.eq(tenant.as_str()))
        .filter(ssp::sid.eq(sid))
        .order(ssp::sp_id.asc())
        .select((ssp::sp_id, ssp::name_id, ssp::name_id_format))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(sp_id, name_id, name_id_format)| SessionSp {
            sp_id,
            name_id,
            name_id_format,
        })
        .collect())
}
