//! A SAML SP's `RequestedAuthnContext` (SAML Core §3.3.2.2.1) mapped to the sign-in's class: a
//! session of the requested class answers at once, one of another class signs in again, and a
//! class that no sign-in here reaches is a `NoAuthnContext` status to the SP.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use samael::schema::{
    AuthnContextClassRef, AuthnContextComparison, AuthnRequest, RequestedAuthnContext,
};
use sesame::saml::sso::{CLASS_CODE, CLASS_PASSWORD};

use crate::browser::Browser;
use crate::saml_sso::{Marketing, SSO, marketing, posted, sign_in};
use crate::support::{TestDb, both_backends};

fn asking(
    m: &Marketing,
    classes: &[&str],
    comparison: Option<AuthnContextComparison>,
) -> AuthnRequest {
    let mut req = m.request();
    req.requested_authn_context = Some(RequestedAuthnContext {
        authn_context_class_refs: Some(
            classes
                .iter()
                .map(|c| AuthnContextClassRef {
                    value: Some(c.to_string()),
                })
                .collect(),
        ),
        authn_context_decl_refs: None,
        comparison,
    });
    req
}

/// The class of the assertion in a Response the SP accepts.
fn class_of(m: &Marketing, html: &str, req: &AuthnRequest) -> String {
    let (response, _) = posted(html);
    let assertion =
        m.sp.parse_base64_response(&response, Some(&[req.id.as_str()]))
            .unwrap();
    let statement = &assertion.authn_statements.unwrap()[0];
    let context = statement.authn_context.as_ref().unwrap();
    context.value.as_ref().unwrap().value.clone().unwrap()
}

/// The second-level status of a refusing Response.
fn status_of(html: &str) -> String {
    let (response, _) = posted(html);
    let xml = String::from_utf8(STANDARD.decode(response).unwrap()).unwrap();
    assert!(!xml.contains("Assertion"), "{xml}");
    xml.split("urn:oasis:names:tc:SAML:2.0:status:")
        .nth(2)
        .and_then(|s| s.split('"').next())
        .unwrap_or_default()
        .to_string()
}

both_backends!(a_requested_authn_context_is_met_or_refused, |db| {
    use AuthnContextComparison::{Better, Exact, Minimum};
    let b = Browser::new(db).await;
    let m = marketing(&b, |_, _| {}).await;
    let get = |req: &AuthnRequest| {
        let path = format!("{SSO}?{}", Marketing::redirect_query(req, ""));
        let b = &b;
        async move { b.get(&path).await }
    };
    // Exactly a password: the sign-in page, then an assertion of that class.
    let req = asking(&m, &[CLASS_PASSWORD], Some(Exact));
    let r = get(&req).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let login = r.headers()["location"].to_str().unwrap().to_string();
    let html = sign_in(&b, &login, "alice").await;
    assert_eq!(class_of(&m, &html, &req), CLASS_PASSWORD);
    // The session answers a request for its class, and for at least a class Sesame knows.
    for req in [
        asking(&m, &[CLASS_PASSWORD], None),
        asking(&m, &[CLASS_CODE], Some(Minimum)),
    ] {
        let r = get(&req).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(class_of(&m, &r.text().await.unwrap(), &req), CLASS_PASSWORD);
    }
    // Exactly a one-time code: the password session does not do, so the user signs in again.
    let r = get(&asking(&m, &[CLASS_CODE], Some(Exact))).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/t/acme/login?flow=")
    );
    // What no sign-in here reaches is refused to the SP at once.
    let kerberos = "urn:oasis:names:tc:SAML:2.0:ac:classes:Kerberos";
    for req in [
        asking(&m, &[kerberos], None),
        asking(&m, &[kerberos], Some(Minimum)),
        asking(&m, &[CLASS_PASSWORD], Some(Better)),
    ] {
        let r = get(&req).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(status_of(&r.text().await.unwrap()), "NoAuthnContext");
    }
});

