//! Typed settings. Raw strings from flags and `ONYX_*` variables are parsed here, once; an
//! invalid value stops the program with a one-line reason.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use url::Url;

/// The issuer identifier (OIDC Discovery §3, RFC 8414 §2): an https URL with no query or
/// fragment, or an http URL on a loopback host for development. Kept byte for byte as
/// configured, since clients compare it as a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer(String);

impl Issuer {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw).map_err(|e| format!("ONYX_ISSUER {raw:?} is not a URL: {e}"))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "ONYX_ISSUER {raw:?} must not have a query or a fragment"
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("ONYX_ISSUER {raw:?} must not carry credentials"));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(&url) => {}
            "http" => {
                return Err(format!(
                    "ONYX_ISSUER {raw:?} must use https (http is accepted only on a loopback host)"
                ));
            }
            other => {
                return Err(format!(
                    "ONYX_ISSUER {raw:?} has unsupported scheme {other:?}"
                ));
            }
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }

    /// The absolute URL of one of this server's endpoints (`path` starts with `/`).
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.0.trim_end_matches('/'), path)
    }
}

pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub fn is_loopback_ip(ip: IpAddr) -> bool {
    ip.is_loopback()
}

/// Which storage backend a database URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct DatabaseUrl {
    url: String,
    backend: Backend,
    /// Connections in the read pool (SQLite) or the pool (PostgreSQL).
    pub pool_size: u32,
    /// Every query through sqlx's pool: no direct SQLite reads, no inline token writer, no
    /// pipelined PostgreSQL connections (see `store::fast`). Off unless a test turns it on, so
    /// that the tests cover the plain path the fast ones fall back to; no flag sets it.
    pub plain_sqlx: bool,
}

impl std::fmt::Debug for DatabaseUrl {
    // A PostgreSQL URL can carry a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({:?}, [redacted])", self.backend)
    }
}

/// Pool connections unless `--db-pool-size` says otherwise.
pub const DEFAULT_POOL_SIZE: u32 = 8;

impl DatabaseUrl {
    /// Sets the pool size (1 to 1000).
    pub fn with_pool_size(mut self, size: u32) -> Result<Self, String> {
        if !(1..=1000).contains(&size) {
            return Err(format!(
                "ONYX_DB_POOL_SIZE {size} must be between 1 and 1000"
            ));
        }
        self.pool_size = size;
        Ok(self)
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Url::parse(raw).map_err(|e| format!("ONYX_DATABASE_URL is not a valid URL: {e}"))?;
            // A bad sslmode stops the start here, in one line.
            crate::store::tls::PgTls::from_url(raw)?;
            return Ok(Self {
                url: raw.to_string(),
                backend: Backend::Postgres,
                pool_size: DEFAULT_POOL_SIZE,
                plain_sqlx: false,
            });
        }
        if let Some(rest) = raw.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or("");
            if path.is_empty() || path == ":memory:" || rest.contains("mode=memory") {
                return Err(
                    "ONYX_DATABASE_URL must name a SQLite file (in-memory databases are not shared between connections)"
                        .into(),
                );
            }
            return Ok(Self {
                url: raw.to_string(),
                backend: Backend::Sqlite,
                pool_size: DEFAULT_POOL_SIZE,
                plain_sqlx: false,
            });
        }
        Err(format!(
            "ONYX_DATABASE_URL must start with sqlite:// or postgres:// (got {:?})",
            raw.split(':').next().unwrap_or("")
        ))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn expose(&self) -> &str {
        &self.url
    }

    /// For SQLite: the file path named by the URL.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.url.strip_prefix("sqlite:")?;
        let path = rest.strip_prefix("//").unwrap_or(rest);
        Some(PathBuf::from(path.split('?').next().unwrap_or(path)))
    }
}

/// How long each credential lives, in seconds (server-wide defaults; apps may override the
/// token lifetimes).
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub authorization_code: i64,
    pub access_token: i64,
    pub id_token: i64,
    /// A refresh token unused this long expires.
    pub refresh_token_idle: i64,
    /// No refresh token of a family lives past this, counted from the family's first token.
    pub refresh_token_absolute: i64,
    pub auth_request: i64,
    pub session: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            authorization_code: 60,
            access_token: 3600,
            id_token: 3600,
            refresh_token_idle: 14 * 24 * 3600,
            refresh_token_absolute: 60 * 24 * 3600,
            auth_request: 30 * 60,
            session: 12 * 3600,
        }
    }
}

