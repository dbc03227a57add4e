use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

const TOKEN: &str = "onyx-id-verification=abc123";

/// What the test server does with a request.
enum Reply {
    /// Writes these bytes, then closes.
    Raw(Vec<u8>),
    /// Never answers, and keeps the connection open.
    Silent,
    /// Streams 1 MB with no length and keeps the connection open afterwards, so only a
    /// client that stops early can finish in time.
    Huge,
}

struct Server {
    addr: SocketAddr,
    /// The head of every request received, in order.
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1:0 that answers each request by its path.
async fn serve(route: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let route = Arc::new(route);
    let log = requests.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(answer(socket, route.clone(), log.clone()));
        }
    });
    Server { addr, requests }
}

async fn answer(
    mut socket: TcpStream,
    route: Arc<impl Fn(&str) -> Reply>,
    log: Arc<Mutex<Vec<String>>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split(' ').nth(1).unwrap_or("").to_string();
    log.lock().unwrap().push(head);
    match route(&path) {
        Reply::Raw(bytes) => {
            let _ = socket.write_all(&bytes).await;
            let _ = socket.shutdown().await;
        }
        Reply::Silent => tokio::time::sleep(Duration::from_secs(60)).await,
        Reply::Huge => {
            let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";
            if socket.write_all(head).await.is_err() {
                return;
            }
            let chunk = vec![b'a'; 16 * 1024];
            for _ in 0..64 {
                if socket.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    }
}

fn http(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    Reply::Raw(bytes)
}

fn config_for(server: &Server) -> VerifierConfig {
    VerifierConfig {
        allow_private: true,
        insecure_http: true,
        resolve: vec![("partner.example".to_string(), server.addr)],
        ..VerifierConfig::default()
    }
}

fn verifier_for(server: &Server) -> Verifier {
    Verifier::new(config_for(server))
}

#[tokio::test]
async fn a_published_matching_token_verifies() {
    let server = serve(|_| http("200 OK", &[], format!("\r\n  {TOKEN}\n").as_bytes())).await;
    verifier_for(&server)
        .verify("partner.example", TOKEN)
        .await
        .unwrap();
    let requests = server.requests.lock().unwrap();
    assert_eq!(requests.len(), 1);
    let head = requests[0].to_ascii_lowercase();
    assert!(head.starts_with("get /.well-known/onyx-id-verification http/1.1\r\n"));
    assert!(head.contains("user-agent: onyx-id-domain-verification\r\n"));
    assert!(head.contains("host: partner.example\r\n"));
    assert!(!head.contains("cookie"));
}

#[tokio::test]
async fn a_loopback_address_is_refused_unless_private_addresses_are_allowed() {
    let server = serve(|_| http("200 OK", &[], TOKEN.as_bytes())).await;
    let verifier = Verifier::new(VerifierConfig {
        allow_private: false,
        ..config_for(&server)
    });
    let err = verifier.verify("partner.example", TOKEN).await.unwrap_err();
    assert!(matches!(err, VerifyError::NotPublic { .. }), "{err:?}");
    assert_eq!(err.code(), "address_not_public");
    assert_eq!(
        err.to_string(),
        "partner.example resolves to 127.0.0.1, a loopback address; publish the token on a public host"
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn a_different_body_is_a_mismatch_showing_only_its_start() {
    let body = format!("wrong\u{1b}[31m{}", "x".repeat(200));
    let server = serve(move |_| http("200 OK", &[], body.as_bytes())).await;
    let err = verifier_for(&server)
        .verify("partner.example", TOKEN)
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::Mismatch { .. }), "{err:?}");
    assert_eq!(err.code(), "token_mismatch");
    let message = err.to_string();
    assert!(message.contains("\"wrong\u{fffd}[31mxxx"), "{message}");
    assert!(!message.contains('\u{1b}'));
    assert!(!message.contains(&"x".repeat(60)), "{message}");
    assert!(message.contains("publish exactly the token"));
}

#[tokio::test]
async fn the_token_must_match_exactly() {
    let server = serve(|_| http("200 OK", &[], format!("{TOKEN}x").as_bytes())).await;
    let err = verifier_for(&server)
        .verify("partner.example", TOKEN)
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::Mismatch { .. }), "{err:?}");
}

#[tokio::test]
async fn an_empty_file_never_matches() {
    let server = serve(|_| http("200 OK", &[], b"")).await;
    let verifier = verifier_for(&server);
    let err = verifier.verify("partner.example", "").await.unwrap_err();
    assert!(err.to_string().contains("serves an empty file"), "{err}");
}

