//! Where users signed in from: a browser (the digest of its cookie) or a network (the digest of
//! its address prefix), with when each was first and last seen.

use diesel::prelude::*;

use super::StoreError;
use super::conn::{Conn, per_backend};
use super::schema::sign_in_origins as o;
use crate::clock::UnixTime;
use crate::crypto::secret::TokenHash;
use crate::tenant::TenantId;

/// What a sign-in's origins were to the user before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// The user had signed in from anywhere before (a first sign-in alerts nobody).
    pub any_before: bool,
    pub new_browser: bool,
    pub new_network: bool,
}

/// Notes a sign-in of `user_id` from `browser` and `network`; says which were new.
pub fn sign_in(
    conn: &mut Conn,
    tenant: &TenantId,
    user_id: &str,
    browser: Option<&TokenHash>,
    network: Option<&TokenHash>,
    now: UnixTime,
) -> Result<Seen, StoreError> {
    super::tx::write(conn, |c| {
        let any_before: i64 = o::table
            .filter(o::tenant_id.eq(tenant.as_str()))
            .filter(o::user_id.eq(user_id))
            .count()
            .get_result(c)?;
        let mut note = |kind: &str, hash: Option<&TokenHash>| -> Result<bool, StoreError> {
            let Some(hash) = hash else {
                return Ok(false);
            };
            let row = o::table
                .filter(o::tenant_id.eq(tenant.as_str()))
                .filter(o::user_id.eq(user_id))
                .filter(o::kind.eq(kind))
                .filter(o::value_hash.eq(hash.as_bytes().to_vec()));
            let known = diesel::update(row)
                .set(o::last_seen_at.eq(now.0))
                .execute(c)?;
            if known > 0 {
                return Ok(false);
            }
            // A sign-in racing this one may have inserted the same origin first: then it is
            // simply known. `ON CONFLICT DO NOTHING`, as on PostgreSQL a unique violation would
            // end the whole transaction.
            let inserted = per_backend!(c, |c| {
                diesel::insert_into(o::table)
                    .values((
                        o::tenant_id.eq(tenant.as_str()),
                        o::user_id.eq(user_id),
                        o::kind.eq(kind),
                        o::value_hash.eq(hash.as_bytes().to_vec()),
                        o::first_seen_at.eq(now.0),
                        o::last_seen_at.eq(now.0),
                    ))
                    .on_conflict((o::tenant_id, o::user_id, o::kind, o::value_hash))
                    .do_nothing()
                    .execute(c)
            })?;
            Ok(inserted == 1)
        };
        let new_browser = note("browser", browser)?;
        let new_network = note("network", network)?;
        Ok(Seen {
            any_before: any_before > 0,
            new_browser,
            new_network,
        })
    })
}
