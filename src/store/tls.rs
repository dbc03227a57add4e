//! PostgreSQL over TLS, on rustls with the ring provider (no OpenSSL, no aws-lc).
//!
//! onyx-id talks to PostgreSQL through two drivers: sqlx's pool and the pipelined tokio-postgres
//! connections (`pipeline`). Both must encrypt, and verify, the same way, so the TLS settings are
//! read here once, from the database URL as libpq reads them: `sslmode` (`disable`, `prefer`,
//! `require`, `verify-ca`, `verify-full`; `PGSSLMODE` when the URL has none, else `prefer`) and
//! `sslrootcert` (a PEM file of CA certificates; else `PGSSLROOTCERT`). sqlx reads the same two
//! parameters from the same URL; tokio-postgres does not know the `verify-*` modes nor
//! `sslrootcert`, so [`PgTls::tokio_postgres_url`] leaves them out and [`PgTls::connector`]
//! carries them instead, verifying exactly as sqlx does:
//!
//! - `disable`: clear text.
//! - `prefer` (the default): TLS when the server offers it, unverified; clear text otherwise.
//! - `require`: TLS or no connection; the certificate is not checked (it protects against
//!   eavesdropping, not against someone in the middle).
//! - `verify-ca`: TLS, the certificate chain must lead to a trusted CA; the host name is not
//!   checked.
//! - `verify-full`: `verify-ca`, and the certificate must name the host of the URL.
//!
//! Trusted CAs are the bundled Mozilla roots (webpki-roots) plus those in `sslrootcert`.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;
use url::Url;

/// libpq's `sslmode` (PostgreSQL docs, "SSL Support", table "SSL Mode Descriptions").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// `source` names where the value came from, for the error.
    fn parse(raw: &str, source: &str) -> Result<Self, String> {
        Ok(match raw {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            // libpq's "allow" tries clear text first: a downgrade nobody should pick by accident.
            other => {
                return Err(format!(
                    "{source} {other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// The TLS settings of a PostgreSQL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTls {
    pub mode: SslMode,
    pub root_cert: Option<PathBuf>,
}

/// The URL parameters read here, which tokio-postgres must not see.
const PARAMS: [&str; 2] = ["sslmode", "sslrootcert"];

impl PgTls {
    /// The settings of `url`, with `PGSSLMODE` and `PGSSLROOTCERT` as defaults like sqlx.
    pub fn from_url(url: &str) -> Result<Self, String> {
        Self::from_url_and_env(url, |name| std::env::var(name).ok())
    }

    pub fn from_url_and_env(
        url: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let parsed =
            Url::parse(url).map_err(|e| format!("ONYX_DATABASE_URL is not a valid URL: {e}"))?;
        let param = |name: &str| {
            parsed
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let mode = match (param("sslmode"), env("PGSSLMODE")) {
            (Some(raw), _) => SslMode::parse(&raw, "ONYX_DATABASE_URL sslmode")?,
            (None, Some(raw)) => SslMode::parse(&raw, "PGSSLMODE")?,
            (None, None) => SslMode::Prefer,
        };
        let root_cert = param("sslrootcert")
            .or_else(|| env("PGSSLROOTCERT"))
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        Ok(Self { mode, root_cert })
    }

    /// `url` without the parameters read here, for tokio-postgres (which refuses
    /// `sslrootcert` and the `verify-*` modes).
    pub fn tokio_postgres_url(url: &str) -> Result<String, String> {
        let mut parsed =
            Url::parse(url).map_err(|e| format!("ONYX_DATABASE_URL is not a valid URL: {e}"))?;
        let kept: Vec<(String, String)> = parsed
            .query_pairs()
            .filter(|(k, _)| !PARAMS.contains(&k.as_ref()))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(kept);
        }
        Ok(parsed.to_string())
    }

    /// The mode tokio-postgres negotiates with: it only knows whether TLS is off, wanted or
    /// required; the verification is in [`PgTls::connector`].
    pub fn tokio_postgres_mode(&self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Tp;
        match self.mode {
            SslMode::Disable => Tp::Disable,
            SslMode::Prefer => Tp::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Tp::Require,
        }
    }

    /// The rustls configuration for this mode. Reads `sslrootcert`: a missing or unreadable
    /// file, or one with no certificate, is an error that names it.
    pub fn client_config(&self) -> Result<ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up: {e}"))?;
        let chain = match self.mode {
            SslMode::Disable | SslMode::Prefer | SslMode::Require => None,
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let roots = Arc::new(self.roots()?);
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| format!("TLS set-up: {e}"))?;
                if self.mode == SslMode::VerifyFull {
                    return Ok(builder.with_webpki_verifier(webpki).with_no_client_auth());
                }
                Some(webpki)
            }
        };
        Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Lenient { chain, provider }))
            .with_no_client_auth())
    }

    /// The TLS connector for the pipelined tokio-postgres connections.
    pub fn connector(&self) -> Result<MakeRustlsConnect, String> {
        Ok(MakeRustlsConnect::new(self.client_config()?))
    }

    fn roots(&self) -> Result<RootCertStore, String> {
        let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let Some(path) = &self.root_cert else {
            return Ok(roots);
        };
        let shown = path.display();
        let pem = std::fs::read(path)
            .map_err(|e| format!("ONYX_DATABASE_URL sslrootcert {shown}: cannot read it: {e}"))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| {
                format!("ONYX_DATABASE_URL sslrootcert {shown}: not a PEM certificate file: {e}")
            })?;
            roots.add(cert).map_err(|e| {
                format!("ONYX_DATABASE_URL sslrootcert {shown}: unusable certificate: {e}")
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "ONYX_DATABASE_URL sslrootcert {shown}: holds no PEM certificate"
            ));
        }
        Ok(roots)
    }
}

