//! Prometheus metrics (`GET /metrics`, or `--metrics-bind`'s address): the `metrics` crate's
//! counters, gauges and histograms, recorded into a Prometheus recorder that belongs to this
//! server (not a process-wide one, so two servers in one process — the tests — count apart) and
//! rendered by an axum route.
//!
//! What is counted never carries a token, an email, a client secret or any other value a
//! request brings: labels are routes (the router's templates, such as
//! `/api/v1/apps/{client_id}`, never the path itself), methods, status codes and the names of a
//! closed set (grant types, answers, decisions).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::metrics::{Counter, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::store::apps::GrantType;

/// The latency buckets of the request histogram, seconds: the hot paths answer in well under a
/// millisecond, a sign-in (a password check) in tens of milliseconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

pub const HTTP_REQUESTS: &str = "onyx_http_requests_total";
pub const HTTP_DURATION: &str = "onyx_http_request_duration_seconds";
pub const TOKENS_ISSUED: &str = "onyx_tokens_issued_total";
pub const INTROSPECTIONS: &str = "onyx_introspections_total";
pub const LOGIN_FAILURES: &str = "onyx_login_failures_total";
pub const LOGIN_LOCKOUTS: &str = "onyx_login_lockouts_total";
pub const CONSENT_DECISIONS: &str = "onyx_consent_decisions_total";
pub const WEBHOOK_ATTEMPTS: &str = "onyx_webhook_attempts_total";
pub const WEBHOOK_DELIVERIES: &str = "onyx_webhook_deliveries_total";
pub const WEBHOOK_PENDING: &str = "onyx_webhook_outbox_pending";
pub const WEBHOOK_OLDEST: &str = "onyx_webhook_outbox_oldest_pending_age_seconds";
pub const DB_CONNECTIONS: &str = "onyx_db_connections";
pub const DB_WAITING: &str = "onyx_db_waiting";
pub const BUILD_INFO: &str = "onyx_build_info";

/// Every metric, with its kind, unit and help text (the `# HELP` line).
const DESCRIBED: &[(&str, Kind, Unit, &str)] = &[
    (
        HTTP_REQUESTS,
        Kind::Counter,
        Unit::Count,
        "HTTP requests answered, by route template (or unmatched), method and status.",
    ),
    (
        HTTP_DURATION,
        Kind::Histogram,
        Unit::Seconds,
        "Time from a request's arrival to its response head, by route template and method.",
    ),
    (
        TOKENS_ISSUED,
        Kind::Counter,
        Unit::Count,
        "Token responses issued at /token, by grant type.",
    ),
    (
        INTROSPECTIONS,
        Kind::Counter,
        Unit::Count,
        "Introspection requests, by answer: active, inactive, or refused (the caller's error).",
    ),
    (
        LOGIN_FAILURES,
        Kind::Counter,
        Unit::Count,
        "Sign-ins with a wrong email or password.",
    ),
    (
        LOGIN_LOCKOUTS,
        Kind::Counter,
        Unit::Count,
        "Sign-ins refused because too many attempts failed (the login limits).",
    ),
    (
        CONSENT_DECISIONS,
        Kind::Counter,
        Unit::Count,
        "Answers on the consent screen: approved (all asked), partial (some optional scopes left out), declined.",
    ),
    (
        WEBHOOK_ATTEMPTS,
        Kind::Counter,
        Unit::Count,
        "Webhook delivery attempts made by this instance, by outcome.",
    ),
    (
        WEBHOOK_DELIVERIES,
        Kind::Counter,
        Unit::Count,
        "Webhook deliveries this instance finished, by final state: delivered, or failed (retries exhausted, endpoint gone or failing security).",
    ),
    (
        WEBHOOK_PENDING,
        Kind::Gauge,
        Unit::Count,
        "Webhook deliveries waiting in the outbox (shared by every instance), read at scrape time.",
    ),
    (
        WEBHOOK_OLDEST,
        Kind::Gauge,
        Unit::Seconds,
        "Age of the oldest webhook delivery waiting in the outbox, read at scrape time (0 when none waits).",
    ),
    (
        DB_CONNECTIONS,
        Kind::Gauge,
        Unit::Count,
        "Database connections of this instance's pools, by pool (read, write) and state (in_use, idle).",
    ),
    (
        DB_WAITING,
        Kind::Gauge,
        Unit::Count,
        "Tasks of this instance waiting for the database writer to start a transaction.",
    ),
    (
        BUILD_INFO,
        Kind::Gauge,
        Unit::Count,
        "Always 1: the version and the git revision this binary was built from.",
    ),
];

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), ::metrics::Level::INFO, Some(module_path!()));

