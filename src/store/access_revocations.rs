//! Access tokens revoked before they expire.
//!
//! Access tokens are signed JWTs that UserInfo and introspection accept on their signature, with
//! no query per request. A revocation is a row here; every node reads its tenant's rows together
//! with the tenant's keys (`App::keyring`), so a revocation holds at once on the node that made it
//! and within the keyring's lifetime (seconds) on the others. A row revokes the tokens issued at
//! or before it, so revoking a user does not revoke the tokens of their next sign-in.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::StoreError;
use super::conn::{Conn, per_backend};
use super::schema::access_revocations as a;
use crate::clock::UnixTime;
use crate::tenant::TenantId;

/// What a revocation covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoke<'a> {
    /// One access token, by its `jti`.
    Token(&'a str),
    /// Every access token of one grant: a code's redemption and the refreshes of the refresh-token
    /// family it started.
    Grant(&'a str),
    /// Every access token of a user.
    User(&'a str),
    /// Every access token of a user at one client (consent withdrawn).
    UserClient { user: &'a str, client: &'a str },
    /// Every access token issued in one browser session (the user signed out).
    Session(&'a str),
}

const TOKEN: &str = "token";
const GRANT: &str = "grant";
const USER: &str = "user";
const USER_CLIENT: &str = "user_client";
const SESSION: &str = "session";

impl Revoke<'_> {
    /// The row's `kind` and `id`.
    fn key(&self) -> (&'static str, String) {
        match *self {
            Revoke::Token(jti) => (TOKEN, jti.to_string()),
            Revoke::Grant(family) => (GRANT, family.to_string()),
            Revoke::User(user) => (USER, user.to_string()),
            Revoke::UserClient { user, client } => (USER_CLIENT, user_client(user, client)),
            Revoke::Session(sid) => (SESSION, sid.to_string()),
        }
    }
}

/// A user at a client as one key; neither id contains a newline.
fn user_client(user: &str, client: &str) -> String {
    format!("{client}\n{user}")
}

/// Records `what` as revoked at `now`. Revoking again moves the moment on, so tokens issued
/// between the two revocations are revoked too; a revocation that commits late with an earlier
/// moment never moves it back.
pub fn record(
    conn: &mut Conn,
    tenant: &TenantId,
    what: Revoke<'_>,
    now: UnixTime,
) -> Result<(), StoreError> {
    let (kind, id) = what.key();
    per_backend!(conn, |c| {
        let upsert = diesel::insert_into(a::table)
            .values((
                a::tenant_id.eq(tenant.as_str()),
                a::kind.eq(kind),
                a::id.eq(&id),
                a::revoked_at.eq(now.0),
            ))
            .on_conflict((a::tenant_id, a::kind, a::id))
            .do_update()
            .set(a::revoked_at.eq(excluded(a::revoked_at)));
        // `ON CONFLICT … DO UPDATE … WHERE`, not a query's filter.
        diesel::query_dsl::methods::FilterDsl::filter(
            upsert,
            a::revoked_at.lt(excluded(a::revoked_at)),
        )
        .execute(c)
    })?;
    Ok(())
}

/// The tenant's revocations made at or after `since`, or all of them (the sweep keeps those to
/// the ones that can still revoke a live token), as read at `now`. A node that read them at some
/// moment reads only what came after, so a reload costs what changed, not every revocation.
pub fn load(
    conn: &mut Conn,
    tenant: &TenantId,
    since: Option<UnixTime>,
    now: UnixTime,
) -> Result<Revocations, StoreError> {
    let rows: Vec<(String, String, i64)> = a::table
        .filter(a::tenant_id.eq(tenant.as_str()))
        .filter(a::revoked_at.ge(since.map_or(i64::MIN, |s| s.0)))
        .select((a::kind, a::id, a::revoked_at))
        .load(conn)?;
    let mut revocations = Revocations {
        read_at: Some(now.0),
        ..Revocations::default()
    };
    for (kind, id, at) in rows {
        if let Some(map) = revocations.map_mut(&kind) {
            map.insert(id.into_boxed_str(), at);
        }
    }
    Ok(revocations)
}

/// Removes revocations made before `before`: every token they could revoke has expired.
pub fn sweep(conn: &mut Conn, before: UnixTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(a::table.filter(a::revoked_at.lt(before.0))).execute(conn)?)
}

/// What an access token says about itself, as far as revocation goes.
#[derive(Debug, Clone, Copy)]
pub struct Issued<'a> {
    pub jti: Option<&'a str>,
    /// The grant (refresh-token family) the token was issued under, if any.
    pub grant: Option<&'a str>,
    pub user: Option<&'a str>,
    pub client: Option<&'a str>,
    /// The browser session (`sid`) it was issued in, if any.
    pub session: Option<&'a str>,
    pub issued_at: i64,
}

/// A tenant's revocations, each `kind` in its own map from `id` to the moment it was revoked.
#[derive(Debug, Clone, Default)]
pub struct Revocations {
    tokens: HashMap<Box<str>, i64>,
    grants: HashMap<Box<str>, i64>,
    users: HashMap<Box<str>, i64>,
    user_clients: HashMap<Box<str>, i64>,
    sessions: HashMap<Box<str>, i64>,
    /// When, by this node's clock, the store was last read for them. The moments come from the
    /// clocks of the nodes that recorded them: a node whose clock runs ahead must not make the
    /// others skip what is recorded after it.
    read_at: Option<i64>,
}

