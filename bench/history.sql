-- A PostgreSQL database with some history, as a deployment's would have: 10,000 sessions of one
-- past user, ended but not yet purged, each with a rotated refresh token, their expiries spread
-- over the next two weeks as live rows' are; then fresh statistics. bench/http.sh loads it after
-- importing bench/tenant.toml (HISTORY=0 skips it); a second load adds nothing. Until the hot
-- tables have statistics of some size, Sesame plans every statement with its values (see
-- `store::conn`); with them, it keeps PostgreSQL's cached plans.
INSERT INTO users (tenant_id, id, username, display_name, status, created_at, updated_at)
  VALUES ('bench', 'history', 'history', 'Past user', 'disabled', 0, 0)
  ON CONFLICT DO NOTHING;
INSERT INTO sso_sessions (cookie_hash, tenant_id, sid, user_id, auth_time, created_at,
                          last_seen_at, idle_expires_at, absolute_expires_at, revoked_at)
  SELECT sha256(('session ' || i)::bytea), 'bench', 'history-' || i, 'history', t, t, t,
         t + i * 120, t + i * 120, t
  FROM generate_series(1, 10000) i, (SELECT extract(epoch FROM now())::bigint AS t) now
  ON CONFLICT DO NOTHING;
INSERT INTO refresh_tokens (hash, tenant_id, family_id, client_id, user_id, sid, scope,
                            created_at, expires_at, family_expires_at, rotated_at)
  SELECT sha256(('token ' || i)::bytea), 'bench', 'history-' || i, 'bench-web', 'history',
         'history-' || i, 'openid', t, t + i * 120, t + i * 120, t
  FROM generate_series(1, 10000) i, (SELECT extract(epoch FROM now())::bigint AS t) now
  ON CONFLICT DO NOTHING;
ANALYZE;
