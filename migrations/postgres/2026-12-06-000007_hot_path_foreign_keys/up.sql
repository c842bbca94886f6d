-- Rows written on every refresh (refresh_tokens) and every code redemption, SAML request and
-- client assertion (used_jtis) lose their foreign keys to tenants, clients and users. On PostgreSQL
-- a foreign key check locks the parent row (FOR KEY SHARE), and concurrent checks of the same row,
-- one tenant or one client for all of its users, share that lock through multixacts: without them
-- refreshes ran 16 % and SAML responses 12 % faster on PostgreSQL (docs/performance.md). What the
-- cascades did is done by the store: removing a client removes its refresh tokens
-- (store::clients::remove); users and tenants are never deleted, only disabled. Both backends
-- drop them, so both behave alike.
-- backend-specific begin: how each backend drops foreign keys.
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_tenant_id_fkey;
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_client_fk;
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_user_fk;
ALTER TABLE used_jtis DROP CONSTRAINT used_jtis_tenant_id_fkey;
-- backend-specific end
