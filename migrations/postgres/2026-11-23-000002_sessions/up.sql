-- Sign-in state: login flows, browser SSO sessions, refresh-token families, consents and used
-- client-assertion ids. Shared types only, as in the foundation migration.

-- A sign-in that a protocol started (OIDC authorize, SAML AuthnRequest, account page): the pending
-- request, what it requires, and which steps are done. `version` makes concurrent steps (two tabs,
-- two nodes) detectable: an update names the version it read.
CREATE TABLE login_flows (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    protocol TEXT NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT '{}',
    user_id TEXT,
    version INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX login_flows_expiry ON login_flows (expires_at);

-- The browser's SSO session. The cookie value is stored only as a hash; `sid` is the public id
-- used in ID tokens and logout, never the cookie.
CREATE TABLE sso_sessions (
    cookie_hash BYTEA PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL,
    sid TEXT NOT NULL,
    user_id TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL DEFAULT '[]',
    acr TEXT,
    remember BOOLEAN NOT NULL DEFAULT FALSE,
    user_agent TEXT,
    ip TEXT,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    absolute_expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    CONSTRAINT sso_sessions_sid_unique UNIQUE (tenant_id, sid),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX sso_sessions_user ON sso_sessions (tenant_id, user_id);
CREATE INDEX sso_sessions_expiry ON sso_sessions (absolute_expires_at);

-- Opaque refresh tokens, stored as hashes. Every rotation adds a token to the same family; a
-- rotated token presented again revokes the whole family (RFC 9700 §4.14.2).
CREATE TABLE refresh_tokens (
    hash BYTEA PRIMARY KEY NOT NULL,
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
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (tenant_id, user_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (family_expires_at);

-- What a user granted a third-party client, so consent is asked once and can be revoked.
CREATE TABLE consents (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, client_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, client_id) REFERENCES oidc_clients (tenant_id, client_id) ON DELETE CASCADE
);

-- `jti` values of client assertions (private_key_jwt) already accepted, until they expire.
CREATE TABLE used_jtis (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, client_id, jti)
);
CREATE INDEX used_jtis_expiry ON used_jtis (expires_at);
