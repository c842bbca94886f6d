//! A small SMTP server for the tests: it speaks enough of RFC 5321 (EHLO, STARTTLS per RFC 3207,
//! AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT) for a real client to deliver to it, plainly,
//! upgraded with STARTTLS, or over TLS from the first byte, and keeps what arrived.

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, Clone, Default)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent: headers, a blank line, the body (dot-unstuffed).
    pub data: String,
    /// `user\0password` when the client authenticated.
    pub auth: Option<String>,
    /// Whether the message came over TLS.
    pub tls: bool,
}

impl Received {
    /// The body after the headers, decoded from its transfer encoding.
    pub fn body(&self) -> String {
        let body = self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        match self.header("Content-Transfer-Encoding").as_deref() {
            Some("quoted-printable") => quoted_printable(body),
            Some("base64") => {
                let joined: String = body.split_whitespace().collect();
                String::from_utf8(STANDARD.decode(joined).unwrap()).unwrap()
            }
            _ => body.to_string(),
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split_once("\r\n\r\n").map_or("", |(h, _)| h);
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
    }
}

/// RFC 2045 §6.7: soft line breaks joined, `=XX` turned back into bytes.
fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

pub struct SmtpSink {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How a sink speaks TLS.
#[derive(Clone)]
pub enum Security {
    None,
    /// Offers STARTTLS with this certificate.
    StartTls(TlsAcceptor),
    /// TLS from the first byte.
    Implicit(TlsAcceptor),
}

/// A certificate authority and a certificate it issued for 127.0.0.1: the CA's PEM (for the
/// client to trust) and an acceptor serving the certificate.
pub fn test_ca() -> (String, TlsAcceptor) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    (ca.pem(), TlsAcceptor::from(Arc::new(config)))
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        Self::start_with(Security::None).await
    }

    pub async fn start_with(security: Security) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (store, security) = (store.clone(), security.clone());
                tokio::spawn(async move {
                    let _ = match security {
                        Security::None => session(Box::new(socket), true, None, false, store).await,
                        Security::StartTls(acceptor) => {
                            session(Box::new(socket), true, Some(acceptor), false, store).await
                        }
                        Security::Implicit(acceptor) => match acceptor.accept(socket).await {
                            Ok(tls) => session(Box::new(tls), true, None, true, store).await,
                            Err(e) => Err(e),
                        },
                    };
                });
            }
        });
        SmtpSink {
            port,
            received,
            task,
        }
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (up to ten seconds) until `n` messages arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("expected {n} messages, got {:?}", self.messages());
    }
}

/// A plain or TLS connection, one type either way.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One SMTP conversation on `stream`: `greet` sends the greeting (not after STARTTLS, RFC 3207
/// §4.2), `starttls` offers the upgrade, `secure` says the stream is TLS already.
fn session(
    stream: Box<dyn Stream>,
    greet: bool,
    starttls: Option<TlsAcceptor>,
    secure: bool,
    store: Arc<Mutex<Vec<Received>>>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>> {
    Box::pin(async move {
        let mut lines = BufReader::new(stream);
        if greet {
            reply(&mut lines, "220 sink.test ESMTP ready").await?;
        }
        let mut current = Received::default();
        let mut auth = None;
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_string();
            let upper = command.to_ascii_uppercase();
            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                let offer = match (&starttls, secure) {
                    (Some(_), false) => "250-STARTTLS\r\n",
                    _ => "",
                };
                let text = format!("250-sink.test\r\n{offer}250-AUTH PLAIN\r\n250 8BITMIME");
                reply(&mut lines, &text).await?;
            } else if upper == "STARTTLS" && !secure {
                let Some(acceptor) = starttls.clone() else {
                    reply(&mut lines, "502 5.5.2 Command not recognized").await?;
                    continue;
                };
                reply(&mut lines, "220 2.0.0 Ready to start TLS").await?;
                // Everything said before the upgrade is forgotten (RFC 3207 §4.2).
                let tls = acceptor.accept(lines.into_inner()).await?;
                return session(Box::new(tls), false, None, true, store).await;
            } else if let Some(rest) = upper.strip_prefix("AUTH PLAIN") {
                let encoded = command[command.len() - rest.len()..].trim().to_string();
                let encoded = if encoded.is_empty() {
                    reply(&mut lines, "334 ").await?;
                    line.clear();
                    lines.read_line(&mut line).await?;
                    line.trim().to_string()
                } else {
                    encoded
                };
                let decoded = STANDARD.decode(encoded).unwrap_or_default();
                let text = String::from_utf8_lossy(&decoded);
                auth = Some(text.trim_start_matches('\0').to_string());
                reply(&mut lines, "235 2.7.0 Authenticated").await?;
            } else if upper.starts_with("MAIL FROM:") {
                current = Received {
                    from: command[10..].trim().to_string(),
                    auth: auth.clone(),
                    tls: secure,
                    ..Received::default()
                };
                reply(&mut lines, "250 2.1.0 OK").await?;
            } else if upper.starts_with("RCPT TO:") {
                current.to.push(command[8..].trim().to_string());
                reply(&mut lines, "250 2.1.5 OK").await?;
            } else if upper == "DATA" {
                reply(&mut lines, "354 End data with <CR><LF>.<CR><LF>").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                    data.push_str(unstuffed);
                }
                current.data = data;
                store.lock().unwrap().push(std::mem::take(&mut current));
                reply(&mut lines, "250 2.0.0 Queued").await?;
            } else if upper == "QUIT" {
                reply(&mut lines, "221 2.0.0 Bye").await?;
                return Ok(());
            } else if upper == "RSET" || upper == "NOOP" {
                reply(&mut lines, "250 2.0.0 OK").await?;
            } else {
                reply(&mut lines, "502 5.5.2 Command not recognized").await?;
            }
        }
    })
}

async fn reply<S: AsyncRead + AsyncWrite + Unpin>(
    lines: &mut BufReader<S>,
    text: &str,
) -> std::io::Result<()> {
    lines
        .get_mut()
        .write_all(format!("{text}\r\n").as_bytes())
        .await?;
    lines.get_mut().flush().await
}
