ALTER TABLE refresh_tokens DROP COLUMN acr;
ALTER TABLE refresh_tokens DROP COLUMN amr;
