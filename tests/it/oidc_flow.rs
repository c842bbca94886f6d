//! The browser side of OpenID Connect over real HTTP: authorize, the sign-in page, SSO, consent,
//! per-app access, the code and refresh grants, and UserInfo, with the tokens verified by an
//! independent JWT library against the published JWKS only.

use reqwest::StatusCode;
use serde_json::Value;

use crate::browser::{
    Browser, CRM_SECRET, ISSUER, PARTNER_SECRET, PASSWORD, VERIFIER, WIKI_SECRET, basic, enc,
    hidden, params,
};
use crate::support::both_backends;

both_backends!(
    code_flow_with_pkce_signs_in_and_issues_verified_tokens,
    |db| {
        let b = Browser::new(db).await;
        let login = b.start("crm-web", "https://crm.acme.test/cb", "").await;

        let page = b.get(&login).await;
        assert_eq!(page.status(), 200);
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            csp.contains("form-action 'self' https://crm.acme.test"),
            "{csp}"
        );
        let html = page.text().await.unwrap();
        for needle in [
            "autocomplete=\"username\"",
            "autocomplete=\"current-password\"",
            "name=\"agree\"",
            "Service Agreement",
            "Privacy Policy",
            "Forgot password?",
            "value=\"CN\" selected",
            "Acme &amp; Co",
            "Sign In",
        ] {
            assert!(html.contains(needle), "{needle} missing");
        }

        // A national mobile number with the CN country code selected, spaces and all.
        let r = b.submit(&login, "138 0013 8000", PASSWORD, "").await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("sesame-session-acme="))
            .expect("a session cookie");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        let p = params(r.headers()["location"].to_str().unwrap());
        assert_eq!(p["state"], "st-1");
        assert_eq!(p["iss"], ISSUER);
        let code = p["code"].clone();

        let (status, tokens) = b.redeem(&code).await;
        assert_eq!(status, 200, "{tokens}");
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["scope"], "email openid phone profile");
        assert!(tokens["expires_in"].as_i64().unwrap() > 0);
        let id = b
            .verify(tokens["id_token"].as_str().unwrap(), "crm-web")
            .await;
        assert_eq!(id["nonce"], "n-1");
        assert_eq!(id["amr"], serde_json::json!(["pwd"]));
        // The same class a SAML app is told in its AuthnContextClassRef.
        assert_eq!(id["acr"], sesame::flow::session::CLASS_PASSWORD);
        assert_eq!(id["auth_time"], crate::support::T0.0);
        assert!(id["sid"].is_string());
        assert_eq!(id["roles"], serde_json::json!(["crm:rep"]));
        assert_eq!(id["department"], "hq/sales");
        let at = tokens["access_token"].as_str().unwrap();
        assert_eq!(
            id["at_hash"],
            sesame::oidc::id_token::half_hash(sesame::crypto::keys::Alg::RS256, at)
        );
        let access = b.verify(at, ISSUER).await;
        assert_eq!(access["client_id"], "crm-web");
        assert_eq!(access["sub"], id["sub"]);
        assert_eq!(
            jsonwebtoken::decode_header(at).unwrap().typ.as_deref(),
            Some("at+jwt")
        );

        let info = b.userinfo(at).await;
        assert_eq!(info.status(), 200);
        let info: Value = info.json().await.unwrap();
        assert_eq!(info["sub"], id["sub"]);
        assert_eq!(info["email"], "alice@acme.test");
        assert_eq!(info["phone_number"], "+8613800138000");
        assert_eq!(info["name"], "Alice <b>Liddell</b>");
        assert_eq!(info["employee_no"], "E7");
        assert_eq!(info["tenant"], "acme");

        // Refresh rotates; the rotated token presented again revokes the family.
        let first = tokens["refresh_token"].as_str().unwrap().to_string();
        let crm = basic("crm-web", CRM_SECRET);
        let (status, rotated) = b.refresh(&crm, &first).await;
        assert_eq!(status, 200, "{rotated}");
        let second = rotated["refresh_token"].as_str().unwrap().to_string();
        assert_ne!(first, second);
        let id2 = b
            .verify(rotated["id_token"].as_str().unwrap(), "crm-web")
            .await;
        assert_eq!(id2["auth_time"], id["auth_time"]);
        // OIDC Core §12.2: the same rules as at the sign-in, so the same methods and class.
        assert_eq!((&id2["amr"], &id2["acr"]), (&id["amr"], &id["acr"]));
        assert_eq!(id2["sub"], id["sub"]);
        let (status, narrowed) = b
            .token(
                Some(&crm),
                &format!(
                    "grant_type=refresh_token&refresh_token={}&scope=openid%20admin",
                    enc(&second)
                ),
            )
            .await;
        assert_eq!(
            (status, narrowed["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_scope"))
        );
        // The refused request did not spend the token.
        let (status, again) = b.refresh(&crm, &second).await;
        assert_eq!(status, 200, "{again}");
        let second = again["refresh_token"].as_str().unwrap().to_string();
        let (status, err) = b.refresh(&crm, &first).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
        let (_, err) = b.refresh(&crm, &second).await;
        assert_eq!(
            err["error"], "invalid_grant",
            "reuse revoked the whole family"
        );
        for token in [at, again["access_token"].as_str().unwrap()] {
            assert_eq!(
                b.userinfo(token).await.status(),
                StatusCode::UNAUTHORIZED,
                "and the access tokens issued under it"
            );
        }

        // The code is single use.
        let (status, err) = b.redeem(&code).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
    }
);

