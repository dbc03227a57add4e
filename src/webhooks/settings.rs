//! The webhook settings: the retry schedule, the development-only escapes from the delivery
//! guard, and extra CA certificates to trust. Flattened into `config::ServerArgs`; checked into
//! [`WebhookSettings`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default retry schedule (issue 13): the delay before each retry after a failure; after
/// the last one the delivery is marked failed.
pub const DEFAULT_SCHEDULE: &str = "5s,5m,30m,2h,5h,10h,14h,20h,24h";

/// Webhook delivery, as flags and `ONYX_*` variables.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Webhook settings")]
pub struct WebhookArgs {
    /// The delays before each retry of a failed delivery, comma-separated durations (`30s`,
    /// `5m`, `2h`, `1d`); after the last one the delivery is marked failed.
    #[arg(
        long,
        env = "ONYX_WEBHOOK_RETRY_SCHEDULE",
        default_value = DEFAULT_SCHEDULE,
        global = true
    )]
    pub webhook_retry_schedule: String,
    /// Webhooks may be delivered to private and loopback addresses (development and tests
    /// only: it opens a path to internal hosts).
    #[arg(long, env = "ONYX_WEBHOOK_ALLOW_PRIVATE", global = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub webhook_allow_private: bool,
    /// Webhook endpoints may use plain http (development and tests only).
    #[arg(long, env = "ONYX_WEBHOOK_INSECURE_HTTP", global = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub webhook_insecure_http: bool,
    /// A PEM file of CA certificates that webhook endpoints' certificates may also chain to,
    /// beside the public roots (tests, and endpoints behind a private CA). Every other check of
    /// the certificate still applies.
    #[arg(
        long,
        env = "ONYX_WEBHOOK_EXTRA_ROOT_CERT",
        value_name = "PATH",
        global = true
    )]
    pub webhook_extra_root_cert: Option<PathBuf>,
}

impl WebhookArgs {
    pub fn settings(&self) -> Result<WebhookSettings, String> {
        Ok(WebhookSettings {
            retry_schedule: parse_schedule(&self.webhook_retry_schedule)
                .map_err(|e| format!("ONYX_WEBHOOK_RETRY_SCHEDULE: {e}"))?,
            allow_private: self.webhook_allow_private,
            insecure_http: self.webhook_insecure_http,
            extra_roots: match &self.webhook_extra_root_cert {
                Some(path) => {
                    read_roots(path).map_err(|e| format!("ONYX_WEBHOOK_EXTRA_ROOT_CERT: {e}"))?
                }
                None => Vec::new(),
            },
            ..WebhookSettings::default()
        })
    }
}

