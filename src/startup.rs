//! Builds the application: state, routers, middleware; runs the server until SIGTERM.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::map_response_body::MapResponseBodyLayer;
use tower_http::trace::TraceLayer;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::keys::{KeyEncryptionKey, KeyStore};
use crate::ops::health;
use crate::store::Db;
use crate::store::TokenWriter;
use crate::web::cookies::CookieNames;

/// Everything a request handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub settings: Settings,
    pub db: Db,
    pub keys: KeyStore,
    pub clock: SharedClock,
    pub cookies: CookieNames,
    pub token_writer: TokenWriter,
    /// The bound on password checks running at once.
    pub password_checks: crate::web::login::PasswordChecks,
    /// The discovery document, serialised once: it changes only with the configuration.
    pub discovery: axum::body::Bytes,
    /// Seals and opens the webhook endpoints' signing secrets (an instance secret in the
    /// database).
    pub webhook_secrets: crate::webhooks::secrets::SecretBox,
    /// Apps' keys fetched from their `jwks_uri`, per instance.
    pub jwks_cache: crate::oauth::jwks_uri::JwksCache,
    /// Makes and checks DPoP nonces (an instance secret in the database, shared by every
    /// instance).
    pub dpop_nonces: crate::oauth::dpop::Nonces,
    /// This server's Prometheus metrics.
    pub metrics: Arc<crate::ops::metrics::Metrics>,
    /// Set on SIGTERM: readiness fails while the server drains.
    pub drain: crate::ops::health::Drain,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}

/// Connects the database (migrating it), opens the keys in it with the key encryption key
/// (importing the keys folder's or generating the first ones on first start), starts the
/// token writer and the purge task, and assembles the state.
pub async fn build_state(settings: Settings, clock: SharedClock) -> anyhow::Result<AppState> {
    let db = Db::connect(&settings.database_url).await?;
    let kek = KeyEncryptionKey::resolve(&settings)?;
    let keys = KeyStore::open(&db, &kek, &settings.keys_dir, clock.now()).await?;
    let discovery =
        crate::oauth::discovery::document(&settings, &keys.current().await.algorithms());
    let webhook_secrets =
        crate::webhooks::secrets::SecretBox::load(&db, &kek, &settings.keys_dir).await?;
    let dpop_nonces = crate::oauth::dpop::Nonces::load(&db, &kek, &settings.keys_dir).await?;
    let cookies = CookieNames {
        secure: settings.issuer.is_https(),
    };
    let token_writer = db.spawn_token_writer(&settings.database_url);
    let metrics = crate::ops::metrics::Metrics::new();
    crate::ops::metrics::spawn_upkeep(&metrics);
    crate::store::purge::spawn(db.clone(), clock.clone(), settings.purge_interval);
    crate::webhooks::worker::spawn(
        db.clone(),
        clock.clone(),
        settings.webhooks.clone(),
        crate::webhooks::secrets::SecretBox::load(&db, &kek, &settings.keys_dir).await?,
        metrics.clone(),
    );
    db.spawn_checkpointer(&settings.database_url);
    let state = AppState(Arc::new(Inner {
        webhook_secrets,
        jwks_cache: Default::default(),
        dpop_nonces,
        metrics,
        drain: Default::default(),
        token_writer,
        password_checks: crate::web::login::PasswordChecks::new(&settings.login_limits),
        discovery: serde_json::to_vec(&discovery)?.into(),
        settings,
        db,
        keys,
        clock,
        cookies,
    }));
    crate::webhooks::backchannel::spawn(state.clone());
    Ok(state)
}

/// The whole HTTP application: the router, inside [`crate::edge::Edge`] (refusals before and
/// after routing, HSTS), inside the trace span of each request.
pub fn app(
    state: AppState,
) -> impl tower::Service<
    axum::extract::Request,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future: Send,
> + Clone
+ Send
+ 'static {
    let https = state.settings.issuer.is_https();
    let proxies = state.settings.trusted_proxies.clone();
    let mut routes = Router::new()
        .merge(crate::oauth::router())
        .merge(crate::web::router())
        .merge(crate::api::router())
        .merge(crate::partner::api::router())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    // With `--metrics-bind`, the metrics are served on that address only.
    if state.settings.metrics_bind.is_none() {
        routes = routes.route("/metrics", get(health::metrics));
    }
    let request_metrics = crate::ops::layer::RequestMetricsLayer(state.metrics.clone());
    let routes = routes
        .fallback(crate::error::fallback)
        // Forms and protocol requests are small; anything bigger is refused with 413. Each
        // answer is counted by its route template (the layer runs inside the router, where the
        // matched route is known).
        .layer((DefaultBodyLimit::max(64 * 1024), request_metrics))
        .with_state(state);
    // Around the routing itself, not as the router's layers (those wrap each route): over-long
    // URIs and headers are refused before any route is matched, and the framework's own
    // refusals (405, 413, a path that is not UTF-8) get onyx-id's forms.
    tower::ServiceBuilder::new()
        .layer(MapResponseBodyLayer::new(axum::body::Body::new))
        .layer(TraceLayer::new_for_http().make_span_with(RequestSpan(proxies)))
        .layer(crate::edge::EdgeLayer { hsts: https })
        .service(routes)
}

/// The span of each request names its client address (trusted-proxy aware).
#[derive(Clone)]
struct RequestSpan(crate::config::TrustedProxies);

impl<B> tower_http::trace::MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, req: &axum::http::Request<B>) -> tracing::Span {
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let client = crate::web::client_ip::resolve(peer, req.headers(), &self.0);
        tracing::debug_span!(
            "request",
            method = %req.method(),
            uri = %req.uri(),
            version = ?req.version(),
            client = ?client,
        )
    }
}

/// One year, this host and the names under it.
pub use crate::edge::HSTS;

/// The internal address of `--metrics-bind`: the metrics, with liveness and readiness for
/// probes that use the same address. Nothing else is served there.
pub fn internal_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(health::metrics))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(crate::error::fallback)
        .with_state(state)
}

/// Serves `state` on `listener` (and the metrics on `internal`, the `--metrics-bind` address)
/// until SIGTERM or Ctrl-C. On SIGTERM it drains first: readiness fails, and everything else is
/// served for `--drain-seconds` more. Then both stop accepting and the requests in flight
/// finish.
pub async fn run(
    listener: TcpListener,
    internal: Option<TcpListener>,
    state: AppState,
) -> anyhow::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let signal = {
        let state = state.clone();
        async move {
            shutdown_signal(&state).await;
            let _ = stop.send(true);
        }
    };
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopped| *stopped).await;
    };
    let internal_server = internal.map(|l| {
        let app = internal_app(state.clone());
        tokio::spawn(
            axum::serve(l, app)
                .with_graceful_shutdown(until_stopped(stopped.clone()))
                .into_future(),
        )
    });
    let app = axum::ServiceExt::into_make_service_with_connect_info::<SocketAddr>(app(state));
    tokio::spawn(signal);
    axum::serve(listener, app)
        .with_graceful_shutdown(until_stopped(stopped))
        .await?;
    if let Some(s) = internal_server {
        s.await??;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Waits for SIGTERM (then drains) or Ctrl-C (stops at once).
async fn shutdown_signal(state: &AppState) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    let drain = tokio::select! {
        _ = ctrl_c => false,
        _ = terminate => true,
    };
    state.drain.start();
    let seconds = state.settings.drain_seconds;
    if drain && seconds > 0 {
        tracing::info!(
            seconds,
            "SIGTERM: draining (readiness fails; requests are still served)"
        );
        tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
    }
    tracing::info!("shutting down: finishing requests in flight");
}
