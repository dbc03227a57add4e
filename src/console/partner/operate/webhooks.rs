//! Webhooks (`/partner/apps/{client_id}/webhooks`): the app's endpoints with their state (and
//! why one is disabled) and event types; one endpoint's page with its deliveries log (each
//! delivery's attempts: time, status, latency, error; paginated), "Send test event", signing
//! secret rotation (the new secret shown once, the overlap window), enabling a disabled
//! endpoint, changing its event types, and retrying a failed delivery. Each action calls the
//! service function of `crate::webhooks::endpoints` the partner API calls, in its audited form.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};

use super::{AppPage, no_store, query_member, time_left};
use crate::console::form::{Banner, FieldErrors, Form, refused_status};
use crate::console::pager::{Pager, page_param, paginate};
use crate::console::partner::AppHeader;
use crate::console::{Nav, Section, date_time, not_found, sentence};
use crate::partner::access::CapabilityState;
use crate::startup::AppState;
use crate::web::see_other;
use crate::webhooks::endpoints::{self, Actor};
use crate::webhooks::events::ADVANCED_SUBSCRIPTIONS;
use crate::webhooks::{
    DeliveryState, DeliveryView, EndpointState, EndpointView, EventType, SubscriptionError,
    WebhookError,
};

pub fn router() -> Router<AppState> {
    let base = "/partner/apps/{client_id}/webhooks/{endpoint_id}";
    Router::new()
        .route(
            "/partner/apps/{client_id}/webhooks",
            get(list_get).post(endpoint_add),
        )
        .route(base, get(endpoint_get))
        .route(&format!("{base}/test"), post(endpoint_test))
        .route(&format!("{base}/secret"), post(endpoint_secret))
        .route(&format!("{base}/enable"), post(endpoint_enable))
        .route(&format!("{base}/events"), post(endpoint_events))
        .route(
            "/partner/apps/{client_id}/webhook-deliveries/{delivery_id}/retry",
            post(delivery_retry),
        )
}

/// What each event type is about, in words.
pub fn describe(t: EventType) -> &'static str {
    match t {
        EventType::ConsentGranted => "A person granted the app access, or reconnected it.",
        EventType::ConsentUpdated => {
            "A person's permissions changed: more asked for, or one limited, restored or denied."
        }
        EventType::ConsentRevoked => "A grant, or one of its scopes, was revoked.",
        EventType::ConsentExpired => "A permission or grant expired.",
        EventType::AppAccessChanged => "The app was limited, suspended or restored.",
        EventType::AppReviewUpdated => "A review step was decided or reopened.",
        EventType::AppCapabilityUpdated => "A gated capability's state changed.",
        EventType::WebhookTest => "A test event, sent only when you ask for one.",
        EventType::PermissionGranted => "Per scope: one permission granted.",
        EventType::PermissionUpdated => "Per scope: one permission limited, restored or denied.",
        EventType::PermissionRevoked => "Per scope: one permission revoked.",
        EventType::PermissionExpired => "Per scope: one permission expired.",
    }
}

/// An endpoint as the pages show it.
pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub enabled: bool,
    pub disabled_why: Option<String>,
    pub disabled_note: Option<String>,
    pub disabled_at: Option<String>,
    pub events: Vec<&'static str>,
    pub tested: Option<String>,
    pub failing_since: Option<String>,
    /// The signing secret before the last rotation still signs: for how long, until when.
    pub previous_secret: Option<(String, String)>,
    pub created: String,
}

impl EndpointRow {
    fn of(e: EndpointView, now: i64) -> Self {
        Self {
            enabled: e.state == EndpointState::Enabled,
            disabled_why: e.disabled_reason_text.map(String::from),
            disabled_note: e.disabled_note,
            disabled_at: e.disabled_at.map(date_time),
            events: e.events.iter().map(|t| t.as_str()).collect(),
            tested: e.tested_at.map(date_time),
            failing_since: e.failing_since.map(date_time),
            previous_secret: e
                .previous_secret_valid_until
                .map(|u| (time_left(now, u), date_time(u))),
            created: date_time(e.created_at),
            id: e.endpoint_id,
            url: e.url,
        }
    }
}