both_backends!(a_replayed_code_revokes_the_tokens_it_issued, |db| {
    let b = Browser::new(db).await;
    let cb = "https://crm.acme.test/cb";
    b.sign_in("crm-web", cb, "alice").await;
    // A usual grant travels sealed in its code; one too long for a URL (a large `claims`
    // request) is stored and handed out as 43 random characters. Both are spent once.
    let long = enc(&format!(
        r#"{{"userinfo":{{"email":null,"x_{}":null}}}}"#,
        "a".repeat(3000)
    ));
    for (extra, sealed) in [(String::new(), true), (format!("&claims={long}"), false)] {
        let r = b.get(&Browser::authorize_path("crm-web", cb, &extra)).await;
        let p = params(r.headers()["location"].to_str().unwrap());
        assert_eq!(p["code"].len() > 43, sealed, "{}", p["code"]);
        let (status, tokens) = b.redeem(&p["code"]).await;
        assert_eq!(status, 200, "{tokens}");
        let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
        let access = tokens["access_token"].as_str().unwrap().to_string();
        assert_eq!(b.userinfo(&access).await.status(), StatusCode::OK);
        let (_, err) = b.redeem(&p["code"]).await;
        assert_eq!(err["error"], "invalid_grant");
        let (_, err) = b.refresh(&basic("crm-web", CRM_SECRET), &refresh).await;
        assert_eq!(
            err["error"], "invalid_grant",
            "the first redemption's refresh token is revoked (sealed: {sealed})"
        );
        // RFC 6749 §4.1.2: and its access token.
        assert_eq!(
            b.userinfo(&access).await.status(),
            StatusCode::UNAUTHORIZED,
            "sealed: {sealed}"
        );
        assert_eq!(
            b.introspect(&basic("crm-web", CRM_SECRET), &access).await["active"],
            false
        );
    }
});

