-- backend-specific begin
DELETE FROM refresh_tokens r
WHERE NOT EXISTS (SELECT 1 FROM oidc_clients c WHERE c.tenant_id = r.tenant_id AND c.client_id = r.client_id)
   OR (r.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = r.tenant_id AND u.id = r.user_id));
DELETE FROM used_jtis j WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = j.tenant_id);
ALTER TABLE refresh_tokens ADD CONSTRAINT refresh_tokens_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;
ALTER TABLE refresh_tokens ADD CONSTRAINT refresh_tokens_client_fk
    FOREIGN KEY (tenant_id, client_id) REFERENCES oidc_clients (tenant_id, client_id) ON DELETE CASCADE;
ALTER TABLE refresh_tokens ADD CONSTRAINT refresh_tokens_user_fk
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE used_jtis ADD CONSTRAINT used_jtis_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;
-- backend-specific end