#[tokio::test]
async fn a_404_is_a_bad_status() {
    let server = serve(|_| http("404 Not Found", &[], TOKEN.as_bytes())).await;
    let err = verifier_for(&server)
        .verify("partner.example", TOKEN)
        .await
        .unwrap_err();
    assert!(
        matches!(err, VerifyError::Status { status: 404, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "bad_status");
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused_without_reading_it_all() {
    let server = serve(|_| Reply::Huge).await;
    let started = Instant::now();
    let err = verifier_for(&server)
        .verify("partner.example", TOKEN)
        .await
        .unwrap_err();
    assert!(
        matches!(err, VerifyError::TooLarge { limit: 4096, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "too_large");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_declared_length_over_the_cap_is_refused() {
    let server = serve(|_| http("200 OK", &[], &[b'a'; 5000])).await;
    let err = verifier_for(&server)
        .verify("partner.example", TOKEN)
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::TooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = serve(|_| Reply::Silent).await;
    let verifier = Verifier::new(VerifierConfig {
        timeout: Duration::from_millis(300),
        ..config_for(&server)
    });
    let started = Instant::now();
    let err = verifier.verify("partner.example", TOKEN).await.unwrap_err();
    assert!(matches!(err, VerifyError::Timeout { .. }), "{err:?}");
    assert_eq!(err.code(), "timeout");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_redirect_to_another_host_is_refused() {
    let server = serve(|_| {
        http(
            "302 Found",
            &[(
                "Location",
                "http://other.example/.well-known/onyx-id-verification",
            )],
            b"",
        )
    })
    .await;
    let err = verifier_for(&server)
        .verify("partner.example", TOKEN)
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::Redirect { .. }), "{err:?}");
    assert_eq!(err.code(), "redirect_refused");
    assert!(
        err.to_string()
            .contains("redirects to another host, other.example"),
        "{err}"
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_redirect_to_another_scheme_is_refused() {
    let server = serve(|_| {
        http(
            "301 Moved Permanently",
            &[("Location", "https://partner.example/x")],
            b"",
        )
    })
    .await;
    let err = verifier_for(&server)
        .verify("partner.example", TOKEN)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("redirects from http to https"),
        "{err}"
    );
}

#[tokio::test]
async fn a_redirect_on_the_same_host_is_followed() {
    let server = serve(|path| match path {
        "/.well-known/onyx-id-verification" => http(
            "307 Temporary Redirect",
            &[("Location", "/files/token.txt")],
            b"",
        ),
        "/files/token.txt" => http("200 OK", &[], TOKEN.as_bytes()),
        _ => http("404 Not Found", &[], b""),
    })
    .await;
    verifier_for(&server)
        .verify("partner.example", TOKEN)
        .await
        .unwrap();
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn redirects_stop_after_three_hops() {
    let server = serve(|_| http("302 Found", &[("Location", "/again")], b"")).await;
    let err = verifier_for(&server)
        .verify("partner.example", TOKEN)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("redirects more than 3 times"),
        "{err}"
    );
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn a_body_that_is_not_utf8_is_not_text() {
    let server = serve(|_| http("200 OK", &[], &[0xff, 0xfe, 0x00])).await;
    let err = verifier_for(&server)
        .verify("partner.example", TOKEN)
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::NotText { .. }), "{err:?}");
    assert_eq!(err.code(), "not_text");
}

#[tokio::test]
async fn invalid_domains_are_refused_before_any_network_use() {
    let invalid = [
        "",
        "10.0.0.1",
        "::1",
        "[::1]",
        "a..b",
        ".example.com",
        "example.com.",
        "exa mple.com",
        "example.com:80",
        "https://example.com",
        "example.com/path",
        "Example.com",
        "example",
        "-partner.example",
        "partner.123",
        "0x7f.1",
        "localhost",
        "parté.example",
    ];
    let server = serve(|_| http("200 OK", &[], TOKEN.as_bytes())).await;
    let mut config = VerifierConfig {
        allow_private: false,
        ..config_for(&server)
    };
    config.resolve = invalid
        .iter()
        .map(|d| (d.to_string(), server.addr))
        .collect();
    let verifier = Verifier::new(config);
    for domain in invalid {
        let err = verifier.verify(domain, TOKEN).await.unwrap_err();
        assert!(
            matches!(err, VerifyError::InvalidDomain(_)),
            "{domain:?}: {err:?}"
        );
        assert_eq!(err.code(), "domain_invalid");
    }
    let long = format!("{}.example", "a".repeat(64));
    let err = verifier.verify(&long, TOKEN).await.unwrap_err();
    assert!(matches!(err, VerifyError::InvalidDomain(_)));
    assert_eq!(server.hits(), 0);
    assert_eq!(
        verifier
            .verify("example.com:80", TOKEN)
            .await
            .unwrap_err()
            .to_string(),
        "\"example.com:80\" is not a domain name Onyx can verify: remove the port"
    );
}

#[test]
fn localhost_is_a_domain_only_when_private_addresses_are_allowed() {
    assert!(domain_problem("localhost", true).is_none());
    assert!(domain_problem("localhost", false).is_some());
    assert!(domain_problem("partner.example", false).is_none());
    assert!(domain_problem("xn--bcher-kva.example", false).is_none());
    assert!(domain_problem("a-1.b2.example", false).is_none());
}

#[test]
fn url_for_names_the_well_known_path() {
    let verifier = Verifier::new(VerifierConfig::default());
    assert_eq!(
        verifier.url_for("partner.example"),
        "https://partner.example/.well-known/onyx-id-verification"
    );
    let insecure = Verifier::new(VerifierConfig {
        insecure_http: true,
        ..VerifierConfig::default()
    });
    assert!(insecure.url_for("partner.example").starts_with("http://"));
}

#[test]
fn new_tokens_are_prefixed_random_base64url() {
    let a = new_token();
    let b = new_token();
    assert_ne!(a, b);
    let random = a.strip_prefix("onyx-id-verification=").unwrap();
    assert_eq!(random.len(), 43);
    assert!(
        random
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    );
}

#[test]
fn shown_text_is_cut_and_cleaned() {
    assert_eq!(shown("abc", 60), "abc");
    assert_eq!(shown("abcdef", 3), "abc…");
    assert_eq!(shown("a\nb\u{202e}c", 60), "a\u{fffd}b\u{fffd}c");
    assert_eq!(shown("ééé", 2), "éé…");
}