#[derive(Template)]
#[template(path = "console/partner/webhooks.html")]
pub struct WebhooksPage {
    pub nav: Nav,
    pub header: AppHeader,
    pub endpoints: Vec<EndpointRow>,
    /// URLs the webhooks review step approved that have no endpoint yet, each with whether it is
    /// the one chosen in the "set up an endpoint" form.
    pub approved_without_endpoint: Vec<(String, bool)>,
    /// The "set up an endpoint" form's event types, its errors and its refusal.
    pub choices: Vec<EventChoice>,
    pub advanced: (String, bool),
    pub errors: FieldErrors,
    pub banner: Banner,
    /// URLs in the draft the review has not approved (yet).
    pub awaiting_review: Vec<String>,
}

/// One event type in the endpoint's form.
pub struct EventChoice {
    pub name: &'static str,
    pub id: String,
    pub about: &'static str,
    pub ticked: bool,
    pub gated: bool,
}

/// One attempt of a delivery, in words.
pub struct AttemptRow {
    pub attempt: i64,
    pub at: String,
    pub status: String,
    pub latency: String,
    pub outcome: &'static str,
    pub error: Option<String>,
}

pub struct DeliveryRow {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub created: String,
    pub state: &'static str,
    pub class: &'static str,
    pub next_attempt: Option<String>,
    pub delivered: Option<String>,
    pub last_error: Option<String>,
    pub attempts: Vec<AttemptRow>,
    pub retryable: bool,
}

/// A signing secret just made: shown this once.
pub struct NewSigningSecret {
    pub secret: String,
    /// After a rotation, how long and until when the previous secret still signs; `None` for
    /// a new endpoint's first secret.
    pub overlap: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "console/partner/webhook_endpoint.html")]
pub struct EndpointPage {
    pub nav: Nav,
    pub header: AppHeader,
    pub banner: Banner,
    pub errors: FieldErrors,
    pub endpoint: EndpointRow,
    pub choices: Vec<EventChoice>,
    /// The advanced event subscriptions capability's state in words, and whether it is enabled.
    pub advanced: (String, bool),
    pub deliveries: Vec<DeliveryRow>,
    pub pager: Pager,
    pub max_listed: i64,
    pub created_secret: Option<NewSigningSecret>,
}

fn list_path(client_id: &str) -> String {
    format!("/partner/apps/{client_id}/webhooks")
}

fn endpoint_path(client_id: &str, endpoint_id: &str) -> String {
    format!("/partner/apps/{client_id}/webhooks/{endpoint_id}")
}

/// A webhook refusal in words: its status and sentence.
fn refusal(e: &WebhookError) -> (StatusCode, String) {
    match e {
        WebhookError::NotFound(what) => {
            (StatusCode::NOT_FOUND, format!("There is no such {what}."))
        }
        WebhookError::Invalid { message, .. } => (StatusCode::BAD_REQUEST, sentence(message)),
        WebhookError::Subscription(s @ SubscriptionError::Unknown(_)) => {
            (StatusCode::BAD_REQUEST, sentence(&s.to_string()))
        }
        WebhookError::Subscription(s @ SubscriptionError::Gated { .. }) => {
            (StatusCode::CONFLICT, sentence(&s.to_string()))
        }
        WebhookError::Conflict { message, .. } => (StatusCode::CONFLICT, sentence(message)),
        WebhookError::Internal(_) | WebhookError::Db(_) => {
            tracing::error!(error = ?e, "a console webhook action failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side. Nothing was changed; try again.".into(),
            )
        }
    }
}