// RFC 7009 §2.1: an access token revokes itself; a refresh token revokes its grant, the access
// tokens issued under it included. Another client's revocation revokes nothing.
both_backends!(
    revoked_access_tokens_stop_working_at_userinfo_and_introspection,
    |db| {
        let b = Browser::new(db).await;
        let crm = basic("crm-web", CRM_SECRET);
        let p = b
            .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
            .await;
        let (_, first) = b.redeem(&p["code"]).await;
        let (status, second) = b
            .refresh(&crm, first["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(status, 200, "{second}");
        let (at1, at2) = (
            first["access_token"].as_str().unwrap(),
            second["access_token"].as_str().unwrap(),
        );
        let revoke = |auth: String, token: &str| {
            let body = format!("token={}", enc(token));
            let b = &b;
            async move {
                let r = b
                    .server
                    .client
                    .post(b.server.url("/t/acme/revoke"))
                    .header("authorization", auth)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                r.status()
            }
        };

        // Another client's request is answered alike and revokes nothing.
        assert_eq!(
            revoke(basic("wiki", WIKI_SECRET), at2).await,
            StatusCode::OK
        );
        assert_eq!(b.userinfo(at2).await.status(), StatusCode::OK);

        assert_eq!(revoke(crm.clone(), at2).await, StatusCode::OK);
        assert_eq!(b.userinfo(at2).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(b.introspect(&crm, at2).await["active"], false);
        assert_eq!(
            b.userinfo(at1).await.status(),
            StatusCode::OK,
            "one access token revokes only itself"
        );
        let (status, third) = b
            .refresh(&crm, second["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(status, StatusCode::OK, "nor the refresh token: {third}");

        // A revoked refresh token takes the grant's access tokens with it.
        let live = third["refresh_token"].as_str().unwrap();
        assert_eq!(revoke(crm.clone(), live).await, StatusCode::OK);
        for token in [at1, third["access_token"].as_str().unwrap()] {
            assert_eq!(b.userinfo(token).await.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(b.introspect(&crm, token).await["active"], false);
        }

        // A new sign-in is a new grant: its tokens work.
        let p = b
            .sign_in("crm-web", "https://crm.acme.test/cb", "alice")
            .await;
        let (_, fresh) = b.redeem(&p["code"]).await;
        let at = fresh["access_token"].as_str().unwrap();
        assert_eq!(b.userinfo(at).await.status(), StatusCode::OK);
        assert_eq!(b.introspect(&crm, at).await["active"], true);
    }
);

// A public client (a mobile or single-page app) holds no secret: it redeems its code with the
// PKCE verifier alone and revokes its refresh token by its client_id (RFC 7009 §2.1).
both_backends!(a_public_client_redeems_and_revokes_without_a_secret, |db| {
    let b = Browser::new(db).await;
    let cb = "com.acme.crm:/cb";
    let p = b.sign_in("crm-mobile", cb, "alice").await;
    let (status, tokens) = b
        .token(
            None,
            &format!(
                "grant_type=authorization_code&client_id=crm-mobile&code={}&redirect_uri={}&code_verifier={VERIFIER}",
                enc(&p["code"]),
                enc(cb)
            ),
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let refreshing = format!(
        "grant_type=refresh_token&client_id=crm-mobile&refresh_token={}",
        enc(refresh)
    );
    let revoke = |auth: String, token: &str| {
        let body = format!("{auth}&token={}", enc(token));
        let b = &b;
        async move { b.post_form("/t/acme/revoke", &body).await.status() }
    };
    // A client_id alone names no other client: an unknown one is refused.
    assert_eq!(
        revoke("client_id=nobody".into(), refresh).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, rotated) = b.token(None, &refreshing).await;
    assert_eq!(status, 200, "{rotated}");
    let live = rotated["refresh_token"].as_str().unwrap();
    assert_eq!(
        revoke("client_id=crm-mobile".into(), live).await,
        StatusCode::OK
    );
    let (_, err) = b
        .token(
            None,
            &format!(
                "grant_type=refresh_token&client_id=crm-mobile&refresh_token={}",
                enc(live)
            ),
        )
        .await;
    assert_eq!(err["error"], "invalid_grant", "revoked");
});

// OIDC Core §5.5.1: a `claims` request naming a `sub` by value is answered only for that user:
// another user's session sends the browser to sign in, and a sign-in as anyone else fails.
both_backends!(
    a_claims_request_naming_a_sub_is_answered_only_for_that_user,
    |db| {
        let b = Browser::new(db).await;
        let cb = "https://crm.acme.test/cb";
        let p = b.sign_in("crm-web", cb, "alice").await;
        let (_, tokens) = b.redeem(&p["code"]).await;
        let id = b
            .verify(tokens["id_token"].as_str().unwrap(), "crm-web")
            .await;
        let naming = |sub: &str| {
            let claims = serde_json::json!({"id_token": {"sub": {"value": sub}}});
            format!("&claims={}", enc(&claims.to_string()))
        };
        let alice = naming(id["sub"].as_str().unwrap());
        let r = b.get(&Browser::authorize_path("crm-web", cb, &alice)).await;
        assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));
        let someone = format!("{}&prompt=none", naming("someone-else"));
        let r = b
            .get(&Browser::authorize_path("crm-web", cb, &someone))
            .await;
        assert_eq!(
            params(r.headers()["location"].to_str().unwrap())["error"],
            "login_required"
        );
        let login = b.start("crm-web", cb, &naming("someone-else")).await;
        let r = b.submit(&login, "alice", PASSWORD, "").await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let p = params(r.headers()["location"].to_str().unwrap());
        assert_eq!(p["error"], "login_required");
        assert!(!p.contains_key("code"));
    }
);

both_backends!(single_sign_on_prompt_and_max_age, |db| {
    let b = Browser::new(db).await;
    b.sign_in("crm-web", "https://crm.acme.test/cb", "alice")
        .await;

    // A second client of the tenant: no sign-in page.
    let r = b
        .get(&Browser::authorize_path(
            "wiki",
            "https://wiki.acme.test/cb",
            "",
        ))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://wiki.acme.test/cb?code="),
        "{location}"
    );
    let p = params(location);
    let (status, tokens) = b.redeem_wiki(&p["code"]).await;
    assert_eq!(status, 200, "{tokens}");
    let id = b.verify(tokens["id_token"].as_str().unwrap(), "wiki").await;
    assert_eq!(
        id["roles"],
        serde_json::json!([]),
        "wiki belongs to no app: no roles"
    );
    // The wiki chose RS256 access tokens: the code and refresh grants sign them so, and UserInfo
    // takes them.
    let alg = |token: &Value| {
        jsonwebtoken::decode_header(token.as_str().unwrap())
            .unwrap()
            .alg
    };
    assert_eq!(alg(&tokens["access_token"]), jsonwebtoken::Algorithm::RS256);
    let r = b.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);
    let (status, refreshed) = b
        .refresh(
            &basic("wiki", WIKI_SECRET),
            tokens["refresh_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        alg(&refreshed["access_token"]),
        jsonwebtoken::Algorithm::RS256
    );

    // prompt=none with a session answers at once; prompt=login and a passed max_age ask again.
    let r = b
        .get(&Browser::authorize_path(
            "wiki",
            "https://wiki.acme.test/cb",
            "&prompt=none",
        ))
        .await;
    assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));
    b.start("wiki", "https://wiki.acme.test/cb", "&prompt=login")
        .await;
    b.t.clock.advance(120);
    b.start("wiki", "https://wiki.acme.test/cb", "&max_age=60")
        .await;
    let r = b
        .get(&Browser::authorize_path(
            "wiki",
            "https://wiki.acme.test/cb",
            "&max_age=600",
        ))
        .await;
    assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));

    // Another browser has no session: prompt=none is login_required, with iss and state.
    let other = b.other_client();
    let r = other
        .get(b.server.url(&Browser::authorize_path(
            "wiki",
            "https://wiki.acme.test/cb",
            "&prompt=none",
        )))
        .send()
        .await
        .unwrap();
    let p = params(r.headers()["location"].to_str().unwrap());
    assert_eq!(p["error"], "login_required");
    assert_eq!(p["state"], "st-1");
    assert_eq!(p["iss"], ISSUER);

    // The session ends after its idle timeout.
    b.t.clock.advance(b.t.app.config.session.idle_timeout + 1);
    b.start("wiki", "https://wiki.acme.test/cb", "").await;
});

