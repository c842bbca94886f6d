//! Message delivery against real peers started here: a real SMTP conversation with the test's
//! SMTP server, the SMS gateway as a local HTTP server that records requests, retries of a
//! temporary failure, and a gateway that is down.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode as AxumStatus, Uri};
use reqwest::StatusCode;
use sesame::i18n::Locale;
use sesame::notify::config::{Driver, SmtpSecurity};
use sesame::notify::{Channel, Message, Notifier, NotifyError};
use sesame::store::audit;
use sesame::tenant::TenantId;

use crate::browser::{Browser, params};
use crate::codes::{code_in, code_page, get_code, said, submit_code};
use crate::smtp_sink::SmtpSink;
use crate::support::{TestApp, TestDb, both_backends};

/// What the SMS gateway was sent.
#[derive(Debug, Clone)]
struct Recorded {
    uri: String,
    api_key: Option<String>,
    content_type: Option<String>,
    body: String,
}

/// An HTTP server standing in for an SMS vendor: answers each request with the next of
/// `answers` (the last one repeats) and records it.
struct Gateway {
    port: u16,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Gateway {
    async fn start(answers: Vec<(u16, &'static str)>) -> Gateway {
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let log = recorded.clone();
        let answers = Arc::new(answers);
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: String| {
            let (log, answers) = (log.clone(), answers.clone());
            async move {
                let mut log = log.lock().unwrap();
                let (status, text) = answers[log.len().min(answers.len() - 1)];
                log.push(Recorded {
                    uri: uri.to_string(),
                    api_key: headers
                        .get("x-api-key")
                        .map(|v| v.to_str().unwrap().to_string()),
                    content_type: headers
                        .get("content-type")
                        .map(|v| v.to_str().unwrap().to_string()),
                    body,
                });
                (AxumStatus::from_u16(status).unwrap(), text)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Gateway {
            port,
            recorded,
            task,
        }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Recorded> {
        for _ in 0..200 {
            if self.requests().len() >= n {
                return self.requests();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} requests, got {:?}", self.requests());
    }
}

fn sms_config(c: &mut sesame::config::Config, port: u16) {
    c.sms.driver = Driver::Http;
    c.sms.url = Some(format!(
        "http://127.0.0.1:{port}/v1/send?tenant={{{{ tenant }}}}"
    ));
    c.sms.headers.insert("X-Api-Key".into(), "key-123".into());
    c.sms.body =
        r#"{"mobile": {{ to | tojson }}, "code": {{ code | tojson }}, "content": {{ text | tojson }}}"#
            .into();
    c.sms.success_body_contains = Some(r#""ok":true"#.into());
    c.sms.timeout_secs = 2;
}

both_backends!(a_code_arrives_over_smtp_and_signs_in, |db| {
    let sink = SmtpSink::start().await;
    let b = Browser::with_config(db, |c| {
        c.email.driver = Driver::Smtp;
        c.email.host = Some("127.0.0.1".into());
        c.email.port = Some(sink.port);
        c.email.security = SmtpSecurity::InsecurePlaintext;
        c.email.from = Some("Acme Sign-in <no-reply@acme.test>".into());
        c.email.username = Some("mailer".into());
        c.email.password = Some("mail-password".into());
    })
    .await;
    let page = code_page(&b).await;
    let (_, sent) = get_code(&b, &page, "alice@acme.test").await;
    assert!(said(&sent).contains("on its way"), "{sent}");
    let mail = sink.wait_for(1).await.remove(0);
    assert_eq!(mail.from, "<no-reply@acme.test>");
    assert_eq!(mail.to, vec!["<alice@acme.test>".to_string()]);
    assert_eq!(mail.auth.as_deref(), Some("mailer\0mail-password"));
    assert!(
        mail.header("Subject")
            .unwrap()
            .contains("verification code")
    );
    let r = submit_code(&b, &sent, "alice@acme.test", &code_in(&mail.body())).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(params(&location).contains_key("code"));
});

both_backends!(a_code_goes_through_the_sms_gateway, |db| {
    let gateway = Gateway::start(vec![(200, r#"{"ok":true}"#)]).await;
    let b = Browser::with_config(db, |c| sms_config(c, gateway.port)).await;
    let page = code_page(&b).await;
    let (_, sent) = get_code(&b, &page, "+86 138-0013-8000").await;
    assert!(said(&sent).contains("on its way"), "{sent}");
    let request = gateway.wait_for(1).await.remove(0);
    assert_eq!(request.uri, "/v1/send?tenant=acme");
    assert_eq!(request.api_key.as_deref(), Some("key-123"));
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["mobile"], "+8613800138000");
    let code = body["code"].as_str().unwrap().to_string();
    assert!(body["content"].as_str().unwrap().contains(&code));
    let r = submit_code(&b, &sent, "13800138000", &code).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
});

both_backends!(
    a_gateway_that_is_down_gets_a_clear_answer_not_an_error,
    |db| {
        // A port nothing listens on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let b = Browser::with_config(db, |c| sms_config(c, port)).await;
        let page = code_page(&b).await;
        let (status, first) = get_code(&b, &page, "13800138000").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            said(&first).contains("on its way"),
            "delivery is in the background"
        );
        for _ in 0..200 {
            if !b.t.app.notifier.ready(Channel::Sms) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            !b.t.app.notifier.ready(Channel::Sms),
            "the failure was noticed"
        );
        // Now everyone is told, whether or not the number belongs to an account.
        for number in ["13800138000", "13900139000"] {
            let (status, html) = get_code(&b, &code_page(&b).await, number).await;
            assert_eq!(status, StatusCode::OK);
            assert!(said(&html).contains("could not be sent"), "{html}");
        }
        let acme = TenantId::parse("acme").unwrap();
        let events =
            b.t.app
                .store
                .run_blocking(|c| audit::list(c, &acme, 50))
                .unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.action == "sign_in.code.send" && e.outcome == "unavailable"),
            "{events:?}"
        );
        // After a while the channel is tried again.
        b.t.clock.advance(sesame::notify::FAILING_FOR);
        assert!(b.t.app.notifier.ready(Channel::Sms));
    }
);

fn message(to: &str) -> Message {
    Message {
        tenant: TenantId::parse("acme").unwrap(),
        channel: Channel::Sms,
        to: to.into(),
        subject: String::new(),
        body: "Your code is 123456".into(),
        code: Some("123456".into()),
        locale: Locale::En,
        purpose: "sign_in.code",
    }
}

both_backends!(
    temporary_failures_are_retried_and_refusals_are_audited,
    |db| {
        let t = TestApp::new(db).await;
        t.import(crate::browser::TENANT).await;
        let flaky =
            Gateway::start(vec![(503, "busy"), (500, "oops"), (200, r#"{"ok":true}"#)]).await;
        let mut config = t.app.config.clone();
        sms_config(&mut config, flaky.port);
        let notifier = Notifier::new(&config, t.app.store.clone(), t.app.clock.clone())
            .unwrap()
            .with_retry_delays(vec![Duration::from_millis(10); 2]);
        notifier
            .deliver_with_retries(message("+8613800138000"))
            .await
            .unwrap();
        assert_eq!(flaky.requests().len(), 3, "two retries");
        assert!(notifier.ready(Channel::Sms), "the last attempt succeeded");

        // A 200 without the success text, or a 400, is the gateway's "no": no retry, audited.
        let refusing = Gateway::start(vec![(200, r#"{"ok":false,"error":"blocked"}"#)]).await;
        sms_config(&mut config, refusing.port);
        let notifier = Notifier::new(&config, t.app.store.clone(), t.app.clock.clone())
            .unwrap()
            .with_retry_delays(vec![Duration::from_millis(10); 2]);
        let e = notifier
            .deliver_with_retries(message("+8613800138000"))
            .await
            .unwrap_err();
        assert!(matches!(e, NotifyError::Refused(_)), "{e}");
        assert_eq!(refusing.requests().len(), 1);
        assert!(
            notifier.ready(Channel::Sms),
            "one refused message does not stop codes to everyone else"
        );
        let acme = TenantId::parse("acme").unwrap();
        let events = t
            .app
            .store
            .run_blocking(|c| audit::list(c, &acme, 1000))
            .unwrap();
        let failed = events.iter().find(|e| e.action == "notify.failed").unwrap();
        assert_eq!(failed.details["to"], "+86*******8000", "masked");
        assert!(
            !failed.details.to_string().contains("123456"),
            "no code in the log"
        );
    }
);

#[test]
fn delivery_settings_are_checked_with_the_key_named() {
    let load = |toml: &str| {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, toml.as_bytes()).unwrap();
        sesame::config::Config::load_from(Some(f.path()), Vec::new())
    };
    let e = load("[email]\ndriver = \"smtp\"\n").unwrap_err();
    assert_eq!(e.key, "email.host");
    let e =
        load("[email]\ndriver = \"smtp\"\nhost = \"mx\"\nfrom = \"not an address\"\n").unwrap_err();
    assert_eq!(e.key, "email.from");
    let e =
        load("[email]\ndriver = \"smtp\"\nhost = \"mx\"\nfrom = \"a@b.c\"\nsecurity = \"plain\"\n")
            .unwrap_err();
    assert_eq!(e.key, "email.security");
    let local = load("[email]\ndriver = \"smtp\"\nhost = \"127.0.0.1\"\nfrom = \"a@b.c\"\nsecurity = \"insecure_plaintext\"\n").unwrap();
    assert_eq!(local.email.port(), 25);
    let e = load("[sms]\ndriver = \"http\"\nurl = \"ftp://x\"\n").unwrap_err();
    assert_eq!(e.key, "sms.url");
    let e = load("[sms]\ndriver = \"http\"\nurl = \"https://x\"\nbody = \"{{ to \"\n").unwrap_err();
    assert_eq!(e.key, "sms.body");
    let ok = load(
        "[email]\ndriver = \"smtp\"\nhost = \"smtp.example.com\"\nfrom = \"Acme <no-reply@example.com>\"\nusername = \"u\"\npassword = \"hunter2\"\n[sms]\ndriver = \"http\"\nurl = \"https://sms.example.com/send\"\nheaders = { Authorization = \"Bearer sk-secret\" }\n",
    )
    .unwrap();
    let printed = format!("{:?} {}", ok, toml::to_string(&ok.redacted()).unwrap());
    assert!(
        !printed.contains("hunter2") && !printed.contains("sk-secret"),
        "{printed}"
    );
    let _ = TestDb::sqlite;
}

/// Email settings for a sink on `port` whose certificate the CA in `ca_file` issued.
fn tls_email(
    c: &mut sesame::config::Config,
    port: u16,
    security: SmtpSecurity,
    ca_file: &std::path::Path,
) {
    c.email.driver = Driver::Smtp;
    c.email.host = Some("127.0.0.1".into());
    c.email.port = Some(port);
    c.email.security = security;
    c.email.from = Some("Acme Sign-in <no-reply@acme.test>".into());
    c.email.username = Some("mailer".into());
    c.email.password = Some("mail-password".into());
    c.email.ca_file = Some(ca_file.to_path_buf());
}

both_backends!(
    starttls_and_implicit_tls_deliver_to_a_trusted_server,
    |db| {
        use crate::smtp_sink::{Security, test_ca};
        let dir = tempfile::tempdir().unwrap();
        let (ca, acceptor) = test_ca();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca).unwrap();
        let starttls = SmtpSink::start_with(Security::StartTls(acceptor.clone())).await;
        let implicit = SmtpSink::start_with(Security::Implicit(acceptor)).await;
        let t = TestApp::with_config(db, |c| {
            tls_email(c, starttls.port, SmtpSecurity::Starttls, &ca_file)
        })
        .await;
        t.import(crate::browser::TENANT).await;
        let mail = |to: &str| Message {
            tenant: TenantId::parse("acme").unwrap(),
            channel: Channel::Email,
            to: to.into(),
            subject: "Hello".into(),
            body: "Over TLS".into(),
            code: None,
            locale: Locale::En,
            purpose: "test",
        };
        t.app
            .notifier
            .send_now(mail("alice@acme.test"))
            .await
            .unwrap();
        let got = starttls.wait_for(1).await.remove(0);
        assert!(got.tls, "upgraded before anything was said");
        assert_eq!(got.auth.as_deref(), Some("mailer\0mail-password"));

        let mut config = t.app.config.clone();
        tls_email(&mut config, implicit.port, SmtpSecurity::Tls, &ca_file);
        let notifier = std::sync::Arc::new(
            Notifier::new(&config, t.app.store.clone(), t.app.clock.clone()).unwrap(),
        );
        notifier.send_now(mail("alice@acme.test")).await.unwrap();
        assert!(implicit.wait_for(1).await[0].tls);
    }
);

both_backends!(starttls_is_required_and_the_certificate_checked, |db| {
    use crate::smtp_sink::{Security, test_ca};
    let dir = tempfile::tempdir().unwrap();
    let (ca, acceptor) = test_ca();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let (other_ca, _) = test_ca();
    let other_file = dir.path().join("other.pem");
    std::fs::write(&other_file, other_ca).unwrap();
    let t = TestApp::new(db).await;
    t.import(crate::browser::TENANT).await;
    let mail = Message {
        tenant: TenantId::parse("acme").unwrap(),
        channel: Channel::Email,
        to: "alice@acme.test".into(),
        subject: "Hello".into(),
        body: "Secret".into(),
        code: Some("123456".into()),
        locale: Locale::En,
        purpose: "test",
    };
    let send = |port: u16, ca: &std::path::Path| {
        let mut config = t.app.config.clone();
        tls_email(&mut config, port, SmtpSecurity::Starttls, ca);
        let notifier = Notifier::new(&config, t.app.store.clone(), t.app.clock.clone())
            .unwrap()
            .with_retry_delays(Vec::new());
        let mail = mail.clone();
        async move { notifier.deliver_with_retries(mail).await }
    };
    // A server that does not offer STARTTLS gets nothing, not even the password.
    let plain = SmtpSink::start().await;
    assert!(send(plain.port, &ca_file).await.is_err());
    assert!(plain.messages().is_empty());
    // A certificate from a CA nobody trusts: refused.
    let untrusted = SmtpSink::start_with(Security::StartTls(acceptor)).await;
    assert!(send(untrusted.port, &other_file).await.is_err());
    assert!(untrusted.messages().is_empty());
});
