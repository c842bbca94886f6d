DROP TABLE used_jtis;
DROP TABLE consents;
DROP TABLE refresh_tokens;
DROP TABLE sso_sessions;
DROP TABLE login_flows;