fn failed(p: &AppPage, e: &WebhookError) -> Response {
    if matches!(e, WebhookError::NotFound(_)) {
        return not_found(&p.person);
    }
    let (status, message) = refusal(e);
    crate::web::error_page(status, "That did not work", &message)
}

/// What the "set up an endpoint" form shows again after a refusal.
#[derive(Default)]
struct AddForm {
    status: Option<StatusCode>,
    banner: Banner,
    errors: FieldErrors,
    url: Option<String>,
    events: Option<Vec<String>>,
}

async fn list_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let p = or_page!(AppPage::open(&state, &headers, &client_id, &list_path(&client_id)).await);
    list_page(&state, &p, AddForm::default()).await
}

/// The event types of a form, each ticked as `ticked` says (every type that is not gated when
/// `None`: the default of a new endpoint).
fn event_choices(ticked: Option<&[String]>) -> Vec<EventChoice> {
    EventType::all()
        .map(|t| EventChoice {
            name: t.as_str(),
            id: format!("event-{}", t.as_str().replace('.', "-")),
            about: describe(t),
            ticked: match ticked {
                Some(list) => list.iter().any(|x| x == t.as_str()),
                None => !t.is_gated(),
            },
            gated: t.is_gated(),
        })
        .collect()
}

/// The advanced event subscriptions capability's state in words, and whether it is enabled.
fn advanced(app: &crate::store::apps::App) -> (String, bool) {
    let capability = app.capabilities.get(ADVANCED_SUBSCRIPTIONS);
    (
        sentence(&capability.sentence(ADVANCED_SUBSCRIPTIONS)),
        capability.state == CapabilityState::Enabled,
    )
}

async fn list_page(state: &AppState, p: &AppPage, form: AddForm) -> Response {
    let now = state.now();
    let list = match endpoints::list(&state.db, &p.app.client_id, now).await {
        Ok(l) => l,
        Err(e) => return failed(p, &e),
    };
    let without: Vec<&String> = p
        .app
        .webhooks
        .iter()
        .filter(|u| !list.iter().any(|e| e.url == **u))
        .collect();
    let chosen = form
        .url
        .clone()
        .or_else(|| (without.len() == 1).then(|| without[0].clone()));
    let approved_without_endpoint: Vec<(String, bool)> = without
        .into_iter()
        .map(|u| (u.clone(), chosen.as_deref() == Some(u.as_str())))
        .collect();
    // With no approved URL left there is no form to show a refusal at: the banner says it.
    let mut banner = form.banner;
    if approved_without_endpoint.is_empty() && banner.error.is_none() {
        let said: Vec<&str> = form
            .errors
            .all()
            .flat_map(|(_, e)| e.iter().map(String::as_str))
            .collect();
        if !said.is_empty() {
            banner = Banner::refused(said.join(" "));
        }
    }
    let awaiting_review = p
        .draft
        .webhooks
        .iter()
        .filter(|u| !p.app.webhooks.contains(u))
        .cloned()
        .collect();
    let endpoints = list.into_iter().map(|e| EndpointRow::of(e, now)).collect();
    p.person.render(
        form.status.unwrap_or(StatusCode::OK),
        &WebhooksPage {
            nav: p.person.nav(Section::Apps),
            header: p.header("webhooks"),
            endpoints,
            approved_without_endpoint,
            choices: event_choices(form.events.as_deref()),
            advanced: advanced(&p.app),
            errors: form.errors,
            banner,
            awaiting_review,
        },
    )
}

