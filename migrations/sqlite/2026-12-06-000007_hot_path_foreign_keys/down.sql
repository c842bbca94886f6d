-- backend-specific begin
CREATE TABLE refresh_tokens_old (
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
INSERT INTO refresh_tokens_old
SELECT r.hash, r.tenant_id, r.family_id, r.client_id, r.user_id, r.sid, r.scope, r.auth_time,
       r.created_at, r.expires_at, r.family_expires_at, r.rotated_at, r.revoked_at
FROM refresh_tokens r
WHERE EXISTS (SELECT 1 FROM oidc_clients c WHERE c.tenant_id = r.tenant_id AND c.client_id = r.client_id)
  AND (r.user_id IS NULL OR EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = r.tenant_id AND u.id = r.user_id));
DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_old RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (tenant_id, user_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (family_expires_at);
CREATE TABLE used_jtis_old (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, client_id, jti)
);
INSERT INTO used_jtis_old
SELECT j.tenant_id, j.client_id, j.jti, j.expires_at FROM used_jtis j
WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = j.tenant_id);
DROP TABLE used_jtis;
ALTER TABLE used_jtis_old RENAME TO used_jtis;
CREATE INDEX used_jtis_expiry ON used_jtis (expires_at);
-- backend-specific end
