//! Storage: the same suite on SQLite and (when configured) PostgreSQL.

use sesame::account::{Email, Login, Phone, Username};
use sesame::crypto::keys::{self, Alg, KeyKind};
use sesame::crypto::master::MasterKey;
use sesame::crypto::secret::TokenHash;
use sesame::store::keys::KeyState;
use sesame::store::tenants::{self, TenantSpec};
use sesame::store::tokens::{self, NewOneTimeToken};
use sesame::store::users::{self, NewUser, UserProfile, UserStatus};
use sesame::store::{Store, StoreError, keys as key_store, meta, migrate};
use sesame::tenant::TenantId;

use crate::support::{T0, both_backends};

fn tid(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

fn migrated(db: &crate::support::TestDb) -> Store {
    let store = db.store();
    store.run_blocking(migrate::run_pending).unwrap();
    for t in ["acme", "globex"] {
        store
            .run_blocking(|c| tenants::insert(c, &tid(t), &TenantSpec::named(t), T0))
            .unwrap();
    }
    store
}

fn user(username: &str, email: Option<&str>, phone: Option<&str>) -> NewUser {
    NewUser {
        id: None,
        profile: UserProfile {
            username: Username::parse(username),
            email: email.and_then(Email::parse),
            phone: phone.and_then(|p| Phone::parse(p, None)),
            display_name: username.into(),
            ..UserProfile::default()
        },
        status: UserStatus::Active,
        password_hash: None,
        must_change_password: false,
    }
}

both_backends!(single_use_consume_returns_once, |db| {
    let store = migrated(&db);
    let hash = TokenHash::of("code-123");
    fn token(h: &TokenHash) -> NewOneTimeToken<'_> {
        NewOneTimeToken {
            hash: h,
            kind: "login_code",
            subject: "user-1",
            payload: serde_json::json!({"n": 1}),
            expires_at: T0.plus(300),
        }
    }
    store
        .run_blocking(|c| tokens::insert(c, &tid("acme"), token(&hash), T0))
        .unwrap();
    // Another tenant or another kind cannot consume it.
    assert!(
        store
            .run_blocking(|c| tokens::consume(c, &tid("globex"), "login_code", &hash, T0))
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .run_blocking(|c| tokens::consume(c, &tid("acme"), "reset", &hash, T0))
            .unwrap()
            .is_none()
    );
    let first = store
        .run_blocking(|c| tokens::consume(c, &tid("acme"), "login_code", &hash, T0.plus(1)))
        .unwrap();
    let first = first.expect("first consume wins");
    assert_eq!(first.subject, "user-1");
    assert_eq!(first.payload["n"], 1);
    let second = store
        .run_blocking(|c| tokens::consume(c, &tid("acme"), "login_code", &hash, T0.plus(2)))
        .unwrap();
    assert!(second.is_none(), "a consumed token is gone");

    // Expired tokens cannot be consumed, and the sweeper removes them.
    let old = TokenHash::of("old");
    store
        .run_blocking(|c| tokens::insert(c, &tid("acme"), token(&old), T0))
        .unwrap();
    assert!(
        store
            .run_blocking(|c| tokens::consume(c, &tid("acme"), "login_code", &old, T0.plus(300)))
            .unwrap()
            .is_none()
    );
    // A used token is remembered for an hour past its expiry (to recognize late replays).
    assert_eq!(
        store
            .run_blocking(|c| tokens::sweep_expired(c, T0.plus(301)))
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .run_blocking(|c| tokens::sweep_expired(c, T0.plus(301 + tokens::REPLAY_MEMORY)))
            .unwrap(),
        2
    );
});