/// The CA certificates of a PEM file, each checked as a trust anchor: a file with none, or with
/// one that is not a CA certificate rustls can use, is an error.
pub fn read_roots(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ders = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM file of certificates ({e})", path.display()))?;
    if ders.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    let mut store = rustls::RootCertStore::empty();
    ders.iter()
        .map(|der| {
            store.add(der.clone()).map_err(|e| {
                format!("{}: a certificate cannot be trusted ({e})", path.display())
            })?;
            reqwest::Certificate::from_der(der).map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect()
}

/// How webhooks are delivered. The defaults are the production settings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The delay before each retry; its length is the number of retries.
    pub retry_schedule: Vec<Duration>,
    /// Deliver to private and loopback addresses too (tests and development only).
    pub allow_private: bool,
    /// Allow plain-http endpoints (tests and development only).
    pub insecure_http: bool,
    /// Fixed addresses for host names, like curl's --resolve (tests only; still checked).
    pub resolve: Vec<(String, SocketAddr)>,
    /// CA certificates trusted beside the public roots (tests and private CAs).
    pub extra_roots: Vec<reqwest::Certificate>,
    /// Deliveries in flight at once, per instance.
    pub concurrency: usize,
    /// How long a claimed delivery is its worker's (wall-clock); longer than a delivery can
    /// take, so only a worker that died loses its claim.
    pub lease: Duration,
    /// How often the worker looks for due deliveries when nothing wakes it.
    pub poll_interval: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            retry_schedule: parse_schedule(DEFAULT_SCHEDULE).unwrap_or_default(),
            allow_private: false,
            insecure_http: false,
            resolve: Vec::new(),
            extra_roots: Vec::new(),
            concurrency: 64,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Reads a comma-separated list of durations: each a whole number and a unit, `s`, `m`, `h` or
/// `d` (`5s,5m,2h`). Empty entries are an error; an empty list means no retry at all only when
/// written as `none`.
pub fn parse_schedule(raw: &str) -> Result<Vec<Duration>, String> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    raw.split(',').map(|d| parse_duration(d.trim())).collect()
}

fn parse_duration(raw: &str) -> Result<Duration, String> {
    let bad = || format!("{raw:?} is not a duration like 30s, 5m, 2h or 1d");
    let unit_at = raw.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = raw.split_at(unit_at);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let secs = n
        .checked_mul(scale)
        .filter(|s| *s <= 30 * 86_400)
        .ok_or_else(|| format!("{raw:?} is longer than 30 days"))?;
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: WebhookArgs,
    }

    #[test]
    fn the_escape_flags_are_bare_flags() {
        // (Their variables take `1`, `true`, `yes`…: tests/api/webhook_crash.rs sets them so.)
        let parse = |argv: &[&str]| {
            let cli = Cli::try_parse_from(argv).expect("parses");
            (
                cli.args.webhook_allow_private,
                cli.args.webhook_insecure_http,
            )
        };
        assert_eq!(parse(&["t"]), (false, false));
        assert_eq!(parse(&["t", "--webhook-allow-private"]), (true, false));
        assert_eq!(parse(&["t", "--webhook-insecure-http"]), (false, true));
    }

    #[test]
    fn the_default_schedule_is_the_issues() {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        assert_eq!(
            parse_schedule(DEFAULT_SCHEDULE).unwrap(),
            vec![
                Duration::from_secs(5),
                Duration::from_secs(300),
                Duration::from_secs(1800),
                hours(2),
                hours(5),
                hours(10),
                hours(14),
                hours(20),
                hours(24),
            ]
        );
        assert_eq!(WebhookSettings::default().retry_schedule.len(), 9);
    }

    #[test]
    fn a_schedule_is_comma_separated_durations() {
        assert_eq!(
            parse_schedule(" 1s, 2s ,5s").unwrap(),
            vec![
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(5)
            ]
        );
        assert_eq!(
            parse_schedule("1d").unwrap(),
            vec![Duration::from_secs(86_400)]
        );
        assert!(parse_schedule("none").unwrap().is_empty());
        for bad in ["", "1s,,2s", "5", "s", "5x", "-1s", "1.5s", "31d", "1s;2s"] {
            assert!(parse_schedule(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_flags_check_the_schedule_and_name_the_variable() {
        let args = |schedule: &str| WebhookArgs {
            webhook_retry_schedule: schedule.into(),
            webhook_allow_private: false,
            webhook_insecure_http: true,
            webhook_extra_root_cert: None,
        };
        let s = args("1s,2s").settings().unwrap();
        assert_eq!(s.retry_schedule.len(), 2);
        assert!(s.insecure_http && !s.allow_private);
        let err = args("soon").settings().unwrap_err();
        assert!(err.starts_with("ONYX_WEBHOOK_RETRY_SCHEDULE"), "{err}");
    }

    #[test]
    fn an_extra_root_file_is_read_at_start_and_a_bad_one_names_its_variable() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/webhook-tls");
        let with = |path: Option<PathBuf>| WebhookArgs {
            webhook_retry_schedule: DEFAULT_SCHEDULE.into(),
            webhook_allow_private: false,
            webhook_insecure_http: false,
            webhook_extra_root_cert: path,
        };
        assert!(with(None).settings().unwrap().extra_roots.is_empty());
        let s = with(Some(fixtures.join("ca.pem"))).settings().unwrap();
        assert_eq!(s.extra_roots.len(), 1);
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        for bad in [empty, dir.path().join("missing.pem")] {
            let err = with(Some(bad)).settings().unwrap_err();
            assert!(err.starts_with("ONYX_WEBHOOK_EXTRA_ROOT_CERT: "), "{err}");
        }
    }
}
