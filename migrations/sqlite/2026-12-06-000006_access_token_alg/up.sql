-- The access token's signing algorithm per client (ES256 when unset).
ALTER TABLE oidc_clients ADD COLUMN access_token_signed_response_alg TEXT;