/// The grant types counted at /token.
const GRANT_TYPES: [GrantType; 3] = [
    GrantType::AuthorizationCode,
    GrantType::RefreshToken,
    GrantType::ClientCredentials,
];

/// An introspection's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Introspection {
    Active,
    Inactive,
    /// The caller's request was refused (bad credentials, a malformed request).
    Refused,
}

/// An answer on the consent screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentDecision {
    /// Everything asked for was allowed.
    Approved,
    /// Allowed, with some optional scopes left out.
    Partial,
    /// Declined, or allowed with nothing left.
    Declined,
}

/// This server's metrics. Cheap to share; every recording is lock-free.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    tokens: [Counter; 3],
    introspections: [Counter; 3],
    login_failures: Counter,
    login_lockouts: Counter,
    consent: [Counter; 3],
    /// The request series registered so far, by route template, method and status: a closed
    /// set (routes are templates), so the handles are kept rather than looked up in the
    /// recorder's registry, with its label vectors and key hashing, at every request.
    requests: Mutex<HashMap<RequestSeries, (Histogram, Counter)>>,
}

/// A request series: route template, method and status.
type RequestSeries = (SharedString, &'static str, u16);

impl Metrics {
    pub fn new() -> Arc<Self> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_string()), LATENCY_BUCKETS)
            .expect("the latency buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        for (name, kind, unit, help) in DESCRIBED {
            let (name, help) = (KeyName::from_const_str(name), SharedString::const_str(help));
            match kind {
                Kind::Counter => recorder.describe_counter(name, Some(*unit), help),
                Kind::Gauge => recorder.describe_gauge(name, Some(*unit), help),
                Kind::Histogram => recorder.describe_histogram(name, Some(*unit), help),
            }
        }
        let counter = |name: &'static str, label: Option<(&'static str, &'static str)>| {
            let labels: Vec<Label> = label
                .map(|(k, v)| Label::from_static_parts(k, v))
                .into_iter()
                .collect();
            recorder.register_counter(&Key::from_parts(name, labels), &METADATA)
        };
        let tokens = GRANT_TYPES.map(|g| counter(TOKENS_ISSUED, Some(("grant_type", g.as_str()))));
        let introspections =
            ["active", "inactive", "refused"].map(|a| counter(INTROSPECTIONS, Some(("answer", a))));
        let consent = ["approved", "partial", "declined"]
            .map(|d| counter(CONSENT_DECISIONS, Some(("decision", d))));
        let login_failures = counter(LOGIN_FAILURES, None);
        let login_lockouts = counter(LOGIN_LOCKOUTS, None);
        let build = recorder.register_gauge(
            &Key::from_parts(
                BUILD_INFO,
                vec![
                    Label::from_static_parts("version", env!("CARGO_PKG_VERSION")),
                    Label::from_static_parts("revision", env!("ONYX_GIT_REVISION")),
                ],
            ),
            &METADATA,
        );
        build.set(1.0);
        Arc::new(Self {
            recorder,
            handle,
            tokens,
            introspections,
            login_failures,
            login_lockouts,
            consent,
            requests: Mutex::new(HashMap::new()),
        })
    }

    fn register_counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    /// One answered HTTP request.
    pub fn request(&self, route: SharedString, method: &'static str, status: u16, took: Duration) {
        let key = (route, method, status);
        let known = self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        let (histogram, counter) = match known {
            Some(handles) => handles,
            None => {
                let (route, method, status) = key;
                let method_label = Label::from_static_parts("method", method);
                let histogram = self.recorder.register_histogram(
                    &Key::from_parts(
                        HTTP_DURATION,
                        vec![Label::new("route", route.clone()), method_label.clone()],
                    ),
                    &METADATA,
                );
                let counter = self.register_counter(
                    HTTP_REQUESTS,
                    vec![
                        Label::new("route", route.clone()),
                        method_label,
                        Label::from_static_parts("status", status_str(status)),
                    ],
                );
                let handles = (histogram, counter);
                self.requests
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert((route, method, status), handles.clone());
                handles
            }
        };
        histogram.record(took.as_secs_f64());
        counter.increment(1);
    }

    pub fn token_issued(&self, grant_type: GrantType) {
        if let Some(i) = GRANT_TYPES.iter().position(|g| *g == grant_type) {
            self.tokens[i].increment(1);
        }
    }

    pub fn introspection(&self, answer: Introspection) {
        self.introspections[answer as usize].increment(1);
    }

    pub fn login_failed(&self) {
        self.login_failures.increment(1);
    }

    pub fn login_locked_out(&self) {
        self.login_lockouts.increment(1);
    }

    pub fn consent_decision(&self, decision: ConsentDecision) {
        self.consent[decision as usize].increment(1);
    }

    /// One webhook delivery attempt, and the delivery's final state when it reached one.
    pub fn webhook_attempt(&self, outcome: &'static str, finished: Option<&'static str>) {
        self.register_counter(
            WEBHOOK_ATTEMPTS,
            vec![Label::from_static_parts("outcome", outcome)],
        )
        .increment(1);
        if let Some(state) = finished {
            self.register_counter(
                WEBHOOK_DELIVERIES,
                vec![Label::from_static_parts("state", state)],
            )
            .increment(1);
        }
    }

    fn gauge(&self, name: &'static str, labels: Vec<Label>, value: f64) {
        self.recorder
            .register_gauge(&Key::from_parts(name, labels), &METADATA)
            .set(value);
    }

    /// The text exposition, with the gauges read at scrape time set first.
    pub fn render(&self, scrape: &Scrape) -> String {
        if let Some(outbox) = &scrape.outbox {
            self.gauge(WEBHOOK_PENDING, Vec::new(), outbox.pending as f64);
            self.gauge(WEBHOOK_OLDEST, Vec::new(), outbox.oldest_age as f64);
        }
        for pool in &scrape.pools {
            for (state, n) in [("in_use", pool.in_use), ("idle", pool.idle)] {
                self.gauge(
                    DB_CONNECTIONS,
                    vec![
                        Label::from_static_parts("pool", pool.name),
                        Label::from_static_parts("state", state),
                    ],
                    n as f64,
                );
            }
        }
        self.gauge(DB_WAITING, Vec::new(), scrape.waiting as f64);
        self.handle.render()
    }

    /// Folds recorded histogram samples into their buckets; called every few seconds so that
    /// they do not pile up between scrapes.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// What is read at scrape time.
