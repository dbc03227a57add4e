//! A webhook receiver for the tests: a real axum server on 127.0.0.1 that verifies each
//! delivery's Standard Webhooks signature with the reference library (`standardwebhooks`), an
//! implementation independent of onyx-id's, and keeps what it got.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

/// One delivery the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `webhook-id`.
    pub id: String,
    /// Whether a trusted secret verified the signature.
    pub verified: bool,
    pub body: Value,
}

impl Delivery {
    pub fn event_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    secrets: Vec<String>,
    got: Vec<Delivery>,
    /// What it answers (204 unless set).
    status: Option<u16>,
}

#[derive(Clone)]
pub struct Receiver {
    base: String,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        Self::serve(listener, base)
    }

    /// The receiver on `listener` (an https one, say: support/tls.rs), reached at `base`.
    pub fn serve<L>(listener: L, base: String) -> Self
    where
        L: axum::serve::Listener,
        L::Addr: std::fmt::Debug,
    {
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let shared = inner.clone();
        let handler = move |headers: HeaderMap, body: axum::body::Bytes| {
            let inner = shared.clone();
            async move {
                let mut s = inner.lock().unwrap();
                let verified = s.secrets.iter().any(|secret| {
                    standardwebhooks::Webhook::new(secret)
                        .map(|w| w.verify(&body, &headers).is_ok())
                        .unwrap_or(false)
                });
                let id = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let body = serde_json::from_slice(&body).unwrap_or_default();
                s.got.push(Delivery { id, verified, body });
                s.status
                    .and_then(|c| StatusCode::from_u16(c).ok())
                    .unwrap_or(StatusCode::NO_CONTENT)
            }
        };
        let router = axum::Router::new().fallback(handler);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { base, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signatures made with `secret` verify from now on.
    pub fn trust(&self, secret: &str) {
        self.inner.lock().unwrap().secrets.push(secret.to_string());
    }

    /// Answers every delivery with `status` from now on.
    pub fn answer(&self, status: u16) {
        self.inner.lock().unwrap().status = Some(status);
    }

    pub fn got(&self) -> Vec<Delivery> {
        self.inner.lock().unwrap().got.clone()
    }

    /// Waits for a delivery of `event_type` beyond the first `seen` of them.
    pub async fn next_of(&self, event_type: &str, seen: usize) -> Delivery {
        let found = super::wait::until(Duration::from_millis(20), || async {
            self.got()
                .into_iter()
                .filter(|d| d.event_type() == event_type)
                .nth(seen)
        })
        .await;
        if let Some(d) = found {
            return d;
        }
        let types: Vec<String> = self
            .got()
            .iter()
            .map(|d| d.event_type().to_string())
            .collect();
        panic!("no {event_type} event #{seen} arrived; got {types:?}");
    }
}
