DROP TABLE trial_applications;
DROP TABLE sign_in_origins;
DROP TABLE agreement_acceptances;
DROP TABLE password_history;
DROP TABLE outbox;
DROP TABLE verification_codes;
ALTER TABLE users DROP COLUMN last_failed_at;
