-- How the user signed in, kept with each refresh token so that an ID token issued on a refresh
-- states the same `amr` and `acr` as the one issued with the code (OIDC Core §12.2: the same rules
-- apply as at the original authentication). `amr` is a JSON array, as in `sessions`; tokens issued
-- before this column existed read as an empty list and no class.
ALTER TABLE refresh_tokens ADD COLUMN amr TEXT;
ALTER TABLE refresh_tokens ADD COLUMN acr TEXT;