impl Revocations {
    fn maps_mut(&mut self) -> [&mut HashMap<Box<str>, i64>; 5] {
        [
            &mut self.tokens,
            &mut self.grants,
            &mut self.users,
            &mut self.user_clients,
            &mut self.sessions,
        ]
    }

    fn map_mut(&mut self, kind: &str) -> Option<&mut HashMap<Box<str>, i64>> {
        match kind {
            TOKEN => Some(&mut self.tokens),
            GRANT => Some(&mut self.grants),
            USER => Some(&mut self.users),
            USER_CLIENT => Some(&mut self.user_clients),
            SESSION => Some(&mut self.sessions),
            _ => None,
        }
    }

    /// Adds a revocation this node just recorded, so that it holds here before the next load.
    pub fn insert(&mut self, what: Revoke<'_>, at: UnixTime) {
        let (kind, id) = what.key();
        if let Some(map) = self.map_mut(kind) {
            let moment = map.entry(id.into_boxed_str()).or_insert(at.0);
            *moment = (*moment).max(at.0);
        }
    }

    /// When the store was last read for them, if it was.
    pub fn read_at(&self) -> Option<UnixTime> {
        self.read_at.map(UnixTime)
    }

    /// Adds the revocations `read` since an earlier load, and forgets those made before
    /// `forget_before`, which no live token predates.
    pub fn merge(&mut self, read: Revocations, forget_before: UnixTime) {
        let mut read = read;
        for (mine, theirs) in self.maps_mut().into_iter().zip(read.maps_mut()) {
            for (id, at) in theirs.drain() {
                let moment = mine.entry(id).or_insert(at);
                *moment = (*moment).max(at);
            }
            mine.retain(|_, at| *at >= forget_before.0);
        }
        self.read_at = self.read_at.max(read.read_at);
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
            && self.grants.is_empty()
            && self.users.is_empty()
            && self.user_clients.is_empty()
            && self.sessions.is_empty()
    }

    /// Whether a token issued as `token` says was revoked after it was issued.
    pub fn revokes(&self, token: &Issued<'_>) -> bool {
        if self.is_empty() {
            return false;
        }
        let after_issue = |map: &HashMap<Box<str>, i64>, id: &str| {
            map.get(id).is_some_and(|&at| at >= token.issued_at)
        };
        token.jti.is_some_and(|j| after_issue(&self.tokens, j))
            || token.grant.is_some_and(|g| after_issue(&self.grants, g))
            || token.user.is_some_and(|u| after_issue(&self.users, u))
            || token
                .session
                .is_some_and(|s| after_issue(&self.sessions, s))
            || match (token.user, token.client) {
                (Some(u), Some(c)) if !self.user_clients.is_empty() => {
                    after_issue(&self.user_clients, &user_client(u, c))
                }
                _ => false,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(at: i64) -> Issued<'static> {
        Issued {
            jti: Some("g1.t1"),
            grant: Some("g1"),
            user: Some("olga"),
            client: Some("crm"),
            session: Some("s1"),
            issued_at: at,
        }
    }

    #[test]
    fn each_kind_revokes_the_tokens_issued_before_it() {
        for what in [
            Revoke::Token("g1.t1"),
            Revoke::Grant("g1"),
            Revoke::User("olga"),
            Revoke::UserClient {
                user: "olga",
                client: "crm",
            },
            Revoke::Session("s1"),
        ] {
            let mut r = Revocations::default();
            r.insert(what, UnixTime(100));
            assert!(r.revokes(&issued(99)), "{what:?}");
            assert!(r.revokes(&issued(100)), "{what:?} in the same second");
            assert!(!r.revokes(&issued(101)), "{what:?} issued later");
        }
    }

    #[test]
    fn other_tokens_grants_users_and_clients_stay_live() {
        let mut r = Revocations::default();
        r.insert(Revoke::Token("g1.t2"), UnixTime(100));
        r.insert(Revoke::Grant("g2"), UnixTime(100));
        r.insert(Revoke::User("ivan"), UnixTime(100));
        r.insert(Revoke::Session("s2"), UnixTime(100));
        r.insert(
            Revoke::UserClient {
                user: "olga",
                client: "marketing",
            },
            UnixTime(100),
        );
        assert!(!r.revokes(&issued(50)));
        assert!(!Revocations::default().revokes(&issued(50)));
    }

    #[test]
    fn a_merge_adds_what_was_read_and_forgets_what_no_live_token_predates() {
        let mut held = Revocations::default();
        held.insert(Revoke::Grant("old"), UnixTime(10));
        held.insert(Revoke::User("olga"), UnixTime(100));
        let mut read = Revocations {
            read_at: Some(130),
            ..Revocations::default()
        };
        read.insert(Revoke::User("olga"), UnixTime(90));
        read.insert(Revoke::Session("s1"), UnixTime(120));
        held.merge(read, UnixTime(50));
        assert_eq!(held.users.get("olga"), Some(&100), "the later moment stays");
        assert_eq!(held.sessions.get("s1"), Some(&120));
        assert!(held.grants.is_empty(), "forgotten");
        assert_eq!(held.read_at(), Some(UnixTime(130)));
    }

    #[test]
    fn a_later_revocation_moves_the_moment_on_and_an_earlier_one_does_not_undo_it() {
        let mut r = Revocations::default();
        r.insert(Revoke::User("olga"), UnixTime(100));
        r.insert(Revoke::User("olga"), UnixTime(200));
        assert!(r.revokes(&issued(150)));
        r.insert(Revoke::User("olga"), UnixTime(120));
        assert!(r.revokes(&issued(150)));
    }
}