/// The modes that check less than the whole certificate, as libpq and sqlx do in them:
/// `prefer` and `require` accept any certificate (`chain: None`); `verify-ca` verifies the chain
/// but not the name in it. The handshake signatures are always checked (the peer holds the key
/// of the certificate it sent), so the session is encrypted to whoever answered.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<PgTls, String> {
        PgTls::from_url_and_env(url, |_| None)
    }

    #[test]
    fn sslmode_and_sslrootcert_are_read_from_the_url() {
        let tls = parse("postgres://u@db.example/onyx?sslmode=verify-full&sslrootcert=/etc/ca.pem")
            .unwrap();
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        for (raw, mode) in [
            ("disable", SslMode::Disable),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
        ] {
            let tls = parse(&format!("postgres://u@db.example/onyx?sslmode={raw}")).unwrap();
            assert_eq!(tls.mode, mode);
            assert_eq!(mode.as_str(), raw);
        }
    }

    #[test]
    fn without_sslmode_the_environment_then_prefer_decide() {
        assert_eq!(parse("postgres://u@db/onyx").unwrap().mode, SslMode::Prefer);
        let env = |name: &str| match name {
            "PGSSLMODE" => Some("require".to_string()),
            "PGSSLROOTCERT" => Some("/ca.pem".to_string()),
            _ => None,
        };
        let tls = PgTls::from_url_and_env("postgres://u@db/onyx", env).unwrap();
        assert_eq!(tls.mode, SslMode::Require);
        assert_eq!(tls.root_cert, Some(PathBuf::from("/ca.pem")));
        // The URL wins over the environment.
        let tls = PgTls::from_url_and_env("postgres://u@db/onyx?sslmode=disable", env).unwrap();
        assert_eq!(tls.mode, SslMode::Disable);
        let bad = |_: &str| Some("on".to_string());
        let e = PgTls::from_url_and_env("postgres://u@db/onyx", bad).unwrap_err();
        assert!(e.starts_with("PGSSLMODE \"on\""), "{e}");
    }

    #[test]
    fn a_bad_sslmode_is_one_line_that_names_the_choices() {
        for bad in ["allow", "verify_full", "REQUIRE", ""] {
            let e = parse(&format!("postgres://u@db/onyx?sslmode={bad}")).unwrap_err();
            assert!(e.contains("sslmode") && e.contains("verify-full"), "{e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn tokio_postgres_gets_the_url_without_the_tls_parameters() {
        assert_eq!(
            PgTls::tokio_postgres_url(
                "postgres://u:p@db:5432/onyx?sslmode=verify-full&sslrootcert=%2Fca.pem&application_name=x"
            )
            .unwrap(),
            "postgres://u:p@db:5432/onyx?application_name=x"
        );
        assert_eq!(
            PgTls::tokio_postgres_url("postgres://u@db/onyx?sslmode=require").unwrap(),
            "postgres://u@db/onyx"
        );
        let url = PgTls::tokio_postgres_url("postgres://u@db/onyx?sslmode=verify-ca").unwrap();
        assert!(url.parse::<tokio_postgres::Config>().is_ok());
    }

    /// A TLS handshake with the test PostgreSQL server (its SSLRequest first), presenting
    /// `name` as the host name.
    fn handshake(tls: &PgTls, name: &str) -> Result<(), String> {
        use std::io::{Read, Write};
        let url = std::env::var("ONYX_TEST_POSTGRES_URL").map_err(|e| e.to_string())?;
        let url = Url::parse(&url).map_err(|e| e.to_string())?;
        let address = (
            url.host_str().unwrap_or("127.0.0.1"),
            url.port().unwrap_or(5432),
        );
        let mut tcp = std::net::TcpStream::connect(address).map_err(|e| e.to_string())?;
        // SSLRequest: length 8, code 80877103; the server answers 'S' to go on with TLS.
        tcp.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
            .map_err(|e| e.to_string())?;
        let mut answer = [0u8];
        tcp.read_exact(&mut answer).map_err(|e| e.to_string())?;
        assert_eq!(answer, *b"S", "the test server speaks TLS");
        let name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
        let mut conn = rustls::ClientConnection::new(Arc::new(tls.client_config()?), name)
            .map_err(|e| e.to_string())?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    #[test]
    fn each_mode_checks_the_certificate_as_libpq_does() {
        let Ok(ca) = std::env::var("ONYX_TEST_POSTGRES_TLS_ROOT_CERT") else {
            return;
        };
        let with = |mode, root_cert: Option<&str>| PgTls {
            mode,
            root_cert: root_cert.map(PathBuf::from),
        };
        // The test server's certificate names 127.0.0.1 and localhost, signed by `ca`.
        let other = "not-the-server.example";
        for mode in [SslMode::Prefer, SslMode::Require] {
            assert_eq!(handshake(&with(mode, None), other), Ok(()), "{mode:?}");
        }
        assert_eq!(
            handshake(&with(SslMode::VerifyCa, Some(&ca)), other),
            Ok(())
        );
        assert_eq!(
            handshake(&with(SslMode::VerifyFull, Some(&ca)), "localhost"),
            Ok(())
        );
        let e = handshake(&with(SslMode::VerifyFull, Some(&ca)), other).unwrap_err();
        assert!(e.to_lowercase().contains("name"), "{e}");
        // Without the CA, only the public roots: the chain leads nowhere trusted.
        for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
            let e = handshake(&with(mode, None), "localhost").unwrap_err();
            assert!(e.to_lowercase().contains("issuer"), "{mode:?}: {e}");
        }
    }

    #[test]
    fn a_missing_or_empty_root_certificate_file_is_named() {
        let tls = PgTls {
            mode: SslMode::VerifyFull,
            root_cert: Some(PathBuf::from("/nonexistent/ca.pem")),
        };
        let e = tls.client_config().unwrap_err();
        assert!(
            e.contains("/nonexistent/ca.pem") && e.contains("cannot read"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let tls = PgTls {
            mode: SslMode::VerifyCa,
            root_cert: Some(empty),
        };
        assert!(
            tls.client_config()
                .unwrap_err()
                .contains("no PEM certificate")
        );
        // Modes that verify nothing do not read it.
        let tls = PgTls {
            mode: SslMode::Require,
            root_cert: Some(PathBuf::from("/nonexistent/ca.pem")),
        };
        assert!(tls.client_config().is_ok());
    }
}
