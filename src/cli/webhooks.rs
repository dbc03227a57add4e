//! `onyx-id apps webhooks add | list | deliveries | test | rotate-secret`: an app's webhook
//! endpoints from the command line, a development shortcut with the same rules as
//! `apps create` (no review: the operator vouches for the URL). Each prints one JSON object;
//! the changes are in the audit log. The events themselves are delivered by the running server.

use clap::Subcommand;
use serde::Serialize;

use super::output::{CommandResult, admin_result, audited};
use crate::admin::AdminError;
use crate::config::Settings;
use crate::partner::apps;
use crate::store::Db;
use crate::webhooks::endpoints::{self, EndpointView};
use crate::webhooks::secrets::SecretBox;
use crate::webhooks::{DeliveryView, WebhookError};

#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// Add an endpoint; prints {"endpoint_id", "url", "events", "secret"} (the secret only
    /// this once).
    Add {
        #[arg(long, allow_hyphen_values = true)]
        app: String,
        /// The https URL events are POSTed to.
        #[arg(long)]
        url: String,
        /// An event type it receives (repeat; every type that is not gated when none is given).
        #[arg(long = "event")]
        events: Vec<String>,
    },
    /// List the app's endpoints (never their secrets).
    List {
        #[arg(long, allow_hyphen_values = true)]
        app: String,
    },
    /// The app's latest deliveries with their attempts, of one endpoint or all.
    Deliveries {
        #[arg(long, allow_hyphen_values = true)]
        app: String,
        #[arg(long)]
        endpoint: Option<String>,
    },
    /// Queue a signed `webhook.test` event to an endpoint (the server delivers it).
    Test {
        #[arg(long, allow_hyphen_values = true)]
        app: String,
        #[arg(long)]
        endpoint: String,
    },
    /// A new signing secret (printed once); the previous one signs beside it for 24 hours.
    RotateSecret {
        #[arg(long, allow_hyphen_values = true)]
        app: String,
        #[arg(long)]
        endpoint: String,
    },
}

#[derive(Serialize)]
struct Endpoints {
    client_id: String,
    endpoints: Vec<EndpointView>,
}

#[derive(Serialize)]
struct Deliveries {
    client_id: String,
    deliveries: Vec<DeliveryView>,
}

/// What the audit log keeps of a change: never the secret.
#[derive(Serialize)]
struct Audit<'a> {
    client_id: &'a str,
    endpoint_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_valid_until: Option<i64>,
}

fn admin(e: WebhookError) -> AdminError {
    match e {
        WebhookError::Internal(e) => AdminError::Internal(e),
        WebhookError::Db(e) => AdminError::Internal(e.into()),
        other => AdminError::Invalid(format!("{}: {other}", other.code())),
    }
}

async fn sealer(db: &Db, settings: &Settings) -> Result<SecretBox, AdminError> {
    let kek = crate::keys::KeyEncryptionKey::resolve(settings).map_err(AdminError::Internal)?;
    SecretBox::load(db, &kek, &settings.keys_dir)
        .await
        .map_err(AdminError::Internal)
}

pub async fn run(
    db: &Db,
    settings: &Settings,
    now: i64,
    command: WebhooksCommand,
) -> CommandResult {
    let app_id = match &command {
        WebhooksCommand::Add { app, .. }
        | WebhooksCommand::List { app }
        | WebhooksCommand::Deliveries { app, .. }
        | WebhooksCommand::Test { app, .. }
        | WebhooksCommand::RotateSecret { app, .. } => app.clone(),
    };
    let app = apps::any_app(db, &app_id)
        .await
        .map_err(|e| AdminError::Invalid(e.line()))?;
    let client_id = app.client_id.clone();
    match command {
        WebhooksCommand::Add { url, events, .. } => {
            let sealer = sealer(db, settings).await?;
            let added = endpoints::add(
                db,
                None,
                &sealer,
                &settings.webhooks,
                &app,
                &url,
                &events,
                now,
            )
            .await
            .map_err(admin);
            if let Ok(e) = &added {
                let detail = Audit {
                    client_id: &client_id,
                    endpoint_id: &e.endpoint_id,
                    url: Some(&e.url),
                    previous_secret_valid_until: None,
                };
                crate::admin::record_cli_event(db, now, "webhook.endpoint_added", &detail).await?;
            }
            admin_result(added)
        }
        WebhooksCommand::List { .. } => admin_result(
            endpoints::list(db, &client_id, now)
                .await
                .map(|endpoints| Endpoints {
                    client_id,
                    endpoints,
                })
                .map_err(admin),
        ),
        WebhooksCommand::Deliveries { endpoint, .. } => admin_result(
            endpoints::deliveries(db, &client_id, endpoint.as_deref())
                .await
                .map(|deliveries| Deliveries {
                    client_id,
                    deliveries,
                })
                .map_err(admin),
        ),
        WebhooksCommand::Test { endpoint, .. } => {
            let sent = endpoints::send_test(db, None, &client_id, &endpoint, now).await;
            admin_result(audited(db, now, "webhook.test_sent", sent.map_err(admin)).await)
        }
        WebhooksCommand::RotateSecret { endpoint, .. } => {
            let sealer = sealer(db, settings).await?;
            let rotated =
                endpoints::rotate_secret(db, None, &sealer, &client_id, &endpoint, now).await;
            let rotated = rotated.map_err(admin);
            if let Ok(r) = &rotated {
                let detail = Audit {
                    client_id: &client_id,
                    endpoint_id: &r.endpoint_id,
                    url: None,
                    previous_secret_valid_until: Some(r.previous_secret_valid_until),
                };
                crate::admin::record_cli_event(db, now, "webhook.secret_rotated", &detail).await?;
            }
            admin_result(rotated)
        }
    }
}
