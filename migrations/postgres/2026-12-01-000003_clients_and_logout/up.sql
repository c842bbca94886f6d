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
DELETE FROM refresh_tokens r
WHERE NOT EXISTS (SELECT 1 FROM oidc_clients c WHERE c.tenant_id = r.tenant_id AND c.client_id = r.client_id)
   OR (r.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = r.tenant_id AND u.id = r.user_id));
ALTER TABLE refresh_tokens ADD CONSTRAINT refresh_tokens_client_fk
    FOREIGN KEY (tenant_id, client_id) REFERENCES oidc_clients (tenant_id, client_id) ON DELETE CASCADE;
ALTER TABLE refresh_tokens ADD CONSTRAINT refresh_tokens_user_fk
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE;
-- backend-specific end
