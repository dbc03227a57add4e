//! `onyx-id apps show | access | trust | capability | create | webhooks …`.

use std::process::ExitCode;

use clap::Subcommand;
use clap::builder::PossibleValuesParser;
use strum::VariantNames;

use super::output::{CommandResult, admin_result, fail, open_db, program_result, report};
use crate::admin::{self, AppSpec, CLI_ACTOR};
use crate::config::Settings;
use crate::keys::Algorithm;
use crate::partner::access::{AccessState, CapabilityState};
use crate::partner::access_change::{self, AccessChange};
use crate::partner::apps;
use crate::partner::capabilities::{self, CapabilityChange};
use crate::scopes::TrustLevel;
use crate::store::Db;
use crate::store::apps::{ConsentProfile, LifetimeOverrides, Profile};

// Parsed once per run, and already boxed in `Command`: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum AppsCommand {
    /// Print an app: live configuration, draft, access, capabilities, review.
    Show {
        #[arg(long, allow_hyphen_values = true)]
        app: String,
    },
    /// Limit, suspend or restore an app's access (takes effect on the next request).
    Access {
        #[arg(long, allow_hyphen_values = true)]
        app: String,
        #[arg(long, value_parser = PossibleValuesParser::new(AccessState::VARIANTS))]
        state: String,
        /// review_reopened, verification_lapsed, consent_expired, scopes_revoked,
        /// region_withdrawn, abuse_review, webhook_security_failure, support_requirements,
        /// operator_decision, restored.
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        note: Option<String>,
        /// A scope a limit withdraws (repeat).
        #[arg(long = "withdraw-scope")]
        withdraw_scopes: Vec<String>,
        /// With --state active: the one cause to clear (its reason). Without it, active clears
        /// every operator cause and keeps onyx-id's automatic ones.
        #[arg(long)]
        cause: Option<String>,
    },
    /// Set how far Onyx trusts an app (scopes name the trust level they need).
    Trust {
        #[arg(long, allow_hyphen_values = true)]
        app: String,
        #[arg(long, value_parser = PossibleValuesParser::new(<TrustLevel as VariantNames>::VARIANTS))]
        level: String,
    },
    /// Set a gated capability's state for an app.
    Capability {
        #[arg(long, allow_hyphen_values = true)]
        app: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = PossibleValuesParser::new(CapabilityState::VARIANTS))]
        state: String,
        /// A snake_case reason code (default: one for the state).
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Register an app, approved for the given scopes (a development shortcut past review).
    /// Prints {"client_id", "client_secret", ...}; no secret with --public.
    Create(CreateArgs),
    /// An app's webhook endpoints: add, list, deliveries, test, rotate-secret.
    #[command(subcommand)]
    Webhooks(super::webhooks::WebhooksCommand),
}

#[derive(clap::Args)]
pub struct CreateArgs {
    #[arg(long)]
    name: String,
    /// A redirect URI, compared exactly (repeat for several).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// An allowed CORS origin, like https://app.example (repeat for several).
    #[arg(long = "origin")]
    origins: Vec<String>,
    /// A scope the app is approved for and needs (repeat; default: openid). grants:read is
    /// always approved too: the grants API needs it.
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// A scope the app is approved for that users may untick on the consent screen.
    #[arg(long = "optional-scope")]
    optional_scopes: Vec<String>,
    /// A scope the app asked for that Onyx is still reviewing (shown as unavailable).
    #[arg(long = "pending-scope")]
    pending_scopes: Vec<String>,
    /// A gated capability enabled for the app (repeat).
    #[arg(long = "capability")]
    capabilities: Vec<String>,
    /// The app's trust level; scopes name the level they need.
    #[arg(long, default_value = "basic", value_parser = PossibleValuesParser::new(<TrustLevel as VariantNames>::VARIANTS))]
    trust_level: String,
    /// What the app uses the access for, shown on the consent screen.
    #[arg(long, default_value = "")]
    purpose: String,
    /// The app's own words on the consent screen.
    #[arg(long, default_value = "")]
    consent_copy: String,
    /// The app's verified domain, shown on the consent screen.
    #[arg(long)]
    domain: Option<String>,
    /// How long consent to this app lasts, seconds (scopes may set shorter limits).
    #[arg(long)]
    consent_ttl: Option<i64>,
    /// A public app (native or browser): no secret, PKCE only.
    #[arg(long)]
    public: bool,
    /// Algorithm of the app's ID tokens.
    #[arg(long, default_value = "ES256", value_parser = PossibleValuesParser::new(<Algorithm as VariantNames>::VARIANTS))]
    id_token_alg: String,
    /// A grant the app may use (repeat): authorization_code (the default), refresh_token,
    /// client_credentials. Giving any replaces the default.
    #[arg(long = "grant-type", value_parser = ["authorization_code", "refresh_token", "client_credentials"])]
    grant_types: Vec<String>,
    /// The app's public JWKS file: it then authenticates with private_key_jwt (no secret).
    #[arg(long)]
    jwks_file: Option<std::path::PathBuf>,
    /// Where the app publishes its public JWKS (https): it then authenticates with
    /// private_key_jwt, its keys fetched (through the public-address guard) and cached.
    #[arg(long)]
    jwks_uri: Option<String>,
    /// Access token lifetime for this app, seconds.
    #[arg(long)]
    app_access_token_ttl: Option<i64>,
    /// ID token lifetime for this app, seconds.
    #[arg(long)]
    app_id_token_ttl: Option<i64>,
    /// Refresh token idle lifetime for this app, seconds.
    #[arg(long)]
    app_refresh_token_idle_ttl: Option<i64>,
    /// Refresh token absolute lifetime for this app, seconds.
    #[arg(long)]
    app_refresh_token_absolute_ttl: Option<i64>,
    /// Where the app may send people back after signing out at the end-session endpoint,
    /// compared exactly (repeat for several).
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// Where onyx-id posts the app's back-channel logout tokens when a session it signed in
    /// with ends (https; http on a loopback host for development).
    #[arg(long)]
    backchannel_logout_uri: Option<String>,
    /// Whether the app needs the session id (`sid`) in its logout tokens (onyx-id always
    /// sends it).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    backchannel_logout_session_required: bool,
    /// The app's access tokens must be DPoP-bound (RFC 9449 §5.2,
    /// dpop_bound_access_tokens): the token endpoint refuses its requests without a proof.
    #[arg(long)]
    dpop_bound: bool,
    /// The app's DPoP proofs must carry a nonce the server hands out (RFC 9449 §8).
    #[arg(long)]
    dpop_nonce: bool,
    /// The app must push its authorization requests to /par first (RFC 9126); /authorize
    /// refuses any other request from it.
    #[arg(long)]
    require_par: bool,
    /// Hold the app to a security profile: `fapi2` (the FAPI 2.0 Security Profile: PAR,
    /// DPoP-bound tokens, private_key_jwt with ES256/PS256/EdDSA, which needs --jwks-file or
    /// --jwks-uri, no http redirect URIs but native loopback, refresh tokens that do not rotate).
    #[arg(long, value_parser = PossibleValuesParser::new(Profile::VARIANTS))]
    profile: Option<String>,
}

