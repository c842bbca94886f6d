-- Access tokens are signed JWTs that UserInfo and introspection accept without a query; these
-- rows revoke them before they expire. Each row revokes the access tokens issued at or before
-- `revoked_at` of one token (`kind` 'token', `id` its `jti`), of one grant (`kind` 'grant', `id`
-- the refresh-token family a code redemption starts), of one user (`kind` 'user'), of one user at
-- one client (`kind` 'user_client', `id` the client id and the user id joined by a newline) or of
-- one browser session (`kind` 'session', `id` its `sid`).
-- Every node reads its tenant's rows with the tenant's keys; rows older than the longest access
-- token lifetime revoke nothing any more and are swept.
CREATE TABLE access_revocations (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, id)
);
CREATE INDEX access_revocations_age ON access_revocations (revoked_at);
