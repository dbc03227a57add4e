//! Domain verification (`/partner/apps/{client_id}/domain`): the token to publish, the URL to
//! publish it at, the domain verified and when, and "Check now", which fetches the token
//! (`partner::verification::verify_domain`) and says in words why a check failed.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};

use super::{AppPage, query_member};
use crate::console::form::{Banner, Form, refused_status};
use crate::console::partner::AppHeader;
use crate::console::{Nav, Section, date_time, refusal};
use crate::partner::domain::Verifier;
use crate::partner::verification::{self, DomainChallenge, DomainCheck};
use crate::startup::AppState;
use crate::web::see_other;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/partner/apps/{client_id}/domain", get(domain_get))
        .route("/partner/apps/{client_id}/domain/check", post(domain_check))
}

#[derive(Template)]
#[template(path = "console/partner/domain.html")]
pub struct DomainPage {
    pub nav: Nav,
    pub header: AppHeader,
    pub banner: Banner,
    /// The challenge, or `None` while the draft names no domain.
    pub challenge: Option<ChallengeView>,
    /// What the last check found, when this answer is a failed check: its sentences.
    pub failure: Vec<String>,
}

pub struct ChallengeView {
    pub domain: String,
    pub url: String,
    pub token: String,
    /// When the draft's domain was verified, in words.
    pub verified_at: Option<String>,
    /// A domain verified earlier that is not the draft's (the draft changed it).
    pub earlier: Option<String>,
}

fn verifier(state: &AppState) -> Verifier {
    Verifier::new(state.settings.domain_verification.clone())
}

fn path_of(client_id: &str) -> String {
    format!("/partner/apps/{client_id}/domain")
}

fn done_banner(query: &Option<String>) -> Banner {
    match query_member(query, "done").as_deref() {
        Some("verified") => Banner::done(
            "The domain is verified: Onyx fetched the token you published and it matches.",
        ),
        Some("restored") => {
            Banner::done("The domain is verified again, and the app's access is restored.")
        }
        Some("verified_still_limited") => Banner::done(
            "The domain is verified again. The app's access stays limited for another reason, shown above.",
        ),
        _ => Banner::default(),
    }
}

async fn page(
    state: &AppState,
    p: &AppPage,
    status: StatusCode,
    banner: Banner,
    failure: Vec<String>,
) -> Response {
    let challenge = match verification::domain_challenge(&state.db, &verifier(state), &p.app).await
    {
        Ok(c) => Some(challenge_view(c, p)),
        // The one refusal here: the draft names no domain yet (the page says so).
        Err(crate::partner::program::ProgramError::Conflict { .. }) => None,
        Err(e) => {
            let (s, message, _) = refusal(&e);
            return render(
                p,
                refused_status(s),
                Banner::refused(message),
                None,
                failure,
            );
        }
    };
    render(p, status, banner, challenge, failure)
}

fn challenge_view(c: DomainChallenge, p: &AppPage) -> ChallengeView {
    let earlier = p.app.domain_verified.clone().filter(|d| *d != c.domain);
    ChallengeView {
        verified_at: if c.verified {
            c.verified_at.map(date_time)
        } else {
            None
        },
        earlier,
        domain: c.domain,
        url: c.url,
        token: c.token,
    }
}

fn render(
    p: &AppPage,
    status: StatusCode,
    banner: Banner,
    challenge: Option<ChallengeView>,
    failure: Vec<String>,
) -> Response {
    p.person.render(
        status,
        &DomainPage {
            nav: p.person.nav(Section::Apps),
            header: p.header("domain"),
            banner,
            challenge,
            failure,
        },
    )
}

async fn domain_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let p = or_page!(AppPage::open(&state, &headers, &client_id, &path_of(&client_id)).await);
    page(&state, &p, StatusCode::OK, done_banner(&query), Vec::new()).await
}

async fn domain_check(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let path = path_of(&client_id);
    let mut p = match AppPage::open(&state, &headers, &client_id, &path).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Err(r) = Form::checked(&state, &headers, &body) {
        return r;
    }
    let verifier = verifier(&state);
    // The token is made on first read; a check before any read makes it first, so that the
    // failure says what is wrong with the domain rather than with the order of the calls.
    if p.app.domain_token.is_none() {
        if let Err(e) = verification::domain_challenge(&state.db, &verifier, &p.app).await {
            let (s, message, _) = refusal(&e);
            return page(
                &state,
                &p,
                refused_status(s),
                Banner::refused(message),
                Vec::new(),
            )
            .await;
        }
        match crate::store::apps::by_client_id(&state.db, &client_id).await {
            Ok(Some(app)) => p.app = app,
            Ok(None) => return crate::console::not_found(&p.person),
            Err(e) => {
                return axum::response::IntoResponse::into_response(
                    crate::error::AppError::internal(e),
                );
            }
        }
    }
    let actor = p.actor();
    match verification::verify_domain(&state.db, &verifier, state.now(), &actor, &p.app).await {
        Ok(DomainCheck::Verified {
            access_restored,
            cause_cleared,
            ..
        }) => {
            let done = match (access_restored, cause_cleared) {
                (true, _) => "restored",
                (false, true) => "verified_still_limited",
                _ => "verified",
            };
            see_other(&format!("{path}?done={done}"))
        }
        Ok(DomainCheck::Failed {
            domain,
            error_description,
            verification_lapsed,
            access_limited,
            ..
        }) => {
            let mut failure = vec![super::words_as_sentence(&error_description)];
            if verification_lapsed {
                failure.push(format!(
                    "{domain} was verified before, so its verification has lapsed until the token is served again."
                ));
            }
            if access_limited {
                failure
                    .push("The app's access is limited until the domain is verified again.".into());
            }
            // Reread: a lapse changed the app's access, which the header shows.
            if let Ok(Some(app)) = crate::store::apps::by_client_id(&state.db, &client_id).await {
                p.app = app;
            }
            page(&state, &p, StatusCode::OK, Banner::default(), failure).await
        }
        Err(e) => {
            let (s, message, _) = refusal(&e);
            page(
                &state,
                &p,
                refused_status(s),
                Banner::refused(message),
                Vec::new(),
            )
            .await
        }
    }
}