/// "Set up an endpoint": one of the URLs the webhooks review step approved, with its event
/// types. The new endpoint's page shows its signing secret this once.
async fn endpoint_add(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let p = or_page!(AppPage::open(&state, &headers, &client_id, &list_path(&client_id)).await);
    let form = match Form::checked(&state, &headers, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let events: Vec<String> = form.all("events").into_iter().map(String::from).collect();
    let url = form.get("url").unwrap_or_default().trim().to_string();
    let mut shown = AddForm {
        url: Some(url.clone()),
        events: Some(events.clone()),
        ..AddForm::default()
    };
    if url.is_empty() {
        shown.status = Some(StatusCode::BAD_REQUEST);
        shown
            .errors
            .add("url", "Choose the approved URL to set up.");
        return list_page(&state, &p, shown).await;
    }
    if events.is_empty() {
        shown.status = Some(StatusCode::BAD_REQUEST);
        shown
            .errors
            .add("events", "Choose at least one event type for the endpoint.");
        return list_page(&state, &p, shown).await;
    }
    let actor = p.actor();
    let added = endpoints::add(
        &state.db,
        by(&actor, &p.app),
        &state.webhook_secrets,
        &state.settings.webhooks,
        &p.app,
        &url,
        &events,
        state.now(),
    )
    .await;
    match added {
        Ok(e) => {
            let mut page = Shown::ok(Banner::done(
                "The endpoint is set up and enabled. Copy its signing secret now: it is shown only this once. Then send a test event.",
            ));
            page.created_secret = Some(NewSigningSecret {
                secret: e.secret,
                overlap: None,
            });
            no_store(endpoint_page(&state, &p, &e.endpoint_id, page).await)
        }
        Err(e) => {
            let (status, message) = refusal(&e);
            shown.status = Some(refused_status(status));
            let field = match &e {
                WebhookError::Subscription(_) => "events",
                WebhookError::Invalid { .. } | WebhookError::Conflict { .. } => "url",
                _ => "",
            };
            if field.is_empty() {
                shown.banner = Banner::refused(message);
            } else {
                shown.errors.add(field, message);
            }
            list_page(&state, &p, shown).await
        }
    }
}

fn attempt_row(a: &crate::webhooks::AttemptView) -> AttemptRow {
    AttemptRow {
        attempt: a.attempt,
        at: date_time(a.at),
        status: a
            .status
            .map_or("No answer".to_string(), |s| format!("HTTP {s}")),
        latency: format!("{} ms", a.latency_ms),
        outcome: match a.outcome.as_str() {
            "delivered" => "Delivered",
            "gone" => "Gone (410): the endpoint was disabled",
            "security_failure" => "Security check failed: the endpoint was disabled",
            _ => "Failed",
        },
        error: a.error.clone(),
    }
}

fn delivery_row(d: DeliveryView) -> DeliveryRow {
    let (state, class) = match d.state {
        DeliveryState::Pending => ("Pending", "wait"),
        DeliveryState::Delivered => ("Delivered", "good"),
        DeliveryState::Failed => ("Failed", "bad"),
    };
    DeliveryRow {
        attempts: d.attempts.iter().map(attempt_row).collect(),
        retryable: d.state == DeliveryState::Failed,
        next_attempt: d.next_attempt_at.map(date_time),
        delivered: d.delivered_at.map(date_time),
        created: date_time(d.created_at),
        last_error: d.last_error,
        state,
        class,
        id: d.delivery_id,
        event_id: d.event_id,
        event_type: d.event_type,
    }
}

/// What the endpoint page shows besides its actions' outcome.
struct Shown {
    status: StatusCode,
    banner: Banner,
    errors: FieldErrors,
    /// The event types as ticked in a refused change.
    typed_events: Option<Vec<String>>,
    created_secret: Option<NewSigningSecret>,
    page: Option<usize>,
}

impl Shown {
    fn ok(banner: Banner) -> Self {
        Self {
            status: StatusCode::OK,
            banner,
            errors: FieldErrors::new(),
            typed_events: None,
            created_secret: None,
            page: None,
        }
    }
}

async fn endpoint_page(state: &AppState, p: &AppPage, endpoint_id: &str, s: Shown) -> Response {
    let now = state.now();
    let client_id = &p.app.client_id;
    let view = match endpoints::get(&state.db, client_id, endpoint_id, now).await {
        Ok(v) => v,
        Err(e) => return failed(p, &e),
    };
    let log = match endpoints::deliveries(&state.db, client_id, Some(endpoint_id)).await {
        Ok(l) => l,
        Err(e) => return failed(p, &e),
    };
    let ticked: Vec<String> = match s.typed_events {
        Some(t) => t,
        None => view.events.iter().map(|e| e.as_str().to_string()).collect(),
    };
    let choices = event_choices(Some(&ticked));
    let rows = log.into_iter().map(delivery_row).collect();
    let (deliveries, pager) = paginate(rows, s.page, &endpoint_path(client_id, endpoint_id));
    p.person.render(
        s.status,
        &EndpointPage {
            nav: p.person.nav(Section::Apps),
            header: p.header("webhooks"),
            banner: s.banner,
            errors: s.errors,
            endpoint: EndpointRow::of(view, now),
            choices,
            advanced: advanced(&p.app),
            deliveries,
            pager,
            max_listed: endpoints::MAX_LISTED_DELIVERIES,
            created_secret: s.created_secret,
        },
    )
}

fn done_banner(query: &Option<String>) -> Banner {
    match query_member(query, "done").as_deref() {
        Some("test") => Banner::done(
            "A signed test event is on its way. Its delivery shows in the log below; reload to see its attempts.",
        ),
        Some("enabled") => Banner::done(
            "The endpoint is enabled again: new events are delivered to it. Failed deliveries can be retried.",
        ),
        Some("events") => Banner::done(
            "The endpoint's event types were changed. Events already on their way are still delivered.",
        ),
        Some("retried") => Banner::done(
            "The delivery is due again, with the same webhook-id. Reload to see the new attempt.",
        ),
        _ => Banner::default(),
    }
}

async fn endpoint_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, endpoint_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let path = endpoint_path(&client_id, &endpoint_id);
    let p = or_page!(AppPage::open(&state, &headers, &client_id, &path).await);
    let mut shown = Shown::ok(done_banner(&query));
    shown.page = page_param(query_member(&query, "page").as_deref());
    endpoint_page(&state, &p, &endpoint_id, shown).await
}