impl Lifetimes {
    /// Checks that the lifetimes make sense together.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("ONYX_CODE_TTL", self.authorization_code),
            ("ONYX_ACCESS_TOKEN_TTL", self.access_token),
            ("ONYX_ID_TOKEN_TTL", self.id_token),
            ("ONYX_REFRESH_TOKEN_IDLE_TTL", self.refresh_token_idle),
            (
                "ONYX_REFRESH_TOKEN_ABSOLUTE_TTL",
                self.refresh_token_absolute,
            ),
        ];
        for (name, v) in positive {
            if v <= 0 {
                return Err(format!("{name} must be a positive number of seconds"));
            }
        }
        if self.authorization_code > 600 {
            return Err("ONYX_CODE_TTL must be at most 600 seconds (RFC 6749 §4.1.2)".into());
        }
        if self.refresh_token_idle > self.refresh_token_absolute {
            return Err(
                "ONYX_REFRESH_TOKEN_IDLE_TTL must not exceed ONYX_REFRESH_TOKEN_ABSOLUTE_TTL"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Everything a running server or an operator command needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub issuer: Issuer,
    pub database_url: DatabaseUrl,
    pub keys_dir: PathBuf,
    /// Seals the signing keys and instance secrets in the database; `None`: the keys folder's
    /// `key-encryption.key` (see `keys::KeyEncryptionKey::resolve`).
    pub key_encryption_key: Option<crate::keys::KeyEncryptionKey>,
    pub lifetimes: Lifetimes,
    /// `aud` of access tokens when the request names no resource.
    pub default_audience: String,
    /// Seconds between `keys rotate` and the new key signing (it is in the JWKS at once).
    pub key_publish_ahead: i64,
    /// How often expired rows are purged.
    pub purge_interval: std::time::Duration,
    /// How partner domains are fetched for verification.
    pub domain_verification: crate::partner::domain::VerifierConfig,
    /// Proxies whose `X-Forwarded-For` names the client (default: none).
    pub trusted_proxies: TrustedProxies,
    /// Failed sign-ins allowed, and how many password checks run at once.
    pub login_limits: LoginLimits,
    /// Unanswered authorization requests stored at most, per client address and per app.
    pub pending_requests: PendingCaps,
    /// How webhooks are delivered (retry schedule, development-only escapes).
    pub webhooks: crate::webhooks::WebhookSettings,
    /// How apps' `jwks_uri`s are fetched and cached.
    pub jwks_fetch: crate::oauth::jwks_uri::JwksFetchSettings,
    /// How far a DPoP proof's `iat` may be from the server's time, seconds (RFC 9449 §11.1);
    /// its `jti` is remembered that long.
    pub dpop_iat_window: i64,
    /// Every app must push its authorization requests (RFC 9126 §5,
    /// `require_pushed_authorization_requests`).
    pub require_pushed_authorization_requests: bool,
    /// `--metrics-bind`: the internal address of the metrics (then not on `bind`).
    pub metrics_bind: Option<SocketAddr>,
    /// `--drain-seconds`: how long SIGTERM's drain lasts.
    pub drain_seconds: u64,
}

/// The drain after SIGTERM, seconds: about one readiness probe period of a load balancer.
pub const DEFAULT_DRAIN_SECONDS: u64 = 5;

impl Settings {
    pub fn parse(
        bind: &str,
        issuer: &str,
        database_url: &str,
        keys_dir: &str,
    ) -> Result<Self, String> {
        let bind: SocketAddr = bind
            .parse()
            .map_err(|_| format!("ONYX_BIND {bind:?} is not an address:port"))?;
        let issuer = Issuer::parse(issuer)?;
        let database_url = DatabaseUrl::parse(database_url)?;
        if keys_dir.trim().is_empty() {
            return Err("ONYX_KEYS_DIR must not be empty".into());
        }
        let default_audience = issuer.as_str().to_string();
        Ok(Self {
            bind,
            issuer,
            database_url,
            keys_dir: PathBuf::from(keys_dir),
            key_encryption_key: None,
            lifetimes: Lifetimes::default(),
            default_audience,
            key_publish_ahead: 120,
            purge_interval: std::time::Duration::from_secs(60),
            domain_verification: Default::default(),
            trusted_proxies: TrustedProxies::default(),
            login_limits: LoginLimits::default(),
            pending_requests: PendingCaps::default(),
            webhooks: Default::default(),
            jwks_fetch: Default::default(),
            dpop_iat_window: 60,
            require_pushed_authorization_requests: false,
            metrics_bind: None,
            drain_seconds: DEFAULT_DRAIN_SECONDS,
        })
    }

    /// `--trusted-proxy` / `ONYX_TRUSTED_PROXIES`: each entry a CIDR (or one address).
    pub fn with_trusted_proxies(mut self, entries: &[String]) -> Result<Self, String> {
        self.trusted_proxies = TrustedProxies::parse(entries)?;
        Ok(self)
    }

    pub fn with_login_limits(mut self, limits: LoginLimits) -> Result<Self, String> {
        limits.validate()?;
        self.login_limits = limits;
        Ok(self)
    }

    pub fn with_pending_caps(mut self, caps: PendingCaps) -> Result<Self, String> {
        caps.validate()?;
        self.pending_requests = caps;
        Ok(self)
    }

    pub fn with_lifetimes(mut self, lifetimes: Lifetimes) -> Result<Self, String> {
        lifetimes.validate()?;
        self.lifetimes = lifetimes;
        Ok(self)
    }

    pub fn with_default_audience(mut self, audience: Option<&str>) -> Result<Self, String> {
        if let Some(a) = audience {
            validate_audience(a).map_err(|e| format!("ONYX_DEFAULT_AUDIENCE: {e}"))?;
            self.default_audience = a.to_string();
        }
        Ok(self)
    }
}

/// The proxies in front of onyx-id (a TLS-terminating load balancer, say). Only from these
/// peers is `X-Forwarded-For` read; from any other peer it is ignored, since anyone can send it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Parses CIDRs such as `10.0.0.0/8` or `fd00::/8`; a bare address is that one host.
    /// Empty entries (as from an empty variable) are skipped.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut nets = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let net = match entry.parse::<ipnet::IpNet>() {
                Ok(net) => net,
                Err(_) => match entry.parse::<IpAddr>() {
                    Ok(ip) => ipnet::IpNet::from(ip),
                    Err(_) => {
                        return Err(format!(
                            "ONYX_TRUSTED_PROXIES {entry:?} is not a CIDR (like 10.0.0.0/8 or fd00::/8)"
                        ));
                    }
                },
            };
            nets.push(net.trunc());
        }
        Ok(Self(nets))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Failed sign-ins allowed in `window` seconds, and the bound on password checks at once.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// Per account from one client address (IPv6: one /64): the lockout the owner meets only
    /// from the attacker's address.
    pub per_account_and_address: i64,
    /// Per account across all addresses: stops guessing spread over many addresses.
    pub per_account: i64,
    /// Per client address across all accounts: stops one address trying many accounts.
    pub per_address: i64,
    pub window: i64,
    /// Password checks (argon2, 19 MiB each) running at once: one per core.
    pub concurrent_checks: usize,
    /// How long a sign-in waits for a free check before it is told to try again.
    pub check_wait: std::time::Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            per_account_and_address: 5,
            per_account: 50,
            per_address: 30,
            window: 15 * 60,
            concurrent_checks: std::thread::available_parallelism().map_or(1, |n| n.get()),
            check_wait: std::time::Duration::from_secs(2),
        }
    }
}