#[derive(Debug, Default)]
pub struct Scrape {
    /// `None` when the outbox could not be read (the scrape still answers).
    pub outbox: Option<crate::store::webhooks::OutboxStats>,
    pub pools: Vec<crate::store::PoolStats>,
    pub waiting: u64,
}

/// Status codes as static strings, so a label costs no allocation.
fn status_str(status: u16) -> &'static str {
    const KNOWN: &[(u16, &str)] = &[
        (200, "200"),
        (201, "201"),
        (204, "204"),
        (302, "302"),
        (303, "303"),
        (304, "304"),
        (307, "307"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (409, "409"),
        (413, "413"),
        (414, "414"),
        (415, "415"),
        (422, "422"),
        (429, "429"),
        (431, "431"),
        (500, "500"),
        (502, "502"),
        (503, "503"),
    ];
    match KNOWN.iter().find(|(s, _)| *s == status) {
        Some((_, text)) => text,
        None => match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        },
    }
}

/// Spawns the upkeep of `metrics` (every five seconds).
pub fn spawn_upkeep(metrics: &Arc<Metrics>) {
    let weak = Arc::downgrade(metrics);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match weak.upgrade() {
                Some(m) => m.upkeep(),
                None => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_label_is_static_and_classes_cover_the_rest() {
        assert_eq!(status_str(200), "200");
        assert_eq!(status_str(418), "4xx");
        assert_eq!(status_str(599), "5xx");
        assert_eq!(status_str(101), "1xx");
    }

    #[test]
    fn two_servers_count_apart_and_the_text_has_help_and_exact_values() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.token_issued(GrantType::ClientCredentials);
        a.token_issued(GrantType::ClientCredentials);
        b.token_issued(GrantType::RefreshToken);
        a.request(
            SharedString::const_str("/token"),
            "POST",
            200,
            Duration::from_micros(400),
        );
        let text = a.render(&Scrape::default());
        assert!(
            text.contains(r#"onyx_tokens_issued_total{grant_type="client_credentials"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"onyx_tokens_issued_total{grant_type="refresh_token"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"onyx_http_requests_total{route="/token",method="POST",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"onyx_http_request_duration_seconds_bucket{route="/token",method="POST",le="0.0005"} 1"#),
            "{text}"
        );
        assert!(text.contains("# HELP onyx_tokens_issued_total"), "{text}");
        assert!(text.contains("onyx_build_info{"), "{text}");
        let other = b.render(&Scrape::default());
        assert!(
            other.contains(r#"onyx_tokens_issued_total{grant_type="client_credentials"} 0"#),
            "{other}"
        );
    }
}
