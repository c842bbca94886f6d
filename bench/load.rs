//! The stateful half of the load tests (`bench/http.sh` runs it; wrk does the stateless half):
//!
//! ```text
//! load hello PORT [BYTES]              a bare axum route answering BYTES bytes (default "hello"):
//!                                      the machine's own ceiling for HTTP
//! load token BASE                      sign in once, print an access token (for wrk)
//! load refresh BASE SECONDS TASKS [RATE]      rotate refresh tokens
//! load code-flow BASE SECONDS TASKS [RATE]    authorize + token for users who already have a session
//! load discovery|jwks|client-credentials|userinfo|introspect BASE SECONDS TASKS [RATE]
//! ```
//!
//! BASE is a tenant's issuer, such as `http://127.0.0.1:8080/t/bench`; the tenant comes from
//! `bench/tenant.toml`. Every run is bounded by SECONDS. Without RATE each task sends as fast as
//! it is answered (throughput); with RATE the requests are paced at RATE per second in all and
//! latencies count from each request's scheduled time (the p99 at a given load). With
//! `LOAD_SLOWEST` set, the five slowest requests are listed with when they were scheduled, so a
//! stall shows where it happened.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

const CLIENT: &str = "bench-web";
const SECRET: &str = "bench-web-secret-0123456789-0123456789";
const REDIRECT: &str = "http://127.0.0.1:9/cb";
const USER: &str = "bench";
const PASSWORD: &str = "bench password 1";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(4)
        .build()
        .unwrap()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&#x2f;", "/")
}

fn authorize_url(base: &str, scope: &str) -> String {
    format!(
        "{base}/authorize?response_type=code&client_id={CLIENT}&redirect_uri={}&scope={scope}&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    )
}

fn code_of(location: &str) -> String {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"))
}

/// Signs in through the page (the only argon2 of a run) and returns the first code.
async fn sign_in(c: &reqwest::Client, base: &str, scope: &str) -> String {
    let origin = {
        let u = url::Url::parse(base).unwrap();
        format!("{}://{}", u.scheme(), u.host_str().unwrap())
            + &u.port().map(|p| format!(":{p}")).unwrap_or_default()
    };
    let r = c.get(authorize_url(base, scope)).send().await.unwrap();
    let login = r.headers()["location"].to_str().unwrap().to_string();
    let page = c
        .get(format!("{origin}{login}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let body = format!(
        "flow={}&csrf={}&account={USER}&password={}&agree=yes",
        hidden(&page, "flow"),
        hidden(&page, "csrf"),
        url::form_urlencoded::byte_serialize(PASSWORD.as_bytes()).collect::<String>()
    );
    let r = c
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    code_of(r.headers()["location"].to_str().unwrap())
}

async fn redeem(c: &reqwest::Client, base: &str, code: &str) -> serde_json::Value {
    let r = c
        .post(format!("{base}/token"))
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "token: {}", r.status());
    r.json().await.unwrap()
}

/// A fresh Redirect-binding AuthnRequest of the bench SP (deflated, base64, URL-encoded).
fn authn_request() -> String {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = format!(
        "_b{}{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let now =
        sesame::saml::response::instant(sesame::clock::Clock::now(&sesame::clock::SystemClock));
    let xml = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{now}" AssertionConsumerServiceURL="http://127.0.0.1:9/acs"><saml:Issuer>https://bench.example.com/saml</saml:Issuer></samlp:AuthnRequest>"#
    );
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(xml.as_bytes()).unwrap();
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        e.finish().unwrap(),
    );
    url::form_urlencoded::byte_serialize(b64.as_bytes()).collect()
}

