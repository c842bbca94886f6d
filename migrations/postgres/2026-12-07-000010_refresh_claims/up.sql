-- The `claims` request (OIDC Core §5.5) of the sign-in a refresh-token family started with, as
-- JSON, so that tokens issued on a refresh carry the claims it asked for, as the first ones did
-- (§12.2). Families started before this column existed read as no request.
ALTER TABLE refresh_tokens ADD COLUMN claims TEXT;