impl LoginLimits {
    pub fn validate(&self) -> Result<(), String> {
        let counts = [
            (
                "ONYX_LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS",
                self.per_account_and_address,
            ),
            ("ONYX_LOGIN_MAX_FAILURES_PER_ACCOUNT", self.per_account),
            ("ONYX_LOGIN_MAX_FAILURES_PER_ADDRESS", self.per_address),
            ("ONYX_LOGIN_FAILURE_WINDOW", self.window),
        ];
        for (name, v) in counts {
            if v <= 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if self.window > 24 * 3600 {
            // Older attempts are purged after a day.
            return Err("ONYX_LOGIN_FAILURE_WINDOW must be at most 86400 seconds".into());
        }
        if self.per_account < self.per_account_and_address {
            return Err(
                "ONYX_LOGIN_MAX_FAILURES_PER_ACCOUNT must be at least ONYX_LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS"
                    .into(),
            );
        }
        if self.concurrent_checks == 0 {
            return Err("at least one password check must be allowed at once".into());
        }
        Ok(())
    }
}

/// Caps on unanswered authorization requests (each a stored row of up to about 8 KiB).
#[derive(Debug, Clone, Copy)]
pub struct PendingCaps {
    pub per_address: i64,
    pub per_app: i64,
}

impl Default for PendingCaps {
    fn default() -> Self {
        Self {
            per_address: 1000,
            per_app: 10_000,
        }
    }
}

impl PendingCaps {
    pub fn validate(&self) -> Result<(), String> {
        if self.per_address <= 0 {
            return Err("ONYX_MAX_PENDING_REQUESTS_PER_ADDRESS must be at least 1".into());
        }
        if self.per_app <= 0 {
            return Err("ONYX_MAX_PENDING_REQUESTS_PER_APP must be at least 1".into());
        }
        Ok(())
    }
}

/// An audience / resource indicator (RFC 8707 §2): an absolute URI without a fragment.
pub fn validate_audience(raw: &str) -> Result<(), String> {
    let url = Url::parse(raw).map_err(|_| format!("{raw:?} is not an absolute URI"))?;
    if url.fragment().is_some() || raw.contains('#') {
        return Err(format!("{raw:?} must not contain a fragment"));
    }
    if raw.len() > 512 {
        return Err("an audience is at most 512 characters".into());
    }
    Ok(())
}

/// Every server setting, as a flag and an `ONYX_*` variable. Flattened into the command line
/// with `global = true`, so each subcommand takes them too; its `--help` lists its own options
/// first and these under "Server settings".
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Server settings")]
pub struct ServerArgs {
    /// Address and port to listen on.
    #[arg(
        long,
        env = "ONYX_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: String,
    /// Issuer identifier: the public base URL of this server (https, or http on loopback).
    #[arg(
        long,
        env = "ONYX_ISSUER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub issuer: String,
    /// Database: sqlite://relative.db, sqlite:///abs/path.db or postgres://user@host/db.
    #[arg(
        long,
        env = "ONYX_DATABASE_URL",
        default_value = "sqlite://onyx-id.db",
        global = true
    )]
    pub database_url: String,
    /// Folder of the key encryption key file when ONYX_KEY_ENCRYPTION_KEY is not set (created
    /// on first start), and of the file keys a deployment kept before they moved into the
    /// database (imported on first start).
    #[arg(long, env = "ONYX_KEYS_DIR", default_value = "keys", global = true)]
    pub keys_dir: String,
    /// The key encryption key that seals the signing keys and instance secrets in the
    /// database: 32 random bytes, base64url without padding (43 characters). The same on every
    /// instance; keep a backup. Default: the file key-encryption.key in the keys folder,
    /// created on first start.
    #[arg(
        long,
        env = "ONYX_KEY_ENCRYPTION_KEY",
        hide_env_values = true,
        global = true
    )]
    pub key_encryption_key: Option<crate::crypto::Secret>,
    /// Log format on stderr.
    #[arg(
        long,
        env = "ONYX_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: crate::telemetry::LogFormat,
    /// Access token lifetime, seconds (apps may override).
    #[arg(
        long,
        env = "ONYX_ACCESS_TOKEN_TTL",
        default_value_t = 3600,
        global = true
    )]
    pub access_token_ttl: i64,
    /// ID token lifetime, seconds (apps may override).
    #[arg(long, env = "ONYX_ID_TOKEN_TTL", default_value_t = 3600, global = true)]
    pub id_token_ttl: i64,
    /// Authorization code lifetime, seconds (at most 600).
    #[arg(long, env = "ONYX_CODE_TTL", default_value_t = 60, global = true)]
    pub code_ttl: i64,
    /// A refresh token unused this long expires, seconds (apps may override).
    #[arg(long, env = "ONYX_REFRESH_TOKEN_IDLE_TTL", default_value_t = 14 * 24 * 3600, global = true)]
    pub refresh_token_idle_ttl: i64,
    /// No refresh token outlives its grant's first refresh token by more than this, seconds.
    #[arg(long, env = "ONYX_REFRESH_TOKEN_ABSOLUTE_TTL", default_value_t = 60 * 24 * 3600, global = true)]
    pub refresh_token_absolute_ttl: i64,
    /// `aud` of access tokens issued without a `resource` (default: the issuer).
    #[arg(long, env = "ONYX_DEFAULT_AUDIENCE", global = true)]
    pub default_audience: Option<String>,
    /// Database connections per instance: the read pool on SQLite (writes use one connection
    /// of their own), the whole pool on PostgreSQL. Size it to the database server's cores.
    #[arg(long, env = "ONYX_DB_POOL_SIZE", default_value_t = DEFAULT_POOL_SIZE, global = true)]
    pub db_pool_size: u32,
    /// Seconds between two purges of expired codes, tokens and sessions.
    #[arg(long, env = "ONYX_PURGE_INTERVAL", default_value_t = 60, global = true)]
    pub purge_interval: u64,
    /// Serve GET /metrics (with /healthz and /readyz) on this internal address:port instead of
    /// the main address, where /metrics is then not found.
    #[arg(long, env = "ONYX_METRICS_BIND", global = true)]
    pub metrics_bind: Option<String>,
    /// Seconds the server goes on serving after SIGTERM, with /readyz failing, so a load
    /// balancer takes it out before it stops accepting connections (0 to 600).
    #[arg(long, env = "ONYX_DRAIN_SECONDS", default_value_t = DEFAULT_DRAIN_SECONDS, global = true)]
    pub drain_seconds: u64,
    /// Domain verification may fetch private and loopback addresses (development and tests
    /// only: it opens a path to internal hosts).
    #[arg(long, env = "ONYX_DOMAIN_VERIFICATION_ALLOW_PRIVATE", global = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub domain_verification_allow_private: bool,
    /// Domain verification fetches over plain http (development and tests only).
    #[arg(long, env = "ONYX_DOMAIN_VERIFICATION_INSECURE_HTTP", global = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub domain_verification_insecure_http: bool,
    /// Apps' jwks_uri fetches may reach private and loopback addresses (development and tests
    /// only: it opens a path to internal hosts).
    #[arg(long, env = "ONYX_JWKS_FETCH_ALLOW_PRIVATE", global = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub jwks_fetch_allow_private: bool,
    /// Apps' jwks_uri fetches may use plain http (development and tests only).
    #[arg(long, env = "ONYX_JWKS_FETCH_INSECURE_HTTP", global = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub jwks_fetch_insecure_http: bool,
    /// Every app must push its authorization requests to /par first (RFC 9126); /authorize
    /// refuses any other request.
    #[arg(long, env = "ONYX_REQUIRE_PUSHED_AUTHORIZATION_REQUESTS", global = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub require_pushed_authorization_requests: bool,
    /// Fixed address for a domain when verifying it, like curl's --resolve:
    /// HOST=IP:PORT (repeat; comma-separated in the variable).
    #[arg(
        long = "domain-verification-resolve",
        env = "ONYX_DOMAIN_VERIFICATION_RESOLVE",
        value_delimiter = ',',
        global = true
    )]
    pub domain_verification_resolve: Vec<String>,
    /// A proxy whose X-Forwarded-For names the client, as a CIDR (repeat; comma-separated in
    /// the variable). Default: none, and the header is ignored.
    #[arg(
        long = "trusted-proxy",
        env = "ONYX_TRUSTED_PROXIES",
        value_delimiter = ',',
        global = true
    )]
    pub trusted_proxy: Vec<String>,
    /// Failed sign-ins per account from one client address (IPv6: one /64) in the window.
    #[arg(
        long,
        env = "ONYX_LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS",
        default_value_t = 5,
        global = true
    )]
    pub login_max_failures_per_account_address: i64,
    /// Failed sign-ins per account from all addresses together in the window.
    #[arg(
        long,
        env = "ONYX_LOGIN_MAX_FAILURES_PER_ACCOUNT",
        default_value_t = 50,
        global = true
    )]
    pub login_max_failures_per_account: i64,
    /// Failed sign-ins per client address to all accounts together in the window.
    #[arg(
        long,
        env = "ONYX_LOGIN_MAX_FAILURES_PER_ADDRESS",
        default_value_t = 30,
        global = true
    )]
    pub login_max_failures_per_address: i64,
    /// The window the sign-in limits count failures in, seconds (at most 86400).
    #[arg(
        long,
        env = "ONYX_LOGIN_FAILURE_WINDOW",
        default_value_t = 900,
        global = true
    )]
    pub login_failure_window: i64,
    /// Unanswered authorization requests stored at most per client address (IPv6: one /64).
    #[arg(
        long,
        env = "ONYX_MAX_PENDING_REQUESTS_PER_ADDRESS",
        default_value_t = 1000,
        global = true
    )]
    pub max_pending_requests_per_address: i64,
    /// Unanswered authorization requests stored at most per app.
    #[arg(
        long,
        env = "ONYX_MAX_PENDING_REQUESTS_PER_APP",
        default_value_t = 10_000,
        global = true
    )]
    pub max_pending_requests_per_app: i64,
    /// How far a DPoP proof's iat may be from the server's time, seconds (1 to 3600).
    #[arg(
        long,
        env = "ONYX_DPOP_IAT_WINDOW",
        default_value_t = 60,
        global = true
    )]
    pub dpop_iat_window: i64,
    #[command(flatten)]
    pub webhooks: crate::webhooks::WebhookArgs,
}