both_backends!(racing_consumers_get_one_winner, |db| {
    let store = migrated(&db);
    for round in 0..20 {
        let secret = format!("race-{round}");
        let hash = TokenHash::of(&secret);
        let new = NewOneTimeToken {
            hash: &hash,
            kind: "k",
            subject: "s",
            payload: serde_json::json!({}),
            expires_at: T0.plus(60),
        };
        store
            .run_blocking(|c| tokens::insert(c, &tid("acme"), new, T0))
            .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (store, hash) = (store.clone(), hash.clone());
            tasks.push(tokio::spawn(async move {
                store
                    .run(move |c| tokens::consume(c, &tid("acme"), "k", &hash, T0))
                    .await
                    .unwrap()
                    .is_some()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.unwrap());
        }
        assert_eq!(winners, 1, "round {round}");
    }
});

both_backends!(upsert_replaces_the_value, |db| {
    let store = migrated(&db);
    store.run_blocking(|c| meta::set(c, "k", "one")).unwrap();
    store.run_blocking(|c| meta::set(c, "k", "two")).unwrap();
    assert_eq!(
        store
            .run_blocking(|c| meta::get(c, "k"))
            .unwrap()
            .as_deref(),
        Some("two")
    );
    assert_eq!(
        store.run_blocking(|c| meta::get(c, "missing")).unwrap(),
        None
    );
});

both_backends!(duplicate_accounts_are_refused_clearly, |db| {
    let store = migrated(&db);
    let acme = tid("acme");
    store
        .run_blocking(|c| {
            users::insert(
                c,
                &acme,
                &user("alice", Some("alice@example.com"), Some("+8613800138000")),
                T0,
            )
        })
        .unwrap();
    let cases = [
        (user("Alice", None, None), "username"),
        (user("alice2", Some("ALICE@example.com"), None), "email"),
        (
            user("alice3", None, Some("+86 138 0013 8000")),
            "mobile number",
        ),
    ];
    for (new, what) in cases {
        let err = store
            .run_blocking(|c| users::insert(c, &acme, &new, T0))
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert!(
            err.to_string().contains(what),
            "{err} should mention {what}"
        );
    }
    // The same identifiers are free in another tenant.
    store
        .run_blocking(|c| {
            users::insert(
                c,
                &tid("globex"),
                &user("alice", Some("alice@example.com"), Some("+8613800138000")),
                T0,
            )
        })
        .unwrap();
});

both_backends!(tenants_cannot_read_each_other, |db| {
    let store = migrated(&db);
    let alice = store
        .run_blocking(|c| {
            users::insert(
                c,
                &tid("acme"),
                &user("alice", Some("a@acme.com"), None),
                T0,
            )
        })
        .unwrap();
    assert!(
        store
            .run_blocking(|c| users::find(c, &tid("globex"), &alice.id))
            .unwrap()
            .is_none()
    );
    let login = Login::parse("a@acme.com", None).unwrap();
    assert!(
        store
            .run_blocking(|c| users::find_by_login(c, &tid("globex"), &login))
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .run_blocking(|c| users::find_by_login(c, &tid("acme"), &login))
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .run_blocking(|c| users::list(c, &tid("globex"), 10, 0))
            .unwrap()
            .is_empty()
    );
    let err = store
        .run_blocking(|c| users::set_status(c, &tid("globex"), &alice.id, UserStatus::Disabled, T0))
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)));
});

both_backends!(user_lifecycle_and_unlock, |db| {
    let store = migrated(&db);
    let acme = tid("acme");
    let u = store
        .run_blocking(|c| users::insert(c, &acme, &user("bob", None, None), T0))
        .unwrap();
    store
        .run_blocking(|c| users::set_password(c, &acme, &u.id, "$argon2id$x", true, T0.plus(5)))
        .unwrap();
    store
        .run_blocking(|c| users::set_status(c, &acme, &u.id, UserStatus::Locked, T0))
        .unwrap();
    store
        .run_blocking(|c| users::unlock(c, &acme, &u.id, T0))
        .unwrap();
    let u = store
        .run_blocking(|c| users::find(c, &acme, &u.id))
        .unwrap()
        .unwrap();
    assert_eq!(u.status, UserStatus::Active);
    assert!(u.has_password && u.must_change_password);
    assert_eq!(u.password_changed_at, Some(T0.plus(5)));
    assert_eq!(
        store
            .run_blocking(|c| users::password_hash(c, &acme, &u.id))
            .unwrap()
            .as_deref(),
        Some("$argon2id$x")
    );
});

