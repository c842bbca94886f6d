-- SAML service providers. Only what is looked up is a column; the rest of an SP's registration
-- (ACS endpoints, certificates, NameID and attribute mapping, signing and encryption choices) is
-- one JSON document that the saml module reads and validates.
CREATE TABLE saml_service_providers (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    name TEXT NOT NULL,
    app_id TEXT,
    settings TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, app_id) REFERENCES apps (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX saml_service_providers_entity ON saml_service_providers (tenant_id, entity_id);

-- The SPs a session signed in to, with the NameID each was given, so Single Logout can name the
-- user to every one of them.
CREATE TABLE session_service_providers (
    tenant_id TEXT NOT NULL,
    sid TEXT NOT NULL,
    sp_id TEXT NOT NULL,
    name_id TEXT NOT NULL,
    name_id_format TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, sid, sp_id),
    FOREIGN KEY (tenant_id, sid) REFERENCES sso_sessions (tenant_id, sid) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, sp_id) REFERENCES saml_service_providers (tenant_id, id) ON DELETE CASCADE
);
