//! Several identical nodes on one PostgreSQL database, as behind a load balancer: every piece of
//! sign-in state lives in the database, and a key rotated or an access token revoked through one
//! node is seen by the other within the cache TTL, without a restart.

use std::time::Duration;

use super::{MASTER_KEY, SECRET, tenant};
use crate::support::{Database, Sesame, browser, query, sign_in_via};

const REDIRECT: &str = "http://127.0.0.1:3999/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

async fn token(node: &Sesame, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/t/acme/token", node.base))
        .basic_auth("crm-web", Some(SECRET))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The status UserInfo at `node` answers `access_token` with.
async fn userinfo(node: &Sesame, access_token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/t/acme/userinfo", node.base))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn active_kid(node: &Sesame, alg: &str) -> String {
    node.cli(&["keys", "list", "-t", "acme"])
        .lines()
        .find(|l| l.contains(&format!(" {alg} ")) && l.contains(" active "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_sign_ins_codes_refresh_families_and_keys() {
    let Some(db) = Database::postgres() else {
        eprintln!("skipped: SESAME_TEST_DATABASE_URL is not set");
        return;
    };
    let a = Sesame::start(&db, MASTER_KEY, Some(&tenant(REDIRECT))).await;
    let b = Sesame::start_behind(&db, MASTER_KEY, None, Some(&a.issuer_base)).await;
    let issuer = a.issuer("acme");

    // Started on A, the password submitted to B: B issues the code.
    let authorize = format!(
        "{}/t/acme/authorize?response_type=code&client_id=crm-web&redirect_uri={}&scope=openid%20offline_access&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        a.base,
        crate::support::enc(REDIRECT)
    );
    let browser = browser();
    let back = sign_in_via(&browser, &authorize, &b.base, "alice").await;
    let p = query(&back);
    assert_eq!(p["iss"], issuer, "one issuer for both nodes");

    // The code B issued is redeemed at A.
    let (status, tokens) = token(
        &a,
        &[
            ("grant_type", "authorization_code"),
            ("code", &p["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let first = tokens["refresh_token"].as_str().unwrap().to_string();

    // Rotated at A, replayed at B: the family is revoked for both.
    let (status, rotated) = token(
        &a,
        &[("grant_type", "refresh_token"), ("refresh_token", &first)],
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["refresh_token"].as_str().unwrap().to_string();
    let (status, err) = token(
        &b,
        &[("grant_type", "refresh_token"), ("refresh_token", &first)],
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = token(
        &a,
        &[("grant_type", "refresh_token"), ("refresh_token", &second)],
    )
    .await;
    assert_eq!(status, 400, "the whole family is gone");

    // So are the access tokens issued under it: at once at B, which found the reuse, and at A
    // once it reads the tenant's revocations with its keys again.
    let access = rotated["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&b, access).await, 401);
    let mut refused_at_a = false;
    for _ in 0..30 {
        if userinfo(&a, access).await == 401 {
            refused_at_a = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        refused_at_a,
        "A refuses the revoked access token within seconds"
    );

    // A key rotated through A's configuration is served and used by B without a restart.
    let before = active_kid(&a, "RS256");
    a.cli(&["keys", "rotate", "-t", "acme", "--alg", "RS256", "--force"]);
    let after = active_kid(&a, "RS256");
    assert_ne!(before, after);
    let mut signed_with_new_key = false;
    for _ in 0..40 {
        // A fresh browser each time, so every round signs in (and signs) anew at B.
        let back = sign_in_via(
            &crate::support::browser(),
            &authorize.replace(&a.base, &b.base),
            &b.base,
            "alice",
        )
        .await;
        let code = query(&back)["code"].clone();
        let (_, t) = token(
            &b,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
        let header = jsonwebtoken::decode_header(t["id_token"].as_str().unwrap()).unwrap();
        if header.kid.as_deref() == Some(after.as_str()) {
            signed_with_new_key = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        signed_with_new_key,
        "B signs with the rotated key within seconds"
    );
}