impl ServerArgs {
    /// The typed, checked settings; the first invalid value is named in one line.
    pub fn settings(&self) -> Result<Settings, String> {
        let lifetimes = Lifetimes {
            authorization_code: self.code_ttl,
            access_token: self.access_token_ttl,
            id_token: self.id_token_ttl,
            refresh_token_idle: self.refresh_token_idle_ttl,
            refresh_token_absolute: self.refresh_token_absolute_ttl,
            ..Lifetimes::default()
        };
        let mut s = Settings::parse(&self.bind, &self.issuer, &self.database_url, &self.keys_dir)?
            .with_lifetimes(lifetimes)?
            .with_default_audience(self.default_audience.as_deref())?;
        s.database_url = s.database_url.clone().with_pool_size(self.db_pool_size)?;
        s.key_encryption_key = self
            .key_encryption_key
            .as_ref()
            .map(|raw| crate::keys::KeyEncryptionKey::from_setting(raw.expose()))
            .transpose()?;
        if self.purge_interval == 0 {
            return Err("ONYX_PURGE_INTERVAL must be at least 1 second".to_string());
        }
        s.purge_interval = std::time::Duration::from_secs(self.purge_interval);
        s.webhooks = self.webhooks.settings()?;
        s.jwks_fetch.allow_private = self.jwks_fetch_allow_private;
        s.jwks_fetch.insecure_http = self.jwks_fetch_insecure_http;
        if !(1..=3600).contains(&self.dpop_iat_window) {
            return Err("ONYX_DPOP_IAT_WINDOW must be 1 to 3600 seconds".to_string());
        }
        s.dpop_iat_window = self.dpop_iat_window;
        s.require_pushed_authorization_requests = self.require_pushed_authorization_requests;
        if let Some(raw) = self
            .metrics_bind
            .as_deref()
            .filter(|r| !r.trim().is_empty())
        {
            let addr: SocketAddr = raw
                .trim()
                .parse()
                .map_err(|_| format!("ONYX_METRICS_BIND {raw:?} is not an address:port"))?;
            if addr == s.bind && addr.port() != 0 {
                return Err(format!(
                    "ONYX_METRICS_BIND {raw:?} is the main address (ONYX_BIND): give the metrics an address of their own"
                ));
            }
            s.metrics_bind = Some(addr);
        }
        if self.drain_seconds > 600 {
            return Err("ONYX_DRAIN_SECONDS must be 0 to 600 seconds".to_string());
        }
        s.drain_seconds = self.drain_seconds;
        let v = &mut s.domain_verification;
        v.allow_private = self.domain_verification_allow_private;
        v.insecure_http = self.domain_verification_insecure_http;
        for entry in self
            .domain_verification_resolve
            .iter()
            .filter(|e| !e.is_empty())
        {
            let parsed = entry
                .split_once('=')
                .and_then(|(h, a)| Some((h.trim().to_ascii_lowercase(), a.trim().parse().ok()?)));
            match parsed {
                Some(pair) => v.resolve.push(pair),
                None => {
                    return Err(format!(
                        "ONYX_DOMAIN_VERIFICATION_RESOLVE {entry:?} must be HOST=IP:PORT"
                    ));
                }
            }
        }
        s.with_trusted_proxies(&self.trusted_proxy)?
            .with_login_limits(LoginLimits {
                per_account_and_address: self.login_max_failures_per_account_address,
                per_account: self.login_max_failures_per_account,
                per_address: self.login_max_failures_per_address,
                window: self.login_failure_window,
                ..LoginLimits::default()
            })?
            .with_pending_caps(PendingCaps {
                per_address: self.max_pending_requests_per_address,
                per_app: self.max_pending_requests_per_app,
            })
    }
}

#[cfg(test)]
mod tests;
