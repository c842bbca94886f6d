-- Rows written on every refresh (refresh_tokens) and every code redemption, SAML request and
-- client assertion (used_jtis) lose their foreign keys to tenants, clients and users. On PostgreSQL
-- a foreign key check locks the parent row (FOR KEY SHARE), and concurrent checks of the same row,
-- one tenant or one client for all of its users, share that lock through multixacts: without them
-- refreshes ran 16 % and SAML responses 12 % faster on PostgreSQL (docs/performance.md). What the
-- cascades did is done by the store: removing a client removes its refresh tokens
-- (store::clients::remove); users and tenants are never deleted, only disabled. Both backends
-- drop them, so both behave alike.
-- backend-specific begin: how each backend drops foreign keys.
-- SQLite cannot drop a foreign key: rebuild both tables without them.
CREATE TABLE refresh_tokens_new (
    hash BLOB PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL,
    family_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT,
    sid TEXT,
    scope TEXT NOT NULL,
    auth_time BIGINT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    family_expires_at BIGINT NOT NULL,
    rotated_at BIGINT,
    revoked_at BIGINT
);
INSERT INTO refresh_tokens_new
SELECT hash, tenant_id, family_id, client_id, user_id, sid, scope, auth_time, created_at,
       expires_at, family_expires_at, rotated_at, revoked_at
FROM refresh_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_new RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (tenant_id, user_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (family_expires_at);
CREATE TABLE used_jtis_new (
    tenant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, client_id, jti)
);
INSERT INTO used_jtis_new SELECT tenant_id, client_id, jti, expires_at FROM used_jtis;
DROP TABLE used_jtis;
ALTER TABLE used_jtis_new RENAME TO used_jtis;
CREATE INDEX used_jtis_expiry ON used_jtis (expires_at);
-- backend-specific end
