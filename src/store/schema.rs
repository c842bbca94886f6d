//! diesel's view of the tables in `migrations/`; kept by hand so it names only types both
//! backends share.

diesel::table! {
    meta (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    tenants (id) {
        id -> Text,
        display_name -> Text,
        status -> Text,
        trial_expires_at -> Nullable<BigInt>,
        branding -> Text,
        settings -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    tenant_hosts (host) {
        host -> Text,
        tenant_id -> Text,
    }
}

diesel::table! {
    departments (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        parent_id -> Nullable<Text>,
        name -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    users (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        username -> Nullable<Text>,
        email -> Nullable<Text>,
        email_verified -> Bool,
        phone -> Nullable<Text>,
        phone_verified -> Bool,
        display_name -> Text,
        department_id -> Nullable<Text>,
        employee_no -> Nullable<Text>,
        status -> Text,
        password_hash -> Nullable<Text>,
        must_change_password -> Bool,
        password_changed_at -> Nullable<BigInt>,
        failed_logins -> Integer,
        locked_until -> Nullable<BigInt>,
        locale -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        last_login_at -> Nullable<BigInt>,
        last_failed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    apps (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        name -> Text,
        description -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    app_access (tenant_id, app_id, channel, subject_kind, subject_id) {
        tenant_id -> Text,
        app_id -> Text,
        channel -> Text,
        subject_kind -> Text,
        subject_id -> Text,
    }
}

diesel::table! {
    app_admins (tenant_id, app_id, user_id) {
        tenant_id -> Text,
        app_id -> Text,
        user_id -> Text,
    }
}

diesel::table! {
    roles (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        app_id -> Nullable<Text>,
        name -> Text,
        description -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    user_roles (tenant_id, user_id, role_id) {
        tenant_id -> Text,
        user_id -> Text,
        role_id -> Text,
    }
}

diesel::table! {
    oidc_clients (tenant_id, client_id) {
        tenant_id -> Text,
        client_id -> Text,
        app_id -> Nullable<Text>,
        name -> Text,
        secret_hash -> Nullable<Binary>,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        grant_types -> Text,
        token_endpoint_auth_method -> Text,
        channel -> Text,
        first_party -> Bool,
        access_token_lifetime -> Nullable<BigInt>,
        id_token_lifetime -> Nullable<BigInt>,
        refresh_token_lifetime -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        jwks -> Nullable<Text>,
        jwks_uri -> Nullable<Text>,
        backchannel_logout_uri -> Nullable<Text>,
        id_token_signed_response_alg -> Nullable<Text>,
        allowed_scopes -> Text,
        allowed_resources -> Text,
        access_token_signed_response_alg -> Nullable<Text>,
    }
}

diesel::table! {
    signing_keys (tenant_id, kid) {
        tenant_id -> Text,
        kid -> Text,
        alg -> Text,
        state -> Text,
        public_jwk -> Text,
        private_key -> Binary,
        created_at -> BigInt,
        activated_at -> Nullable<BigInt>,
        retired_at -> Nullable<BigInt>,
        publish_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        tenant_id -> Text,
        at -> BigInt,
        actor -> Text,
        action -> Text,
        target -> Nullable<Text>,
        outcome -> Text,
        ip -> Nullable<Text>,
        details -> Text,
    }
}

diesel::table! {
    one_time_tokens (hash) {
        hash -> Binary,
        tenant_id -> Text,
        kind -> Text,
        subject -> Text,
        payload -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    login_flows (id) {
        id -> Text,
        tenant_id -> Text,
        protocol -> Text,
        request -> Text,
        state -> Text,
        user_id -> Nullable<Text>,
        version -> Integer,
        created_at -> BigInt,
        expires_at -> BigInt,
        completed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    sso_sessions (cookie_hash) {
        cookie_hash -> Binary,
        tenant_id -> Text,
        sid -> Text,
        user_id -> Text,
        auth_time -> BigInt,
        amr -> Text,
        acr -> Nullable<Text>,
        remember -> Bool,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        idle_expires_at -> BigInt,
        absolute_expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    refresh_tokens (hash) {
        hash -> Binary,
        tenant_id -> Text,
        family_id -> Text,
        client_id -> Text,
        user_id -> Nullable<Text>,
        sid -> Nullable<Text>,
        scope -> Text,
        auth_time -> Nullable<BigInt>,
        created_at -> BigInt,
        expires_at -> BigInt,
        family_expires_at -> BigInt,
        rotated_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        amr -> Nullable<Text>,
        acr -> Nullable<Text>,
        claims -> Nullable<Text>,
    }
}

diesel::table! {
    consents (tenant_id, user_id, client_id) {
        tenant_id -> Text,
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        granted_at -> BigInt,
    }
}

diesel::table! {
    access_revocations (tenant_id, kind, id) {
        tenant_id -> Text,
        kind -> Text,
        id -> Text,
        revoked_at -> BigInt,
    }
}

diesel::table! {
    used_jtis (tenant_id, client_id, jti) {
        tenant_id -> Text,
        client_id -> Text,
        jti -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    session_clients (tenant_id, sid, client_id) {
        tenant_id -> Text,
        sid -> Text,
        client_id -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    verification_codes (id) {
        id -> Text,
        tenant_id -> Text,
        purpose -> Text,
        destination -> Text,
        user_id -> Nullable<Text>,
        context -> Text,
        code_hash -> Binary,
        attempts -> Integer,
        ip -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        tenant_id -> Text,
        channel -> Text,
        destination -> Text,
        subject -> Text,
        body -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    password_history (id) {
        id -> Text,
        tenant_id -> Text,
        user_id -> Text,
        hash -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    agreement_acceptances (tenant_id, user_id, version) {
        tenant_id -> Text,
        user_id -> Text,
        version -> Text,
        accepted_at -> BigInt,
        ip -> Nullable<Text>,
    }
}

diesel::table! {
    sign_in_origins (tenant_id, user_id, kind, value_hash) {
        tenant_id -> Text,
        user_id -> Text,
        kind -> Text,
        value_hash -> Binary,
        first_seen_at -> BigInt,
        last_seen_at -> BigInt,
    }
}

diesel::table! {
    trial_applications (id) {
        id -> Text,
        company -> Text,
        contact_name -> Text,
        phone -> Text,
        email -> Text,
        locale -> Text,
        status -> Text,
        tenant_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        created_at -> BigInt,
        decided_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    saml_service_providers (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        entity_id -> Text,
        name -> Text,
        app_id -> Nullable<Text>,
        settings -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    session_service_providers (tenant_id, sid, sp_id) {
        tenant_id -> Text,
        sid -> Text,
        sp_id -> Text,
        name_id -> Text,
        name_id_format -> Text,
        created_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(roles, user_roles);
diesel::allow_tables_to_appear_in_same_query!(session_clients, oidc_clients);