both_backends!(
    key_rotation_publishes_before_signing_and_retires_later,
    |db| {
        let store = migrated(&db);
        let acme = tid("acme");
        let master = MasterKey::generate();
        let generated = store
            .run_blocking(|c| Ok(keys::ensure(c, &master, &acme, 2048, T0)?))
            .unwrap();
        assert_eq!(
            generated, 10,
            "active + next for RS256, PS256, ES256, EdDSA and SAML"
        );
        let before = store.run_blocking(|c| key_store::list(c, &acme)).unwrap();
        let next_rs = before
            .iter()
            .find(|k| k.alg == "RS256" && k.state == KeyState::Next)
            .unwrap()
            .kid
            .clone();
        let active_rs = before
            .iter()
            .find(|k| k.alg == "RS256" && k.state == KeyState::Active)
            .unwrap()
            .kid
            .clone();

        let policy = keys::RotationPolicy {
            rsa_bits: 2048,
            retire_grace: 600,
            min_next_age: 310,
        };
        // Too soon: relying parties may not have fetched the next key yet. Nothing changes.
        let err = store
            .run_blocking(|c| {
                Ok(keys::rotate(
                    c,
                    &master,
                    &acme,
                    KeyKind::Jws(Alg::RS256),
                    &policy,
                    T0.plus(10),
                )?)
            })
            .unwrap_err();
        assert!(err.to_string().contains("may not have fetched it"), "{err}");
        assert_eq!(
            store
                .run_blocking(|c| key_store::list(c, &acme))
                .unwrap()
                .len(),
            10
        );

        let r = store
            .run_blocking(|c| {
                Ok(keys::rotate(
                    c,
                    &master,
                    &acme,
                    KeyKind::Jws(Alg::RS256),
                    &policy,
                    T0.plus(400),
                )?)
            })
            .unwrap();
        assert_eq!(
            r.activated, next_rs,
            "the key that was already published is the one that starts signing"
        );
        assert_eq!(r.retired.as_deref(), Some(active_rs.as_str()));
        let after = store.run_blocking(|c| key_store::list(c, &acme)).unwrap();
        let ring = keys::Keyring::load(&acme, &after, &master, T0.plus(400)).unwrap();
        let kids: Vec<&str> = ring.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert!(
            kids.contains(&active_rs.as_str()),
            "retired key still published"
        );
        assert!(
            kids.contains(&r.next.as_str()),
            "new next key published before use"
        );
        assert_eq!(ring.active(Alg::RS256).unwrap().kid, next_rs);
        // Once its tokens can no longer be valid the retired key leaves the JWKS, and the next
        // rotation deletes it.
        let later = keys::Keyring::load(&acme, &after, &master, T0.plus(1001)).unwrap();
        assert!(
            !later.jwks()["keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kid"] == active_rs.as_str())
        );
        store
            .run_blocking(|c| {
                Ok(keys::rotate(
                    c,
                    &master,
                    &acme,
                    KeyKind::Jws(Alg::RS256),
                    &policy,
                    T0.plus(1100),
                )?)
            })
            .unwrap();
        let final_keys = store.run_blocking(|c| key_store::list(c, &acme)).unwrap();
        assert!(!final_keys.iter().any(|k| k.kid == active_rs));
        // Private keys are stored encrypted: no PEM in the column.
        assert!(
            final_keys
                .iter()
                .all(|k| !String::from_utf8_lossy(&k.private_key).contains("PRIVATE KEY"))
        );
    }
);

both_backends!(a_failing_migration_leaves_nothing_half_applied, |db| {
    let store = db.store();
    store.run_blocking(migrate::run_pending).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Copy the real migrations, then add one whose second statement fails.
    let real = if db.is_postgres {
        "migrations/postgres"
    } else {
        "migrations/sqlite"
    };
    for entry in std::fs::read_dir(real).unwrap() {
        let entry = entry.unwrap();
        let target = dir.path().join(entry.file_name());
        std::fs::create_dir_all(&target).unwrap();
        for f in std::fs::read_dir(entry.path()).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), target.join(f.file_name())).unwrap();
        }
    }
    let bad = dir.path().join("2099-01-01-000000_broken");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("up.sql"),
        "CREATE TABLE half_applied (id TEXT);\nINSERT INTO no_such_table VALUES (1);\n",
    )
    .unwrap();
    std::fs::write(bad.join("down.sql"), "DROP TABLE half_applied;\n").unwrap();
    let source = diesel_migrations::FileBasedMigrations::from_path(dir.path()).unwrap();
    let err = store
        .run_blocking(|c| migrate::run_pending_from(c, source))
        .unwrap_err();
    assert!(matches!(err, StoreError::Migration(_)), "{err:?}");
    let exists = store.run_blocking(|c| {
        use diesel::RunQueryDsl;
        Ok::<_, StoreError>(
            diesel::sql_query("SELECT id FROM half_applied")
                .execute(c)
                .is_ok(),
        )
    });
    assert!(
        !exists.unwrap(),
        "the failed migration's first statement was rolled back"
    );
});