/// One step of a loop: takes the loop's state (a refresh token, say) and returns the next.
/// One request of a task: takes the task's state (its client, what it carries from one request to
/// the next) and gives it back.
type StepFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Runs `step` in `tasks` concurrent loops for `seconds`; prints the rate and latency.
///
/// Without `rate`, each loop sends its next request as soon as the last is answered (the
/// throughput). With `rate`, requests are scheduled at that many per second in all, and each
/// latency is counted from its scheduled time, not from when a busy loop got round to sending it,
/// so a server that falls behind shows its queue in the percentiles (no coordinated omission).
async fn measure<T, S, F>(
    label: &str,
    seconds: u64,
    tasks: usize,
    rate: Option<f64>,
    setup: impl Fn() -> F,
    step: S,
) where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
    S: Fn(T) -> StepFuture<T> + Send + Sync + Clone + 'static,
{
    let mut prepared = Vec::new();
    for _ in 0..tasks {
        prepared.push(setup().await);
    }
    let start = tokio::time::Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let slots = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut handles = Vec::new();
    for mut state in prepared {
        let (step, slots) = (step.clone(), slots.clone());
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let (slot_time, from) = match rate {
                    Some(rate) => {
                        let slot = slots.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let at = start + Duration::from_secs_f64(slot as f64 / rate);
                        if tokio::time::Instant::now() < at {
                            // Early: wait, and count from the wake-up (the timer's lag is ours).
                            tokio::time::sleep_until(at).await;
                            (at, tokio::time::Instant::now())
                        } else {
                            // Late because the server kept this task waiting: count from the
                            // scheduled time, so its queue shows.
                            (at, at)
                        }
                    }
                    None => {
                        let now = tokio::time::Instant::now();
                        (now, now)
                    }
                };
                if slot_time >= deadline {
                    break;
                }
                state = step(state).await;
                let offset = slot_time.saturating_duration_since(start).as_millis() as u64;
                latencies.push((from.elapsed().as_micros() as u64, offset));
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map(|(latency, _)| *latency)
            .unwrap_or(0)
    };
    let paced = rate
        .map(|r| format!(" (paced at {r:.0}/s)"))
        .unwrap_or_default();
    println!(
        "{label}{paced}: {} in {seconds} s = {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
        all.len(),
        all.len() as f64 / seconds as f64,
        pct(0.50) as f64 / 1000.0,
        pct(0.99) as f64 / 1000.0
    );
    // Where the slowest requests were scheduled: one stall shows as a cluster of offsets.
    if std::env::var_os("LOAD_SLOWEST").is_some() {
        for (latency, offset) in all.iter().rev().take(5) {
            println!(
                "  {:.2} ms, scheduled {:.3} s in",
                *latency as f64 / 1000.0,
                *offset as f64 / 1000.0
            );
        }
        // Requests over 5 ms by the 100 ms they were scheduled in: a few stalls, or a spread.
        let mut slow = std::collections::BTreeMap::<u64, (usize, u64)>::new();
        for (latency, offset) in all.iter().filter(|(l, _)| *l > 5_000) {
            let bucket = slow.entry(offset / 100).or_default();
            bucket.0 += 1;
            bucket.1 = bucket.1.max(*latency);
        }
        for (bucket, (count, max)) in slow {
            println!(
                "  {:.1} s: {count} over 5 ms, up to {:.1} ms",
                bucket as f64 / 10.0,
                max as f64 / 1000.0
            );
        }
    }
}

/// A stateless request repeated by every task with its own client.
fn repeat(
    make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + Clone + 'static,
) -> impl Fn(reqwest::Client) -> StepFuture<reqwest::Client> + Send + Sync + Clone + 'static {
    move |c| {
        let request = make(&c);
        Box::pin(async move {
            let r = request.send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            r.bytes().await.unwrap();
            c
        })
    }
}

/// One keep-alive HTTP/1.1 connection sending the same GET again and again. A general client
/// (reqwest, with its cookie jar and header maps) tops out at about 13,000 requests/s on one core
/// of a slow machine, short of the 20,000/s discovery and JWKS are paced at; this costs a write
/// and a read or two per request.
struct RawGet {
    stream: tokio::net::TcpStream,
    request: std::sync::Arc<[u8]>,
    buf: Vec<u8>,
}