both_backends!(
    sign_in_refusals_are_clear_and_do_not_enumerate_accounts,
    |db| {
        let b = Browser::new(db).await;
        let login = b.start("crm-web", "https://crm.acme.test/cb", "").await;
        let wrong_password = b.submit(&login, "alice", "wrong password", "").await;
        assert_eq!(wrong_password.status(), 200);
        let wrong_password = wrong_password.text().await.unwrap();
        let unknown = b
            .submit(&login, "nobody@acme.test", PASSWORD, "")
            .await
            .text()
            .await
            .unwrap();
        let message = "The account or password is incorrect.";
        assert!(wrong_password.contains(message) && unknown.contains(message));
        let garbage = b
            .submit(&login, &"x".repeat(5000), PASSWORD, "")
            .await
            .text()
            .await
            .unwrap();
        assert!(garbage.contains(message));

        let disabled = b
            .submit(&login, "dora", PASSWORD, "")
            .await
            .text()
            .await
            .unwrap();
        assert!(disabled.contains("disabled"), "{disabled}");

        // The agreement must be ticked.
        let page = b.get(&login).await.text().await.unwrap();
        let body = format!(
            "flow={}&csrf={}&account=alice&password={}",
            hidden(&page, "flow"),
            hidden(&page, "csrf"),
            enc(PASSWORD)
        );
        let r = b
            .post_form("/t/acme/login", &body)
            .await
            .text()
            .await
            .unwrap();
        assert!(r.contains("agree to the Service Agreement"), "{r}");

        // CSRF: a missing token, and a token from another browser, are refused.
        let flow = hidden(&page, "flow");
        let no_csrf = format!(
            "flow={flow}&account=alice&password={}&agree=yes",
            enc(PASSWORD)
        );
        let r = b.post_form("/t/acme/login", &no_csrf).await;
        assert_eq!(r.status(), 403);
        assert!(r.text().await.unwrap().contains("This form has expired"));
        // A client that did not ask for HTML gets JSON, with the sentence and not its key.
        let r = b
            .other_client()
            .post(b.server.url("/t/acme/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(no_csrf.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let json: serde_json::Value = r.json().await.unwrap();
        assert_eq!(json["error"], "forbidden");
        assert!(
            json["error_description"]
                .as_str()
                .unwrap()
                .starts_with("This form has expired"),
            "{json}"
        );
        let other = b.other_client();
        let other_page = other
            .get(b.server.url(&login))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let forged = format!(
            "flow={flow}&csrf={}&account=alice&password={}&agree=yes",
            hidden(&other_page, "csrf"),
            enc(PASSWORD)
        );
        assert_eq!(b.post_form("/t/acme/login", &forged).await.status(), 403);

        // An unknown flow is a friendly page, not an error dump.
        let r = b
            .get("/t/acme/login?flow=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .await;
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("expired"));

        let events = b
            .t
            .app
            .store
            .run(|c| {
                sesame::store::audit::list(c, &sesame::tenant::TenantId::parse("acme").unwrap(), 50)
            })
            .await
            .unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.action == "sign_in.password" && e.outcome == "failure")
        );
    }
);