/// Opens the app page of an endpoint action and checks the form's CSRF token.
async fn action(
    state: &AppState,
    headers: &HeaderMap,
    client_id: &str,
    endpoint_id: &str,
    body: &Bytes,
) -> Result<(AppPage, Form), Response> {
    let path = endpoint_path(client_id, endpoint_id);
    let p = AppPage::open(state, headers, client_id, &path).await?;
    let form = Form::checked(state, headers, body)?;
    Ok((p, form))
}

/// The endpoint page with the refusal `e` in its banner.
async fn refused(state: &AppState, p: &AppPage, endpoint_id: &str, e: &WebhookError) -> Response {
    if matches!(e, WebhookError::NotFound(_)) {
        return not_found(&p.person);
    }
    let (status, message) = refusal(e);
    let mut shown = Shown::ok(Banner::refused(message));
    shown.status = refused_status(status);
    endpoint_page(state, p, endpoint_id, shown).await
}

async fn endpoint_test(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, endpoint_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (p, _) = or_page!(action(&state, &headers, &client_id, &endpoint_id, &body).await);
    let actor = p.actor();
    match endpoints::send_test(
        &state.db,
        by(&actor, &p.app),
        &p.app.client_id,
        &endpoint_id,
        state.now(),
    )
    .await
    {
        Ok(_) => see_other(&format!(
            "{}?done=test#deliveries",
            endpoint_path(&client_id, &endpoint_id)
        )),
        Err(e) => refused(&state, &p, &endpoint_id, &e).await,
    }
}