pub async fn run(command: AppsCommand, settings: &Settings, now: i64) -> ExitCode {
    let db = match open_db(settings).await {
        Ok(db) => db,
        Err(code) => return code,
    };
    report(match command {
        AppsCommand::Show { app } => program_result(match apps::any_app(&db, &app).await {
            Ok(app) => apps::app_view(&db, &app).await,
            Err(e) => Err(e),
        }),
        AppsCommand::Access {
            app,
            state,
            reason,
            note,
            withdraw_scopes,
            cause,
        } => program_result(
            match (
                apps::any_app(&db, &app).await,
                AccessChange::parse(
                    &state,
                    reason.as_deref(),
                    note,
                    withdraw_scopes,
                    cause.as_deref(),
                ),
            ) {
                (Ok(app), Ok(change)) => {
                    access_change::set_access(&db, now, CLI_ACTOR, &app, change).await
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            },
        ),
        AppsCommand::Trust { app, level } => program_result(
            match (
                apps::any_app(&db, &app).await,
                apps::parse_trust_level(&level),
            ) {
                (Ok(app), Ok(level)) => {
                    apps::set_trust_level(&db, now, CLI_ACTOR, &app, level).await
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            },
        ),
        AppsCommand::Capability {
            app,
            name,
            state,
            reason,
            note,
        } => program_result(
            match (
                apps::any_app(&db, &app).await,
                CapabilityChange::parse(&name, &state, reason, note),
            ) {
                (Ok(app), Ok(change)) => {
                    capabilities::set_capability(&db, now, CLI_ACTOR, &app, change).await
                }
                (Err(e), _) | (_, Err(e)) => Err(e),
            },
        ),
        AppsCommand::Webhooks(command) => super::webhooks::run(&db, settings, now, command).await,
        AppsCommand::Create(args) => match create(&db, now, args).await {
            Ok(result) => result,
            Err(code) => return code,
        },
    })
}

/// `apps create`: the JWKS file read, then the app registered from the options.
async fn create(db: &Db, now: i64, args: CreateArgs) -> Result<CommandResult, ExitCode> {
    let jwks = args
        .jwks_file
        .map(std::fs::read_to_string)
        .transpose()
        .map_err(|e| fail(format!("cannot read --jwks-file: {e}")))?;
    let spec = AppSpec {
        name: args.name,
        redirect_uris: args.redirect_uris,
        origins: args.origins,
        scopes: args.scopes,
        public: args.public,
        id_token_alg: args.id_token_alg,
        grant_types: args.grant_types,
        jwks,
        jwks_uri: args.jwks_uri,
        lifetimes: LifetimeOverrides {
            access_token: args.app_access_token_ttl,
            id_token: args.app_id_token_ttl,
            refresh_token_idle: args.app_refresh_token_idle_ttl,
            refresh_token_absolute: args.app_refresh_token_absolute_ttl,
        },
        consent: ConsentProfile {
            optional_scopes: args.optional_scopes,
            pending_scopes: args.pending_scopes,
            capabilities: args.capabilities,
            trust_level: TrustLevel::parse(&args.trust_level).unwrap_or_default(),
            purpose: args.purpose,
            consent_copy: args.consent_copy,
            domain: args.domain,
            consent_ttl: args.consent_ttl,
        },
        post_logout_redirect_uris: args.post_logout_redirect_uris,
        backchannel_logout_uri: args.backchannel_logout_uri,
        backchannel_logout_session_required: args.backchannel_logout_session_required,
        dpop_bound: args.dpop_bound,
        dpop_nonce_required: args.dpop_nonce,
        require_par: args.require_par,
        profile: args.profile.as_deref().and_then(Profile::parse),
    };
    Ok(admin_result(admin::create_app(db, now, spec).await))
}
