//! The document's frame: its title, tags and security schemes. The paths and schemas come from
//! the handlers' `#[utoipa::path]` and the types' `ToSchema` (see `routes` in `mod.rs`).

use utoipa::Modify;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "onyx-id partner, operator and grants APIs",
        description = "Partners manage their apps with a partner API key, operators review \
            them with an operator API key, and an app reads its users' grants with its own \
            client credentials. Every refusal is the one JSON error body (`error`, \
            `error_description`, and the state and reason where one applies).",
        version = env!("CARGO_PKG_VERSION"),
    ),
    tags(
        (name = "partner", description = "A partner's own apps, keys and review (partner API key)."),
        (name = "operator", description = "Onyx operators: partners, reviews, access and audit (operator API key)."),
        (name = "grants", description = "An app's view of its users' grants (the app's client credentials)."),
        (name = "meta", description = "This document."),
    ),
    components(schemas(crate::error::ErrorBody, crate::partner::Step)),
    modifiers(&SecuritySchemes),
)]
pub(super) struct ApiDoc;

/// The three ways to call these APIs.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |format: &str, description: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.bearer_format = Some(format.into());
            http.description = Some(description.into());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(
            "partnerKey",
            bearer("onyxpk_…", "A partner API key: acts for one partner."),
        );
        components.add_security_scheme(
            "operatorKey",
            bearer(
                "onyxok_…",
                "An operator API key: acts for one Onyx operator account.",
            ),
        );
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some(
            "The app's client_id and client_secret (HTTP Basic), as at the token endpoint.".into(),
        );
        components.add_security_scheme("clientBasic", SecurityScheme::Http(basic));
    }
}