both_backends!(users_outside_the_apps_access_scope_are_refused, |db| {
    let b = Browser::new(db).await;
    let login = b.start("crm-web", "https://crm.acme.test/cb", "").await;
    let r = b.submit(&login, "olga", PASSWORD, "").await;
    assert_eq!(r.status(), 403);
    let page = r.text().await.unwrap();
    assert!(page.contains("does not have access to CRM"), "{page}");
    assert!(page.contains("error=access_denied"), "{page}");
    // With a session, prompt=none answers access_denied straight away.
    let r = b
        .get(&Browser::authorize_path(
            "crm-web",
            "https://crm.acme.test/cb",
            "&prompt=none",
        ))
        .await;
    assert_eq!(
        params(r.headers()["location"].to_str().unwrap())["error"],
        "access_denied"
    );
    let events =
        b.t.app
            .store
            .run(|c| {
                sesame::store::audit::list(c, &sesame::tenant::TenantId::parse("acme").unwrap(), 50)
            })
            .await
            .unwrap();
    assert!(events.iter().any(|e| e.action == "authorize.access_denied"));
    // The wiki belongs to no app: Olga may use it.
    let r = b
        .get(&Browser::authorize_path(
            "wiki",
            "https://wiki.acme.test/cb",
            "",
        ))
        .await;
    assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));
});