/// The twin folders must name the same migrations with the same text, except BLOB/BYTEA and blocks
/// marked `-- backend-specific begin` … `-- backend-specific end` (such as SQLite's table rebuild
/// where PostgreSQL adds a constraint); the drift test checks that both still produce the same
/// tables and columns.
#[test]
fn migration_folders_name_the_same_migrations() {
    let names = |dir: &str| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("migrations/sqlite"), names("migrations/postgres"));
    for name in names("migrations/sqlite") {
        for file in ["up.sql", "down.sql"] {
            let lite = std::fs::read_to_string(format!("migrations/sqlite/{name}/{file}")).unwrap();
            let pg = std::fs::read_to_string(format!("migrations/postgres/{name}/{file}")).unwrap();
            let normalize = |s: &str| {
                let mut out = String::new();
                let mut rest = s;
                while let Some(start) = rest.find("-- backend-specific begin") {
                    out.push_str(&rest[..start]);
                    let end = start
                        + rest[start..]
                            .find("-- backend-specific end")
                            .expect("an unterminated backend-specific block");
                    let line_end = rest[end..].find('\n').map_or(rest.len(), |n| end + n + 1);
                    rest = &rest[line_end..];
                }
                out.push_str(rest);
                out.replace("BYTEA", "BLOB")
            };
            assert_eq!(
                normalize(&lite),
                normalize(&pg),
                "{name}/{file} differs beyond BLOB/BYTEA"
            );
        }
    }
}

/// A PostgreSQL connection caches generic plans only once the hot tables have statistics under
/// which their unique keys win: a generic plan cached while `refresh_tokens` was nearly empty once
/// read every refresh token of the tenant to find one by hash.
#[test]
fn postgres_connections_cache_plans_only_once_the_hot_tables_have_statistics() {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sql_types::Text;
    use sesame::store::conn::Conn;
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        plan_cache_mode: String,
    }
    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        text: String,
    }
    fn pg(c: &mut Conn) -> &mut diesel::PgConnection {
        match c {
            Conn::Postgres(c) => c,
            Conn::Sqlite(_) => unreachable!("a PostgreSQL store"),
        }
    }
    let mode = |store: &Store| {
        store
            .run_blocking(|c| {
                Ok(diesel::sql_query("SHOW plan_cache_mode")
                    .get_result::<Setting>(pg(c))
                    .map_err(StoreError::from)?
                    .plan_cache_mode)
            })
            .unwrap()
    };
    // The generic plan of a lookup by each hot table's unique key, on one connection.
    let generic_plans = |store: &Store| {
        store
            .run_blocking(|c| {
                let c = pg(c);
                c.batch_execute(
                    "SET plan_cache_mode = force_generic_plan; \
                     PREPARE rt(bytea, text, text, bigint) AS UPDATE refresh_tokens \
                       SET rotated_at = $4 WHERE hash = $1 AND tenant_id = $2 AND client_id = $3 \
                       AND rotated_at IS NULL AND revoked_at IS NULL \
                       AND expires_at > $4 AND family_expires_at > $4; \
                     PREPARE s(bytea, text, bigint) AS SELECT sid FROM sso_sessions \
                       WHERE cookie_hash = $1 AND tenant_id = $2 AND revoked_at IS NULL \
                       AND idle_expires_at > $3 AND absolute_expires_at > $3; \
                     PREPARE live(text, text, bigint) AS SELECT 1 FROM sso_sessions \
                       WHERE tenant_id = $1 AND sid = $2 AND revoked_at IS NULL \
                       AND idle_expires_at > $3 AND absolute_expires_at > $3 FOR SHARE",
                )?;
                let mut plans = Vec::new();
                for q in [
                    "EXPLAIN EXECUTE rt('\\x00', 'acme', 'crm', 1)",
                    "EXPLAIN EXECUTE s('\\x00', 'acme', 1)",
                    "EXPLAIN EXECUTE live('acme', 's1', 1)",
                ] {
                    let lines = diesel::sql_query(q).load::<Line>(c)?;
                    plans.push(
                        lines
                            .into_iter()
                            .map(|l| l.text)
                            .collect::<Vec<_>>()
                            .join("\n"),
                    );
                }
                c.batch_execute("DEALLOCATE ALL; RESET plan_cache_mode")?;
                Ok(plans)
            })
            .unwrap()
    };
    let Some(db) = crate::support::TestDb::postgres() else {
        eprintln!("skipped: SESAME_TEST_DATABASE_URL is not set");
        return;
    };
    let young = db.store();
    young.run_blocking(migrate::run_pending).unwrap();
    assert_eq!(mode(&young), "force_custom_plan");
    young
        .run_blocking(|c| {
            pg(c).batch_execute(
                "INSERT INTO tenants (id, display_name, status, created_at, updated_at) \
                   VALUES ('acme', 'Acme', 'active', 0, 0); \
                 INSERT INTO users (tenant_id, id, display_name, status, created_at, updated_at) \
                   SELECT 'acme', 'u' || i, 'U', 'active', 0, 0 FROM generate_series(1, 50) i; \
                 INSERT INTO sso_sessions (cookie_hash, tenant_id, sid, user_id, auth_time, \
                     created_at, last_seen_at, idle_expires_at, absolute_expires_at) \
                   SELECT sha256(i::text::bytea), 'acme', 's' || i, 'u' || (i % 50 + 1), 0, 0, 0, \
                     9, 9 FROM generate_series(1, 1200) i; \
                 INSERT INTO refresh_tokens (hash, tenant_id, family_id, client_id, user_id, \
                     scope, created_at, expires_at, family_expires_at) \
                   SELECT sha256(i::text::bytea), 'acme', 'f' || (i % 300), 'crm', \
                     'u' || (i % 50 + 1), 'openid', 0, 9, 9 FROM generate_series(1, 1200) i; \
                 ANALYZE refresh_tokens, sso_sessions",
            )?;
            Ok(())
        })
        .unwrap();
    let grown = db.store();
    assert_eq!(mode(&grown), "auto");
    let plans = generic_plans(&grown);
    let keys = [
        "refresh_tokens_pkey",
        "sso_sessions_pkey",
        "sso_sessions_sid_unique",
    ];
    for (plan, key) in plans.iter().zip(keys) {
        assert!(plan.contains(key), "{plan}");
    }
}

