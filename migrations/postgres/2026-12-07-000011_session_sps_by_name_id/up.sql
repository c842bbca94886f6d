-- A Single Logout names the user by the NameID the SP was given: the sessions that gave it are
-- found by it (SessionIndex is per SP, see saml::nameid::session_index).
CREATE INDEX session_service_providers_by_name_id
    ON session_service_providers (tenant_id, sp_id, name_id);