async fn endpoint_enable(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, endpoint_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (p, _) = or_page!(action(&state, &headers, &client_id, &endpoint_id, &body).await);
    let actor = p.actor();
    match endpoints::enable(
        &state.db,
        by(&actor, &p.app),
        &p.app.client_id,
        &endpoint_id,
        state.now(),
    )
    .await
    {
        Ok(_) => see_other(&format!(
            "{}?done=enabled",
            endpoint_path(&client_id, &endpoint_id)
        )),
        Err(e) => refused(&state, &p, &endpoint_id, &e).await,
    }
}

async fn endpoint_secret(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, endpoint_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (p, _) = or_page!(action(&state, &headers, &client_id, &endpoint_id, &body).await);
    let now = state.now();
    let actor = p.actor();
    let sealer = &state.webhook_secrets;
    match endpoints::rotate_secret(
        &state.db,
        by(&actor, &p.app),
        sealer,
        &p.app.client_id,
        &endpoint_id,
        now,
    )
    .await
    {
        Ok(r) => {
            let until = r.previous_secret_valid_until;
            let mut shown = Shown::ok(Banner::done(
                "The endpoint has a new signing secret. Copy it now: it is shown only this once.",
            ));
            shown.created_secret = Some(NewSigningSecret {
                secret: r.secret,
                overlap: Some((time_left(now, until), date_time(until))),
            });
            no_store(endpoint_page(&state, &p, &endpoint_id, shown).await)
        }
        Err(e) => refused(&state, &p, &endpoint_id, &e).await,
    }
}

async fn endpoint_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, endpoint_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (p, form) = or_page!(action(&state, &headers, &client_id, &endpoint_id, &body).await);
    let events: Vec<String> = form.all("events").into_iter().map(String::from).collect();
    let actor = p.actor();
    let now = state.now();
    match endpoints::set_events(
        &state.db,
        by(&actor, &p.app),
        &p.app,
        &endpoint_id,
        &events,
        now,
    )
    .await
    {
        Ok(_) => see_other(&format!(
            "{}?done=events",
            endpoint_path(&client_id, &endpoint_id)
        )),
        Err(WebhookError::NotFound(_)) => not_found(&p.person),
        Err(e) => {
            let (status, message) = refusal(&e);
            let mut shown = Shown::ok(Banner::default());
            shown.status = refused_status(status);
            shown.errors.add("events", message);
            shown.typed_events = Some(events);
            endpoint_page(&state, &p, &endpoint_id, shown).await
        }
    }
}

async fn delivery_retry(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, delivery_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let p = or_page!(AppPage::open(&state, &headers, &client_id, &list_path(&client_id)).await);
    if let Err(r) = Form::checked(&state, &headers, &body) {
        return r;
    }
    // A delivery's id is `{event_id}.{endpoint_id}`: the page to come back to is its endpoint's,
    // when the endpoint is one of this app's.
    let now = state.now();
    let endpoint_id = match delivery_id.split_once('.') {
        Some((_, e)) => endpoints::get(&state.db, &p.app.client_id, e, now)
            .await
            .ok()
            .map(|v| v.endpoint_id),
        None => None,
    };
    let actor = p.actor();
    let outcome = endpoints::retry(
        &state.db,
        by(&actor, &p.app),
        &p.app.client_id,
        &delivery_id,
        now,
    )
    .await;
    match (outcome, endpoint_id) {
        (Ok(()), Some(e)) => see_other(&format!(
            "{}?done=retried#deliveries",
            endpoint_path(&client_id, &e)
        )),
        (Ok(()), None) => see_other(&list_path(&client_id)),
        (Err(e), Some(endpoint_id)) => refused(&state, &p, &endpoint_id, &e).await,
        (Err(e), None) => match e {
            WebhookError::Conflict { .. } | WebhookError::NotFound(_) => not_found(&p.person),
            e => failed(&p, &e),
        },
    }
}

/// The member acting on `app`'s endpoints, for the audit entry of the change.
fn by<'a>(actor: &'a str, app: &'a crate::store::apps::App) -> Option<Actor<'a>> {
    Some(Actor {
        actor,
        partner_id: app.partner_id.as_deref(),
    })
}