#[tokio::test]
async fn migrated_schemas_match_across_backends() {
    let Some(pg) = crate::support::TestDb::postgres() else {
        eprintln!("skipped: SESAME_TEST_DATABASE_URL is not set");
        return;
    };
    let lite = crate::support::TestDb::sqlite();
    let a = schema_of(&lite.store());
    let b = schema_of(&pg.store());
    assert_eq!(a, b);
    assert!(a.len() > 50, "saw the whole schema: {}", a.len());
}

/// (table, column, type family, not null, primary key) for every column.
fn schema_of(store: &Store) -> std::collections::BTreeSet<(String, String, String, bool, bool)> {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};
    #[derive(QueryableByName)]
    struct Col {
        #[diesel(sql_type = Text)]
        t: String,
        #[diesel(sql_type = Text)]
        c: String,
        #[diesel(sql_type = Text)]
        ty: String,
        #[diesel(sql_type = BigInt)]
        nn: i64,
        #[diesel(sql_type = BigInt)]
        pk: i64,
    }
    store.run_blocking(migrate::run_pending).unwrap();
    let sql = if store.kind() == sesame::config::DatabaseKind::Sqlite {
        "SELECT m.name AS t, p.name AS c, p.type AS ty, CAST(p.\"notnull\" AS BIGINT) AS nn, CAST(p.pk > 0 AS BIGINT) AS pk \
         FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name != '__diesel_schema_migrations'"
    } else {
        "SELECT c.table_name::text AS t, c.column_name::text AS c, c.data_type::text AS ty, \
         CAST(c.is_nullable = 'NO' AS INT)::BIGINT AS nn, \
         CAST(EXISTS (SELECT 1 FROM information_schema.key_column_usage k JOIN information_schema.table_constraints tc \
            ON tc.constraint_name = k.constraint_name AND tc.table_schema = k.table_schema \
            WHERE tc.constraint_type = 'PRIMARY KEY' AND k.table_name = c.table_name AND k.column_name = c.column_name \
            AND k.table_schema = c.table_schema) AS INT)::BIGINT AS pk \
         FROM information_schema.columns c WHERE c.table_schema = current_schema() AND c.table_name != '__diesel_schema_migrations'"
    };
    let rows: Vec<Col> = store
        .run_blocking(|c| Ok(diesel::sql_query(sql).load(c)?))
        .unwrap();
    rows.into_iter()
        .map(|r| {
            let family = match r.ty.to_lowercase().as_str() {
                "text" => "text",
                "bigint" => "bigint",
                "integer" => "integer",
                "boolean" => "bool",
                "blob" | "bytea" => "binary",
                other => panic!("unexpected column type {other} in {}.{}", r.t, r.c),
            };
            // SQLite reports primary-key columns as nullable.
            (
                r.t,
                r.c,
                family.to_string(),
                r.nn == 1 || r.pk == 1,
                r.pk == 1,
            )
        })
        .collect()
}