impl RawGet {
    async fn connect(url: &str) -> RawGet {
        let url = url::Url::parse(url).unwrap();
        let authority = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(80));
        let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let request = format!("GET {} HTTP/1.1\r\nHost: {authority}\r\n\r\n", url.path());
        RawGet {
            stream,
            request: request.into_bytes().into(),
            buf: Vec::with_capacity(8192),
        }
    }

    /// Sends the request and reads the whole answer, which must be a 200 with a Content-Length.
    async fn get(mut self) -> RawGet {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.stream.write_all(&self.request).await.unwrap();
        self.buf.clear();
        let mut wanted = None;
        loop {
            if wanted.is_none()
                && let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n")
            {
                let head = std::str::from_utf8(&self.buf[..end]).unwrap();
                assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                let length = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.trim().parse::<usize>().unwrap())
                    .unwrap();
                wanted = Some(end + 4 + length);
            }
            if wanted.is_some_and(|w| self.buf.len() >= w) {
                return self;
            }
            let read = self.stream.read_buf(&mut self.buf).await.unwrap();
            assert!(read > 0, "the server closed the connection");
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| {
        args.get(i)
            .cloned()
            .unwrap_or_else(|| panic!("missing argument {i}; see bench/load.rs"))
    };
    // An optional last argument after TASKS: requests per second in all (paced mode).
    let rate: Option<f64> = args.get(5).map(|r| r.parse().unwrap());
    match arg(1).as_str() {
        "hello" => {
            let body = match args.get(3) {
                Some(n) => bytes::Bytes::from(vec![b'x'; n.parse().unwrap()]),
                None => bytes::Bytes::from_static(b"hello"),
            };
            let app = axum::Router::new().route(
                "/",
                axum::routing::get(move || {
                    let body = body.clone();
                    async move { body }
                }),
            );
            let listener =
                tokio::net::TcpListener::bind(("127.0.0.1", arg(2).parse::<u16>().unwrap()))
                    .await
                    .unwrap();
            axum::serve(listener, app).await.unwrap();
        }
        "token" => {
            let base = arg(2);
            let c = client();
            let code = sign_in(&c, &base, "openid%20profile%20email").await;
            println!(
                "{}",
                redeem(&c, &base, &code).await["access_token"]
                    .as_str()
                    .unwrap()
            );
        }
        "discovery" | "jwks" | "client-credentials" | "userinfo" | "introspect" => {
            let (base, seconds, tasks) = (arg(2), arg(3).parse().unwrap(), arg(4).parse().unwrap());
            let token = match arg(1).as_str() {
                "userinfo" | "introspect" => {
                    let c = client();
                    let code = sign_in(&c, &base, "openid%20profile%20email").await;
                    redeem(&c, &base, &code).await["access_token"]
                        .as_str()
                        .unwrap()
                        .to_string()
                }
                _ => String::new(),
            };
            // A client (so a connection) per task, as wrk keeps one per connection.
            // Each connects before the clock starts.
            let warm = format!("{base}/jwks");
            let setup = move || {
                let warm = warm.clone();
                async move {
                    let c = client();
                    c.get(&warm).send().await.unwrap();
                    c
                }
            };
            let label = format!("{} {base}", arg(1));
            match arg(1).as_str() {
                "discovery" | "jwks" => {
                    let path = if arg(1) == "jwks" {
                        "/jwks"
                    } else {
                        "/.well-known/openid-configuration"
                    };
                    let url = format!("{base}{path}");
                    let connect = move || {
                        let url = url.clone();
                        async move { RawGet::connect(&url).await.get().await }
                    };
                    let step = |conn: RawGet| -> StepFuture<RawGet> { Box::pin(conn.get()) };
                    measure(&label, seconds, tasks, rate, connect, step).await
                }
                "client-credentials" => {
                    let url = format!("{base}/token");
                    let step = repeat(move |c| {
                        c.post(&url).form(&[
                            ("grant_type", "client_credentials"),
                            ("client_id", "bench-svc"),
                            ("client_secret", "bench-svc-secret-0123456789-0123456789"),
                        ])
                    });
                    measure(&label, seconds, tasks, rate, setup, step).await
                }
                "userinfo" => {
                    let url = format!("{base}/userinfo");
                    let step = repeat(move |c| c.get(&url).bearer_auth(&token));
                    measure(&label, seconds, tasks, rate, setup, step).await
                }
                _ => {
                    let url = format!("{base}/introspect");
                    let step = repeat(move |c| {
                        c.post(&url)
                            .basic_auth(CLIENT, Some(SECRET))
                            .form(&[("token", token.as_str())])
                    });
                    measure(&label, seconds, tasks, rate, setup, step).await
                }
            }
        }
        "refresh" => {
            let (base, seconds, tasks) = (arg(2), arg(3).parse().unwrap(), arg(4).parse().unwrap());
            let setup_base = base.clone();
            let shared = client();
            let first = sign_in(&shared, &base, "offline_access").await;
            let first = redeem(&shared, &base, &first).await;
            let shared_for_setup = shared.clone();
            let first_refresh = first["refresh_token"].as_str().unwrap().to_string();
            let used_first = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            measure(
                "refresh_token grants (ES256 access token, no ID token)",
                seconds,
                tasks,
                rate,
                move || {
                    let (c, base, used, first) = (
                        shared_for_setup.clone(),
                        setup_base.clone(),
                        used_first.clone(),
                        first_refresh.clone(),
                    );
                    async move {
                        // Each task its own family: a fresh code through the existing session.
                        if !used.swap(true, std::sync::atomic::Ordering::SeqCst) {
                            return (c, first);
                        }
                        let r = c
                            .get(authorize_url(&base, "offline_access"))
                            .send()
                            .await
                            .unwrap();
                        let code = code_of(r.headers()["location"].to_str().unwrap());
                        let t = redeem(&c, &base, &code).await;
                        (c, t["refresh_token"].as_str().unwrap().to_string())
                    }
                },
                move |(c, token): (reqwest::Client, String)| -> StepFuture<_> {
                    let base = base.clone();
                    Box::pin(async move {
                        let r = c
                            .post(format!("{base}/token"))
                            .basic_auth(CLIENT, Some(SECRET))
                            .form(&[
                                ("grant_type", "refresh_token"),
                                ("refresh_token", token.as_str()),
                            ])
                            .send()
                            .await
                            .unwrap();
                        assert!(r.status().is_success(), "refresh: {}", r.status());
                        let body: serde_json::Value = r.json().await.unwrap();
                        let next = body["refresh_token"].as_str().unwrap().to_string();
                        (c, next)
                    })
                },
            )
            .await;
        }
        "code-flow" => {
            let (base, seconds, tasks) = (arg(2), arg(3).parse().unwrap(), arg(4).parse().unwrap());
            let setup_base = base.clone();
            measure(
                "authorize + token with an existing session (RS256 ID token, ES256 access token)",
                seconds,
                tasks,
                rate,
                move || {
                    let base = setup_base.clone();
                    async move {
                        let c = client();
                        let code = sign_in(&c, &base, "openid").await;
                        redeem(&c, &base, &code).await;
                        c
                    }
                },
                move |c: reqwest::Client| -> StepFuture<_> {
                    let base = base.clone();
                    Box::pin(async move {
                        let r = c.get(authorize_url(&base, "openid")).send().await.unwrap();
                        let code = code_of(r.headers()["location"].to_str().unwrap());
                        redeem(&c, &base, &code).await;
                        c
                    })
                },
            )
            .await;
        }
        "saml-sso" => {
            let (base, seconds, tasks) = (arg(2), arg(3).parse().unwrap(), arg(4).parse().unwrap());
            let setup_base = base.clone();
            measure(
                "SAML AuthnRequest to signed Response with an existing session (RSA-SHA256)",
                seconds,
                tasks,
                rate,
                move || {
                    let base = setup_base.clone();
                    async move {
                        let c = client();
                        sign_in(&c, &base, "openid").await;
                        c
                    }
                },
                move |c: reqwest::Client| -> StepFuture<_> {
                    let base = base.clone();
                    Box::pin(async move {
                        let r = c
                            .get(format!("{base}/saml/sso?SAMLRequest={}", authn_request()))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), 200, "saml sso");
                        r.bytes().await.unwrap();
                        c
                    })
                },
            )
            .await;
        }
        other => panic!("unknown scenario {other}; see bench/load.rs"),
    }
}