both_backends!(
    a_first_party_client_asks_for_consent_only_with_prompt_consent,
    |db| {
        let b = Browser::new(db).await;
        b.sign_in("crm-web", "https://crm.acme.test/cb", "alice")
            .await;
        // OIDC Core §3.1.2.1: prompt=consent SHOULD prompt, even where consent is otherwise skipped.
        let r = b
            .get(&Browser::authorize_path(
                "crm-web",
                "https://crm.acme.test/cb",
                "&prompt=consent",
            ))
            .await;
        assert_eq!(r.status(), 200, "a consent page, not a redirect");
        let page = r.text().await.unwrap();
        // The user is named as people know them, and the name is text, not markup.
        assert!(page.contains("as <strong>Alice &lt;b&gt;Liddell"), "{page}");
        let body = format!(
            "flow={}&csrf={}&decision=allow",
            hidden(&page, "flow"),
            hidden(&page, "csrf")
        );
        let r = b.post_form("/t/acme/consent", &body).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));
        // Nothing is remembered for a first-party app: it is not listed among outside apps, and
        // the next request without prompt=consent asks nothing.
        let page = b
            .get("/t/acme/account/consents")
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains("No app outside the organization"), "{page}");
        let r = b
            .get(&Browser::authorize_path(
                "crm-web",
                "https://crm.acme.test/cb",
                "",
            ))
            .await;
        assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));
    }
);

both_backends!(third_party_clients_ask_for_consent_once, |db| {
    let b = Browser::new(db).await;
    let login = b.start("partner", "https://partner.example/cb", "").await;
    let r = b.submit(&login, "alice", PASSWORD, "").await;
    assert_eq!(r.status(), 200, "a consent page, not a redirect");
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Partner Portal wants to access your account"),
        "{page}"
    );
    assert!(page.contains("See your email address"));
    let body = format!(
        "flow={}&csrf={}&decision=allow",
        hidden(&page, "flow"),
        hidden(&page, "csrf")
    );
    // Forged answers grant nothing: without the CSRF token, with a made-up one, and the whole
    // form from another browser (which has neither this browser's binding nor its session).
    let forged = [
        format!("flow={}&decision=allow", hidden(&page, "flow")),
        format!(
            "flow={}&csrf=x{}&decision=allow",
            hidden(&page, "flow"),
            hidden(&page, "csrf")
        ),
    ];
    for forged in forged {
        let r = b.post_form("/t/acme/consent", &forged).await;
        assert!(r.status().is_client_error(), "{forged}: {}", r.status());
        assert!(r.headers().get("location").is_none());
    }
    let r = b.post_form_elsewhere("/t/acme/consent", &body).await;
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(r.headers().get("location").is_none());
    let r = b.post_form("/t/acme/consent", &body).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let code = params(r.headers()["location"].to_str().unwrap())["code"].clone();
    let (status, tokens) = b
        .redeem_at(
            "partner",
            PARTNER_SECRET,
            "https://partner.example/cb",
            &code,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_string();
    assert_eq!(b.userinfo(&access).await.status(), StatusCode::OK);
    // Replaying the consent form does nothing.
    assert_eq!(b.post_form("/t/acme/consent", &body).await.status(), 400);

    // Remembered: the next authorization asks nothing.
    let r = b
        .get(&Browser::authorize_path(
            "partner",
            "https://partner.example/cb",
            "",
        ))
        .await;
    assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));
    // prompt=consent asks again; deny is access_denied.
    let r = b
        .get(&Browser::authorize_path(
            "partner",
            "https://partner.example/cb",
            "&prompt=consent",
        ))
        .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    let body = format!(
        "flow={}&csrf={}&decision=deny",
        hidden(&page, "flow"),
        hidden(&page, "csrf")
    );
    let r = b.post_form("/t/acme/consent", &body).await;
    assert_eq!(
        params(r.headers()["location"].to_str().unwrap())["error"],
        "access_denied"
    );

    // The user withdraws the consent on the account page (CSRF-protected).
    let page = b
        .get("/t/acme/account/consents")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Partner Portal"), "{page}");
    let csrf = hidden(&page, "csrf");
    let r = b
        .post_form("/t/acme/account/consents/revoke", "client_id=partner")
        .await;
    assert_eq!(r.status(), 403, "no CSRF token");
    let r = b
        .post_form(
            "/t/acme/account/consents/revoke",
            &format!("csrf={csrf}&client_id=partner"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = b
        .get("/t/acme/account/consents")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("No app outside the organization"), "{page}");
    assert_eq!(
        b.userinfo(&access).await.status(),
        StatusCode::UNAUTHORIZED,
        "the app's access token is revoked with the consent"
    );
    // Withdrawn: prompt=none is consent_required.
    let r = b
        .get(&Browser::authorize_path(
            "partner",
            "https://partner.example/cb",
            "&prompt=none",
        ))
        .await;
    assert_eq!(
        params(r.headers()["location"].to_str().unwrap())["error"],
        "consent_required"
    );
    let r = b
        .get(&Browser::authorize_path(
            "partner",
            "https://partner.example/cb",
            "",
        ))
        .await;
    assert_eq!(r.status(), 200, "asked again after withdrawal");
    // Each decision is in the audit log, by the user, about the app.
    let acme = sesame::tenant::TenantId::parse("acme").unwrap();
    let events =
        b.t.app
            .store
            .run_blocking(|c| sesame::store::audit::list(c, &acme, 100))
            .unwrap();
    let about_partner = |action: &str| {
        events
            .iter()
            .filter(|e| e.action == action && e.target.as_deref() == Some("partner"))
            .count()
    };
    assert_eq!(about_partner("consent.grant"), 1);
    assert_eq!(about_partner("consent.deny"), 1);
    assert_eq!(about_partner("consent.withdraw"), 1);
    let grant = events.iter().find(|e| e.action == "consent.grant").unwrap();
    assert!(grant.details["scope"].as_str().unwrap().contains("email"));
    assert_ne!(grant.actor, "anonymous");
});

