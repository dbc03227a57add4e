//! The `onyx-id` command: `serve`, and the operator commands. Thin: parsing and printing only.

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use clap::builder::PossibleValuesParser;
use clap::{Parser, Subcommand};
use onyx_id::admin::{self, AdminError, AppSpec};
use onyx_id::clock::{Clock, SystemClock};
use onyx_id::config::{ServerArgs, Settings};
use onyx_id::keys::Algorithm;
use onyx_id::partner::access::{AccessState, CapabilityState};
use onyx_id::partner::access_change::{self, AccessChange};
use onyx_id::partner::capabilities::{self, CapabilityChange};
use onyx_id::partner::partners::{self, PartnerSpec, Role};
use onyx_id::partner::program::{self, ProgramError};
use onyx_id::partner::review::{self, StepDecision};
use onyx_id::partner::{Step, StepState, apps};
use onyx_id::scopes::TrustLevel;
use onyx_id::store::apps::ConsentProfile;
use onyx_id::store::apps::LifetimeOverrides;
use onyx_id::telemetry;
use strum::VariantNames;

/// onyx-id: the OpenID Connect / OAuth 2.1 authorization server of the Onyx Partner Platform.
#[derive(Parser)]
#[command(name = "onyx-id", version, about)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Manage user accounts.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Manage partner apps (OAuth clients).
    Apps {
        #[command(subcommand)]
        command: Box<AppsCommand>,
    },
    /// Manage resource servers (APIs that introspect tokens).
    ResourceServers {
        #[command(subcommand)]
        command: ResourceServersCommand,
    },
    /// Read and revoke users' consent to apps.
    Grants {
        #[command(subcommand)]
        command: GrantsCommand,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage partners (organisations in the partner program).
    Partners {
        #[command(subcommand)]
        command: PartnersCommand,
    },
    /// Manage operator accounts (Onyx staff who review apps).
    Operators {
        #[command(subcommand)]
        command: OperatorsCommand,
    },
    /// Review partner apps.
    Reviews {
        #[command(subcommand)]
        command: ReviewsCommand,
    },
    /// Read the partner program's audit log (newest first).
    Audit {
        /// Only this app's entries.
        #[arg(long, allow_hyphen_values = true)]
        app: Option<String>,
        /// Only this partner's entries.
        #[arg(long, allow_hyphen_values = true)]
        partner: Option<String>,
        #[arg(long, default_value_t = 200)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum PartnersCommand {
    /// Register a partner with its owner (an existing account). Prints its first API key.
    Create {
        #[arg(long)]
        name: String,
        /// The partner's website (https).
        #[arg(long)]
        website: String,
        /// Where the partner's support is reached (email or URL).
        #[arg(long)]
        support_contact: String,
        /// A market the partner serves (ISO 3166-1 alpha-2; repeat).
        #[arg(long = "region")]
        regions: Vec<String>,
        /// The email of the account that owns the partner.
        #[arg(long)]
        owner: String,
    },
    /// Add a member (owner or developer) to a partner.
    AddMember {
        #[arg(long, allow_hyphen_values = true)]
        partner: String,
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = PossibleValuesParser::new(Role::VARIANTS))]
        role: String,
    },
    /// Print a partner's profile, members and keys.
    Show {
        #[arg(long, allow_hyphen_values = true)]
        partner: String,
    },
}

