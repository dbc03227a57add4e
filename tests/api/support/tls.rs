//! An https listener for the test receiver: tokio-rustls on a loopback port, presenting one of
//! the test certificates of fixtures/webhook-tls (made by its make.sh). The test can change the
//! certificate it presents, as a partner fixing its endpoint would. Handshakes run beside the
//! accept loop, so one that the client aborts (onyx-id refusing the certificate) holds up no
//! other; the refused ones are counted.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

/// A certificate the receiver can present.
#[derive(Debug, Clone, Copy)]
pub enum Cert {
    /// For localhost and 127.0.0.1, issued by the test CA (`ca.pem`).
    Valid,
    /// For localhost and 127.0.0.1, signed by itself.
    SelfSigned,
    /// For hooks.other.example, issued by the test CA.
    OtherHost,
}

impl Cert {
    fn name(self) -> &'static str {
        match self {
            Cert::Valid => "localhost",
            Cert::SelfSigned => "self-signed",
            Cert::OtherHost => "other-host",
        }
    }

    fn config(self) -> Arc<ServerConfig> {
        let certs = CertificateDer::pem_file_iter(fixture(&format!("{}.pem", self.name())))
            .expect("the certificate fixture")
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(fixture(&format!("{}.key", self.name())))
            .expect("the key fixture");
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .expect("a usable certificate and key");
        Arc::new(config)
    }
}

/// A file of fixtures/webhook-tls.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api/fixtures/webhook-tls")
        .join(name)
}

/// What the listener presents, and how many handshakes failed.
#[derive(Clone)]
pub struct Presented {
    config: Arc<Mutex<Arc<ServerConfig>>>,
    failed: Arc<AtomicUsize>,
}

impl Presented {
    /// New connections are offered `cert` from now on.
    pub fn present(&self, cert: Cert) {
        *self.config.lock().unwrap() = cert.config();
    }

    /// How many TLS handshakes did not complete (the client refused the certificate).
    pub fn failed_handshakes(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }

    /// Whether a handshake failed, waiting up to 5 s for the listener to count it: the client
    /// gives up on the certificate before the listener's side of the handshake ends.
    pub async fn saw_a_failed_handshake(&self) -> bool {
        for _ in 0..250 {
            if self.failed_handshakes() >= 1 {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        false
    }
}

/// An https listener on 127.0.0.1, for `axum::serve`.
pub struct TlsListener {
    accepted: tokio::sync::mpsc::UnboundedReceiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl TlsListener {
    /// Listens on a free loopback port, presenting `cert`.
    pub async fn bind(cert: Cert) -> (Self, Presented) {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let presented = Presented {
            config: Arc::new(Mutex::new(cert.config())),
            failed: Arc::default(),
        };
        let (send, accepted) = tokio::sync::mpsc::unbounded_channel();
        let shared = presented.clone();
        tokio::spawn(async move {
            while let Ok((stream, peer)) = tcp.accept().await {
                let config = shared.config.lock().unwrap().clone();
                let failed = shared.failed.clone();
                let send = send.clone();
                tokio::spawn(async move {
                    let handshake = tokio_rustls::TlsAcceptor::from(config).accept(stream);
                    match tokio::time::timeout(Duration::from_secs(10), handshake).await {
                        Ok(Ok(tls)) => {
                            let _ = send.send((tls, peer));
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        (Self { accepted, addr }, presented)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept loop ended: no connection will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
