-- Client settings for private_key_jwt (a JWK Set by value or by URI), back-channel logout, the ID
-- token algorithm, and what a client may ask for beyond the user scopes; which clients each SSO
-- session signed into, so logout can reach them; and foreign keys that take a removed client's or
-- user's refresh tokens with them.
ALTER TABLE oidc_clients ADD COLUMN jwks TEXT;
ALTER TABLE oidc_clients ADD COLUMN jwks_uri TEXT;
ALTER TABLE oidc_clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE oidc_clients ADD COLUMN id_token_signed_response_alg TEXT;
ALTER TABLE oidc_clients ADD COLUMN allowed_scopes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE oidc_clients ADD COLUMN allowed_resources TEXT NOT NULL DEFAULT '[]';

CREATE TABLE session_clients (
    tenant_id TEXT NOT NULL,
    sid TEXT NOT NULL,
    client_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, sid, client_id),
    FOREIGN KEY (tenant_id, sid) REFERENCES sso_sessions (tenant_id, sid) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, client_id) REFERENCES oidc_clients (tenant_id, client_id) ON DELETE CASCADE
);

-- backend-specific begin: how each backend adds foreign keys to refresh_tokens.
-- SQLite cannot add a foreign key to a table: rebuild refresh_tokens with them, keeping only rows
-- whose client and user still exist.
CREATE TABLE refresh_tokens_new (
    hash BLOB PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
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
    revoked_at BIGINT,
    FOREIGN KEY (tenant_id, client_id) REFERENCES oidc_clients (tenant_id, client_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
INSERT INTO refresh_tokens_new
SELECT r.hash, r.tenant_id, r.family_id, r.client_id, r.user_id, r.sid, r.scope, r.auth_time,
       r.created_at, r.expires_at, r.family_expires_at, r.rotated_at, r.revoked_at
FROM refresh_tokens r
WHERE EXISTS (SELECT 1 FROM oidc_clients c WHERE c.tenant_id = r.tenant_id AND c.client_id = r.client_id)
  AND (r.user_id IS NULL OR EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = r.tenant_id AND u.id = r.user_id));
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_new RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (tenant_id, user_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (family_expires_at);
-- backend-specific end