/// The write-ahead log is cut back when it starts over, so a burst of writes leaves no file of
/// hundreds of megabytes behind.
#[test]
fn sqlite_connections_bound_the_write_ahead_log_file() {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Limit {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        journal_size_limit: i64,
    }
    let store = migrated(&crate::support::TestDb::sqlite());
    let limits: Vec<Limit> = store
        .run_blocking(|c| Ok(diesel::sql_query("PRAGMA journal_size_limit").load(c)?))
        .unwrap();
    assert_eq!(limits[0].journal_size_limit, 64 << 20);
}

/// A new SQLite database is made with 1 KiB pages, so a commit writes less to the log; one made
/// before keeps its page size.
#[test]
fn new_sqlite_databases_have_small_pages_and_old_ones_keep_theirs() {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct PageSize {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        page_size: i64,
    }
    let page_size = |store: &Store| {
        let sizes: Vec<PageSize> = store
            .run_blocking(|c| Ok(diesel::sql_query("PRAGMA page_size").load(c)?))
            .unwrap();
        sizes[0].page_size
    };
    let store = migrated(&crate::support::TestDb::sqlite());
    assert_eq!(page_size(&store), 1024);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let mut c = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        diesel::connection::SimpleConnection::batch_execute(
            &mut c,
            "PRAGMA page_size = 4096; CREATE TABLE t (x INTEGER);",
        )
        .unwrap();
    }
    let old = Store::open(&format!("sqlite://{}", path.display()), 1, 5).unwrap();
    assert_eq!(page_size(&old), 4096);
}

// Access-token revocations are read per tenant, a later revocation moves the moment on, and the
// sweep removes only those older than its horizon.
both_backends!(access_revocations_are_read_per_tenant_and_swept, |db| {
    use sesame::store::access_revocations::{self, Issued, Revoke};
    let store = migrated(&db);
    let issued = |at: i64| Issued {
        jti: Some("g1.t1"),
        grant: Some("g1"),
        user: Some("u1"),
        client: Some("crm"),
        session: Some("s1"),
        issued_at: at,
    };
    let record = |t: &str, what: Revoke<'static>, at: i64| {
        let t = tid(t);
        store
            .run_blocking(move |c| {
                access_revocations::record(c, &t, what, sesame::clock::UnixTime(at))
            })
            .unwrap()
    };
    record("acme", Revoke::Grant("g1"), 100);
    record("acme", Revoke::Grant("g1"), 200);
    // One that commits late with an earlier moment does not move it back.
    record("acme", Revoke::Grant("g1"), 150);
    record(
        "acme",
        Revoke::UserClient {
            user: "u1",
            client: "crm",
        },
        50,
    );
    record("globex", Revoke::User("u1"), 300);
    let load = |t: &str| {
        let t = tid(t);
        store
            .run_blocking(move |c| {
                access_revocations::load(c, &t, None, sesame::clock::UnixTime(400))
            })
            .unwrap()
    };
    let acme = load("acme");
    assert_eq!(acme.read_at(), Some(sesame::clock::UnixTime(400)));
    assert!(
        acme.revokes(&issued(200)),
        "moved on to the later revocation"
    );
    assert!(!acme.revokes(&issued(201)));
    assert!(
        load("globex").revokes(&issued(300)),
        "globex revoked the user"
    );
    assert!(
        !acme.revokes(&issued(250)),
        "another tenant's revocation is its own"
    );

    // A node that holds them up to some moment reads only what came since.
    let since = store
        .run_blocking(|c| {
            access_revocations::load(
                c,
                &tid("acme"),
                Some(sesame::clock::UnixTime(60)),
                sesame::clock::UnixTime(400),
            )
        })
        .unwrap();
    assert!(since.revokes(&issued(200)), "the grant's, moved to 200");
    let other_grant = Issued {
        grant: None,
        ..issued(40)
    };
    assert!(
        load("acme").revokes(&other_grant),
        "the user-client revocation made at 50"
    );
    assert!(!since.revokes(&other_grant), "read before 60: not again");

    let swept = store
        .run_blocking(|c| access_revocations::sweep(c, sesame::clock::UnixTime(150)))
        .unwrap();
    assert_eq!(swept, 1, "only the user-client revocation made at 50");
    let acme = load("acme");
    assert!(acme.revokes(&issued(150)), "the grant's stays");
    assert!(!acme.revokes(&issued(201)));
});