// A method that misses the exact class is refused at the form, not answered with another class.
#[tokio::test]
async fn a_method_that_misses_the_exact_class_signs_no_one_in() {
    let b = Browser::new(TestDb::sqlite()).await;
    let m = marketing(&b, |_, _| {}).await;
    let req = asking(&m, &[CLASS_CODE], Some(AuthnContextComparison::Exact));
    let r = b
        .get(&format!("{SSO}?{}", Marketing::redirect_query(&req, "")))
        .await;
    let login = r.headers()["location"].to_str().unwrap().to_string();
    // A password posted to a sign-in that needs a code: the page says so, and no response (and no
    // session) comes of it.
    let html = sign_in(&b, &login, "alice").await;
    assert!(html.contains("needs a verification code"), "{html}");
    assert!(!html.contains("SAMLResponse"));
    let r = b
        .get(&format!(
            "{SSO}?{}",
            Marketing::redirect_query(&m.request(), "")
        ))
        .await;
    let location = r.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("/t/acme/login?"), "{location}");
}

// What the request says of its subject, its NameID's qualifier and its context declarations is
// met or refused to the SP, never ignored (Core §3.4.1.1, §3.4.1.4, §3.3.2.2.1).
both_backends!(a_request_s_subject_and_policy_are_met_or_refused, |db| {
    use samael::schema::{AuthnContextDeclRef, NameIdPolicy, Subject, SubjectNameID};
    let b = Browser::new(db).await;
    let m = marketing(&b, |_, _| {}).await;
    let get = |req: &AuthnRequest| {
        let path = format!("{SSO}?{}", Marketing::redirect_query(req, ""));
        let b = &b;
        async move { b.get(&path).await }
    };
    let r = get(&m.request()).await;
    let login = r.headers()["location"].to_str().unwrap().to_string();
    sign_in(&b, &login, "alice").await;
    let naming = |who: &str| {
        let mut req = m.request();
        req.subject = Some(Subject {
            name_id: Some(SubjectNameID {
                format: None,
                value: who.to_string(),
            }),
            subject_confirmations: None,
        });
        req
    };
    // Alice is signed in: a request for Olga gets no assertion about Alice, passive or not.
    let mut passive = naming("olga@acme.test");
    passive.is_passive = Some(true);
    for req in [naming("olga@acme.test"), passive] {
        let r = get(&req).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(status_of(&r.text().await.unwrap()), "RequestDenied");
    }
    // A request for Alice, in any case, is answered.
    let req = naming("ALICE@acme.test");
    let r = get(&req).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(class_of(&m, &r.text().await.unwrap(), &req), CLASS_PASSWORD);
    // A subject named by other means than a NameID cannot be matched: refused, not ignored.
    let mut req = m.request();
    req.subject = Some(Subject {
        name_id: None,
        subject_confirmations: None,
    });
    let r = get(&req).await;
    assert_eq!(status_of(&r.text().await.unwrap()), "RequestUnsupported");
    // An affiliation's qualifier is not offered.
    let mut req = m.request();
    req.name_id_policy = Some(NameIdPolicy {
        format: None,
        sp_name_qualifier: Some("urn:example:affiliation".into()),
        allow_create: None,
    });
    let r = get(&req).await;
    assert_eq!(status_of(&r.text().await.unwrap()), "InvalidNameIDPolicy");
    // Context declarations are not offered; a plain password as a minimum is met.
    let mut req = asking(&m, &[], Some(AuthnContextComparison::Exact));
    if let Some(context) = req.requested_authn_context.as_mut() {
        context.authn_context_class_refs = None;
        context.authn_context_decl_refs = Some(vec![AuthnContextDeclRef {
            value: Some("urn:example:decl".into()),
        }]);
    }
    let r = get(&req).await;
    assert_eq!(status_of(&r.text().await.unwrap()), "NoAuthnContext");
    let plain = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password";
    let req = asking(&m, &[plain], Some(AuthnContextComparison::Minimum));
    let r = get(&req).await;
    assert_eq!(class_of(&m, &r.text().await.unwrap(), &req), CLASS_PASSWORD);
});
