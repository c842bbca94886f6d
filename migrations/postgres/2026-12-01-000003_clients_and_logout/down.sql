DROP TABLE session_clients;
ALTER TABLE oidc_clients DROP COLUMN allowed_resources;
ALTER TABLE oidc_clients DROP COLUMN allowed_scopes;
ALTER TABLE oidc_clients DROP COLUMN id_token_signed_response_alg;
ALTER TABLE oidc_clients DROP COLUMN backchannel_logout_uri;
ALTER TABLE oidc_clients DROP COLUMN jwks_uri;
ALTER TABLE oidc_clients DROP COLUMN jwks;
-- backend-specific begin
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_user_fk;
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_client_fk;
-- backend-specific end
