-- The sign-in page: one-time verification codes (sign-in by code, password reset, later binding
-- an email or a mobile number), the development outbox of messages, previous password hashes for
-- the password policy's history, and when an account last failed a password, so a run of
-- failures is forgotten after a while like an unknown account's is.
ALTER TABLE users ADD COLUMN last_failed_at BIGINT;

-- A code sent to a destination (an email address or an E.164 number). Only a keyed digest of the
-- code is stored. A row is written for a destination that belongs to no account too (user_id
-- NULL, nothing sent), so cooldowns and caps answer alike whether or not the account exists.
CREATE TABLE verification_codes (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    destination TEXT NOT NULL,
    user_id TEXT,
    context TEXT NOT NULL,
    code_hash BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    ip TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX verification_codes_destination ON verification_codes (tenant_id, destination, created_at);
CREATE INDEX verification_codes_user ON verification_codes (tenant_id, user_id, created_at);
CREATE INDEX verification_codes_ip ON verification_codes (tenant_id, ip, created_at);
CREATE INDEX verification_codes_expiry ON verification_codes (expires_at);

-- Messages the outbox driver keeps instead of sending (development and the demo).
CREATE TABLE outbox (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    destination TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX outbox_recent ON outbox (tenant_id, created_at);

-- Hashes of a user's previous passwords (argon2, like the current one), newest kept only as many
-- as the tenant's password policy compares a new password with.
CREATE TABLE password_history (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX password_history_user ON password_history (tenant_id, user_id, created_at);

-- Who accepted which version of the tenant's Service Agreement and Privacy Policy, when, and
-- from where. A new version (setting `agreement_version`) is asked for again.
CREATE TABLE agreement_acceptances (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    version TEXT NOT NULL,
    accepted_at BIGINT NOT NULL,
    ip TEXT,
    PRIMARY KEY (tenant_id, user_id, version),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- Where a user signed in from: browsers (a digest of the browser's cookie) and networks (a digest
-- of the /24 or /48 prefix). A sign-in from one not seen before sends a login alert.
CREATE TABLE sign_in_origins (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    value_hash BLOB NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, kind, value_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- Applications for a free trial, made on the platform's default tenant; a platform
-- administrator approves one with `sesame tenant approve ID`, which creates its tenant.
CREATE TABLE trial_applications (
    id TEXT PRIMARY KEY NOT NULL,
    company TEXT NOT NULL,
    contact_name TEXT NOT NULL,
    phone TEXT NOT NULL,
    email TEXT NOT NULL,
    locale TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved')),
    tenant_id TEXT,
    ip TEXT,
    created_at BIGINT NOT NULL,
    decided_at BIGINT
);
CREATE INDEX trial_applications_created ON trial_applications (created_at);