both_backends!(first_sign_in_changes_the_password_before_any_code, |db| {
    let b = Browser::new(db).await;
    let login = b.start("crm-web", "https://crm.acme.test/cb", "").await;
    let r = b.submit(&login, "newbie", "temporary password 1", "").await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("form-action 'self' https://crm.acme.test"),
        "the form's redirect to the app is allowed: {csp}"
    );
    let page = r.text().await.unwrap();
    assert!(page.contains("Set a new password"), "{page}");
    let (flow, csrf) = (hidden(&page, "flow"), hidden(&page, "csrf"));
    let r = b
        .post_form(
            "/t/acme/login/password",
            &format!("flow={flow}&csrf={csrf}&new_password=short&confirm_password=short"),
        )
        .await;
    let html = r.text().await.unwrap();
    assert!(html.contains("least 8"), "{html}");
    assert!(
        html.contains("data-rule=\"length\" data-value=\"8\" class=\"broken\""),
        "marked: {html}"
    );
    // The tenant's policy: no common password, and not the temporary one again (history).
    for (password, why) in [
        ("password123", "commonly used"),
        ("temporary password 1", "last 3 passwords"),
    ] {
        let r = b
            .post_form(
                "/t/acme/login/password",
                &format!(
                    "flow={flow}&csrf={csrf}&new_password={p}&confirm_password={p}",
                    p = crate::browser::enc(password)
                ),
            )
            .await;
        let html = r.text().await.unwrap();
        assert!(html.contains(why), "{password}: {html}");
    }
    // Forged: without the CSRF token, a flow given twice, and the whole form from another
    // browser; none of them changes the password.
    let good = format!(
        "flow={flow}&csrf={csrf}&new_password=brand+new+secret&confirm_password=brand+new+secret"
    );
    for forged in [
        good.replacen(&format!("&csrf={csrf}"), "", 1),
        format!("flow={flow}&{good}"),
    ] {
        let r = b.post_form("/t/acme/login/password", &forged).await;
        assert!(r.status().is_client_error(), "{forged}: {}", r.status());
    }
    let r = b.post_form_elsewhere("/t/acme/login/password", &good).await;
    assert!(r.status().is_client_error(), "{}", r.status());
    let r = b.post_form("/t/acme/login/password", &good).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(params(r.headers()["location"].to_str().unwrap()).contains_key("code"));
    // The form once more: the flow is spent, nothing changes, no second code.
    let r = b.post_form("/t/acme/login/password", &good).await;
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(r.headers().get("location").is_none());
    // The old password no longer works; the new one does.
    let other = Browser::authorize_path("crm-web", "https://crm.acme.test/cb", "&prompt=login");
    let r = b.get(&other).await;
    let login = r.headers()["location"].to_str().unwrap().to_string();
    let r = b.submit(&login, "newbie", "temporary password 1", "").await;
    assert_eq!(r.status(), 200);
    let r = b.submit(&login, "newbie", "brand new secret", "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
});
