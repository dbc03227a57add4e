//! Builds the application: state, routers, middleware; runs the server until SIGTERM.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::map_response_body::MapResponseBodyLayer;
use tower_http::trace::TraceLayer;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::keys::{KeyEncryptionKey, KeyStore};
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
    crate::store::purge::spawn(db.clone(), clock.clone(), settings.purge_interval);
    crate::webhooks::worker::spawn(
        db.clone(),
        clock.clone(),
        settings.webhooks.clone(),
        crate::webhooks::secrets::SecretBox::load(&db, &kek, &settings.keys_dir).await?,
    );
    db.spawn_checkpointer(&settings.database_url);
    let state = AppState(Arc::new(Inner {
        webhook_secrets,
        jwks_cache: Default::default(),
        dpop_nonces,
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
    let routes = Router::new()
        .merge(crate::oauth::router())
        .merge(crate::web::router())
        .merge(crate::api::router())
        .merge(crate::partner::api::router())
        .route("/healthz", get(healthz))
        .fallback(crate::error::fallback)
        // Forms and protocol requests are small; anything bigger is refused with 413.
        .layer(DefaultBodyLimit::max(64 * 1024))
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

async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    match state.db.ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok"})),
        ),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"status": "unavailable", "reason": "database"})),
            )
        }
    }
}

/// Serves `state` on `listener` until SIGTERM or Ctrl-C, then finishes the requests in flight.
pub async fn run(listener: TcpListener, state: AppState) -> anyhow::Result<()> {
    let app = axum::ServiceExt::into_make_service_with_connect_info::<SocketAddr>(app(state));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

async fn shutdown_signal() {
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
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