#[derive(Subcommand)]
enum OperatorsCommand {
    /// Make an account an operator and print an operator API key.
    Create {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum ReviewsCommand {
    /// Open reviews, oldest first.
    Queue,
    /// Decide one step of an app's review.
    Decide {
        #[arg(long, allow_hyphen_values = true)]
        app: String,
        /// company, app_identity, use_case, scopes, domain, redirect_uris, webhooks,
        /// connectivity_catalogue, support, privacy_security or production.
        #[arg(long)]
        step: String,
        #[arg(long, value_parser = PossibleValuesParser::new(StepState::decisions()))]
        state: String,
        #[arg(long)]
        note: Option<String>,
        /// The draft version the decision is made on (required; `apps show` and `reviews
        /// queue` show it). A decision on an older version is refused with what changed.
        #[arg(long)]
        draft_version: Option<i64>,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create an account. Prints {"user_id", "email", "name"}.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// Read the password from standard input (one line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// The email address is verified.
        #[arg(long)]
        verified: bool,
        /// The account's region, an ISO 3166-1 alpha-2 code such as GB.
        #[arg(long)]
        region: Option<String>,
        /// The account's risk level.
        #[arg(long, value_parser = ["normal", "elevated"])]
        risk: Option<String>,
    },
    /// Change the facts that decide what an account may grant and for how long. Takes effect
    /// at once for every app. Prints the account's facts.
    Update {
        #[arg(long)]
        email: String,
        /// Whether the email address is verified.
        #[arg(long)]
        verified: Option<bool>,
        /// The account's region (ISO 3166-1 alpha-2), or "none".
        #[arg(long)]
        region: Option<String>,
        #[arg(long, value_parser = ["normal", "elevated"])]
        risk: Option<String>,
    },
}

// Parsed once per run, and already boxed in `Command`: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum AppsCommand {
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
    Create {
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
    },
}

#[derive(Subcommand)]
enum ResourceServersCommand {
    /// Register a resource server. Prints {"client_id", "client_secret", "audience", ...}: the
    /// credentials it introspects with. Tokens requested with resource=AUDIENCE are for it.
    Create {
        #[arg(long)]
        name: String,
        /// The audience (an absolute URI, RFC 8707) its tokens carry.
        #[arg(long)]
        audience: String,
    },
}

#[derive(Subcommand)]
enum GrantsCommand {
    /// Print an account's grants: each app's permissions (state, reason, expiry) and the
    /// permission history.
    Show {
        /// The account's email.
        #[arg(long)]
        user: String,
    },
    /// Remove an app's access to an account as Onyx (revoked_by_onyx): one scope, or all.
    Revoke {
        #[arg(long)]
        user: String,
        #[arg(long, allow_hyphen_values = true)]
        app: String,
        #[arg(long)]
        scope: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a new ES256 and RS256 key. They are published at once and sign after the publish-ahead
    /// window (120 s) so clients' cached JWKS catch up; old keys stay published until their
    /// tokens expire.
    Rotate {
        /// Sign with the new keys at once (for a compromised key).
        #[arg(long)]
        now: bool,
        /// With --now: take every older key out of the JWKS at once (a compromised key), instead
        /// of keeping it published until the tokens it signed expire.
        #[arg(long, requires = "now")]
        revoke_old: bool,
    },
}

/// The CLI's form of a partner-program answer.
/// A partner-program outcome as the JSON the CLI prints, or its refusal in one line.
fn program_result<T: serde::Serialize>(
    r: Result<T, ProgramError>,
) -> Result<serde_json::Value, AdminError> {
    match r {
        Ok(outcome) => {
            serde_json::to_value(outcome).map_err(|e| AdminError::Internal(anyhow::Error::from(e)))
        }
        Err(ProgramError::Internal(e)) => Err(AdminError::Internal(e)),
        Err(other) => Err(AdminError::Invalid(other.line())),
    }
}

/// `result`, once its success is in the audit log (with what it answered).
async fn audited(
    db: &onyx_id::store::Db,
    now: i64,
    action: &str,
    result: Result<serde_json::Value, AdminError>,
) -> Result<serde_json::Value, AdminError> {
    let value = result?;
    admin::record_cli_event(db, now, action, value.clone()).await?;
    Ok(value)
}

async fn open_db(settings: &Settings) -> Result<onyx_id::store::Db, ExitCode> {
    onyx_id::store::Db::connect(&settings.database_url)
        .await
        .map_err(|e| fail(format!("cannot open the database: {e}")))
}

fn fail(reason: impl std::fmt::Display) -> ExitCode {
    eprintln!("onyx-id: error: {reason}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.server.log_format);
    let settings = match cli.server.settings() {
        Ok(s) => s,
        Err(reason) => return fail(reason),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(run(cli.command, settings))
}

async fn run(command: Command, settings: Settings) -> ExitCode {
    let now = SystemClock.now();
    let result: Result<serde_json::Value, AdminError> = match command {
        Command::Serve => return serve(settings).await,
        Command::Keys {
            command:
                KeysCommand::Rotate {
                    now: immediately,
                    revoke_old,
                },
        } => {
            // Opened first: no rotation is made while the audit log cannot be reached.
            let db = match open_db(&settings).await {
                Ok(db) => db,
                Err(code) => return code,
            };
            let rotated = admin::rotate_keys(&db, &settings, now, immediately, revoke_old).await;
            audited(&db, now, "keys.rotated", rotated).await
        }
        Command::Users { command } => {
            let db = match open_db(&settings).await {
                Ok(db) => db,
                Err(code) => return code,
            };
            match command {
                UsersCommand::Update {
                    email,
                    verified,
                    region,
                    risk,
                } => {
                    let changes = admin::UserChanges {
                        email_verified: verified,
                        region: region.map(|r| (r != "none").then_some(r)),
                        risk_level: risk,
                    };
                    admin::update_user(&db, &email, &changes).await
                }
                UsersCommand::Create {
                    email,
                    name,
                    password_stdin: _,
                    verified,
                    region,
                    risk,
                } => {
                    let mut password = String::new();
                    if let Err(e) = std::io::stdin().read_to_string(&mut password) {
                        return fail(format!("cannot read the password from stdin: {e}"));
                    }
                    let password = password.strip_suffix('\n').unwrap_or(&password);
                    let password = password.strip_suffix('\r').unwrap_or(password);
                    let changes = admin::UserChanges {
                        email_verified: verified.then_some(true),
                        region: region.map(Some),
                        risk_level: risk,
                    };
                    match admin::create_user(&db, now, &email, &name, password).await {
                        Ok(_) => admin::update_user(&db, &email, &changes).await,
                        Err(e) => Err(e),
                    }
                }
            }
        }
        Command::Grants { command } => {
            let db = match open_db(&settings).await {
                Ok(db) => db,
                Err(code) => return code,
            };
            match command {
                GrantsCommand::Show { user } => admin::show_grants(&db, now, &user).await,
                GrantsCommand::Revoke { user, app, scope } => {
                    admin::revoke_grant(&db, now, &user, &app, scope.as_deref()).await
                }
            }
        }
        Command::ResourceServers {
            command: ResourceServersCommand::Create { name, audience },
        } => {
            let db = match open_db(&settings).await {
                Ok(db) => db,
                Err(code) => return code,
            };
            admin::create_resource_server(&db, now, &name, &audience).await
        }
        Command::Partners { command } => {
            let db = match open_db(&settings).await {
                Ok(db) => db,
                Err(code) => return code,
            };
            match command {
                PartnersCommand::Create {
                    name,
                    website,
                    support_contact,
                    regions,
                    owner,
                } => program_result(
                    partners::create_partner(
                        &db,
                        now,
                        "cli",
                        PartnerSpec {
                            name,
                            website,
                            regions,
                            support_contact,
                            owner_email: owner,
                        },
                    )
                    .await,
                ),
                PartnersCommand::AddMember {
                    partner,
                    email,
                    role,
                } => program_result(match Role::parse(&role) {
                    Ok(role) => partners::add_member(&db, now, "cli", &partner, &email, role).await,
                    Err(e) => Err(e),
                }),
                PartnersCommand::Show { partner } => {
                    program_result(partners::partner_view(&db, &partner).await)
                }
            }
        }
        Command::Operators {
            command: OperatorsCommand::Create { email },
        } => {
            let db = match open_db(&settings).await {
                Ok(db) => db,
                Err(code) => return code,
            };
            program_result(partners::create_operator(&db, now, "cli", &email).await)
        }
        Command::Reviews { command } => {
            let db = match open_db(&settings).await {
                Ok(db) => db,
                Err(code) => return code,
            };
            match command {
                ReviewsCommand::Queue => program_result(review::queue(&db).await),
                ReviewsCommand::Decide {
                    app,
                    step,
                    state,
                    note,
                    draft_version,
                } => program_result(match (Step::parse(&step), StepState::parse(&state)) {
                    (Some(step), Some(state)) => match apps::any_app(&db, &app).await {
                        Ok(app) => {
                            let decision = StepDecision {
                                step,
                                state,
                                note,
                                draft_version,
                            };
                            review::decide(&db, now, "cli", &app, decision).await
                        }
                        Err(e) => Err(e),
                    },
                    (None, _) => Err(ProgramError::invalid(
                        "invalid_request",
                        format!(
                            "--step {step:?} is not one of {}",
                            Step::VARIANTS.join(", ")
                        ),
                    )),
                    (_, None) => Err(ProgramError::invalid("invalid_request", "bad --state")),
                }),
            }
        }
        Command::Audit {
            app,
            partner,
            limit,
        } => {
            let db = match open_db(&settings).await {
                Ok(db) => db,
                Err(code) => return code,
            };
            program_result(
                program::audit_view(
                    &db,
                    &onyx_id::store::audit::Filter {
                        client_id: app,
                        partner_id: partner,
                        limit: Some(limit),
                    },
                )
                .await,
            )
        }
        Command::Apps { command } => {
            let db = match open_db(&settings).await {
                Ok(db) => db,
                Err(code) => return code,
            };
            match *command {
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
                            access_change::set_access(&db, now, "cli", &app, change).await
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
                            apps::set_trust_level(&db, now, "cli", &app, level).await
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
                            capabilities::set_capability(&db, now, "cli", &app, change).await
                        }
                        (Err(e), _) | (_, Err(e)) => Err(e),
                    },
                ),
                AppsCommand::Create {
                    name,
                    redirect_uris,
                    origins,
                    scopes,
                    optional_scopes,
                    pending_scopes,
                    capabilities,
                    trust_level,
                    purpose,
                    consent_copy,
                    domain,
                    consent_ttl,
                    public,
                    id_token_alg,
                    grant_types,
                    jwks_file,
                    app_access_token_ttl,
                    app_id_token_ttl,
                    app_refresh_token_idle_ttl,
                    app_refresh_token_absolute_ttl,
                } => {
                    let jwks = match jwks_file.map(std::fs::read_to_string).transpose() {
                        Ok(j) => j,
                        Err(e) => return fail(format!("cannot read --jwks-file: {e}")),
                    };
                    let spec = AppSpec {
                        name,
                        redirect_uris,
                        origins,
                        scopes,
                        public,
                        id_token_alg,
                        grant_types,
                        jwks,
                        lifetimes: LifetimeOverrides {
                            access_token: app_access_token_ttl,
                            id_token: app_id_token_ttl,
                            refresh_token_idle: app_refresh_token_idle_ttl,
                            refresh_token_absolute: app_refresh_token_absolute_ttl,
                        },
                        consent: ConsentProfile {
                            optional_scopes,
                            pending_scopes,
                            capabilities,
                            trust_level: TrustLevel::parse(&trust_level).unwrap_or_default(),
                            purpose,
                            consent_copy,
                            domain,
                            consent_ttl,
                        },
                    };
                    admin::create_app(&db, now, spec).await
                }
            }
        }
    };
    match result {
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(AdminError::Invalid(reason)) => {
            println!(
                "{}",
                serde_json::json!({ "error": "invalid_input", "error_description": reason })
            );
            fail(reason)
        }
        Err(AdminError::Internal(e)) => {
            println!(
                "{}",
                serde_json::json!({ "error": "internal_error", "error_description": e.to_string() })
            );
            fail(e)
        }
    }
}

async fn serve(settings: Settings) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(settings.bind).await {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot listen on {}: {e}", settings.bind)),
    };
    let issuer = settings.issuer.as_str().to_string();
    let state = match onyx_id::startup::build_state(settings, Arc::new(SystemClock)).await {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot start: {e:#}")),
    };
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, %issuer, "onyx-id is listening"),
        Err(_) => tracing::info!(%issuer, "onyx-id is listening"),
    }
    match onyx_id::startup::run(listener, state).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
