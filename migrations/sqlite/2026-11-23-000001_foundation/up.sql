-- Foundation schema. Shared types only (TEXT ids, BIGINT Unix seconds, BOOLEAN, BINARY hashes,
-- JSON as TEXT) so one diesel query serves SQLite and PostgreSQL. Every tenant-owned row carries
-- tenant_id and is keyed by it.

CREATE TABLE meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id TEXT PRIMARY KEY NOT NULL,
    display_name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'trial', 'suspended')),
    trial_expires_at BIGINT,
    branding TEXT NOT NULL DEFAULT '{}',
    settings TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE tenant_hosts (
    host TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE
);
CREATE INDEX tenant_hosts_tenant ON tenant_hosts (tenant_id);

CREATE TABLE departments (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    parent_id TEXT,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, parent_id) REFERENCES departments (tenant_id, id)
);

CREATE TABLE users (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    username TEXT,
    email TEXT,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    phone TEXT,
    phone_verified BOOLEAN NOT NULL DEFAULT FALSE,
    display_name TEXT NOT NULL,
    department_id TEXT,
    employee_no TEXT,
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'locked', 'pending')),
    password_hash TEXT,
    must_change_password BOOLEAN NOT NULL DEFAULT FALSE,
    password_changed_at BIGINT,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until BIGINT,
    locale TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_login_at BIGINT,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT users_username_unique UNIQUE (tenant_id, username),
    CONSTRAINT users_email_unique UNIQUE (tenant_id, email),
    CONSTRAINT users_phone_unique UNIQUE (tenant_id, phone),
    FOREIGN KEY (tenant_id, department_id) REFERENCES departments (tenant_id, id)
);

CREATE TABLE apps (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Who may use an app, per channel: web clients check 'web', mobile clients 'mobile'.
-- subject_kind 'department' includes the department's sub-departments; 'everyone' uses subject_id '*'.
CREATE TABLE app_access (
    tenant_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('web', 'mobile')),
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('everyone', 'department', 'user', 'role')),
    subject_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, app_id, channel, subject_kind, subject_id),
    FOREIGN KEY (tenant_id, app_id) REFERENCES apps (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE app_admins (
    tenant_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, app_id, user_id),
    FOREIGN KEY (tenant_id, app_id) REFERENCES apps (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- A role belongs to one app (delivered to that app's clients as claims) or, with app_id NULL,
-- to the whole tenant.
CREATE TABLE roles (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    app_id TEXT,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, app_id) REFERENCES apps (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE user_roles (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, role_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id) ON DELETE CASCADE
);

-- Lifetimes left NULL fall back to the server's `tokens.*` defaults.
CREATE TABLE oidc_clients (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    app_id TEXT,
    name TEXT NOT NULL,
    secret_hash BLOB,
    redirect_uris TEXT NOT NULL DEFAULT '[]',
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]',
    grant_types TEXT NOT NULL DEFAULT '[]',
    token_endpoint_auth_method TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('web', 'mobile')),
    first_party BOOLEAN NOT NULL DEFAULT FALSE,
    access_token_lifetime BIGINT,
    id_token_lifetime BIGINT,
    refresh_token_lifetime BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, client_id),
    FOREIGN KEY (tenant_id, app_id) REFERENCES apps (tenant_id, id) ON DELETE CASCADE
);

-- Private keys are AES-256-GCM ciphertext under the master key.
CREATE TABLE signing_keys (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kid TEXT NOT NULL,
    alg TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    public_jwk TEXT NOT NULL,
    private_key BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    activated_at BIGINT,
    retired_at BIGINT,
    publish_until BIGINT,
    PRIMARY KEY (tenant_id, kid)
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (tenant_id, alg) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (tenant_id, alg) WHERE state = 'next';

CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    outcome TEXT NOT NULL,
    ip TEXT,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_tenant_at ON audit_events (tenant_id, at);

-- Every hashed, expiring, single-use artifact (codes, reset links, QR tokens, ...); consumed by
-- one UPDATE ... WHERE consumed_at IS NULL AND expires_at > now RETURNING.
CREATE TABLE one_time_tokens (
    hash BLOB PRIMARY KEY NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX one_time_tokens_expiry ON one_time_tokens (expires_at);
