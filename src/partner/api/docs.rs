//! The document's frame: its title, tags and security schemes. The paths and schemas come from
//! the handlers' `#[utoipa::path]` and the types' `ToSchema` (see `routes` in `mod.rs`).

use serde_json::{Value, json};
use strum::IntoEnumIterator;
use utoipa::Modify;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

use crate::partner::access::{AccessReason, AccessState};
use crate::partner::access_change::AccessChange;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "onyx-id partner, operator and grants APIs",
        description = "Partners manage their apps with a partner API key, operators review \
            them with an operator API key, and an app reads its users' grants with its own \
            client credentials. Every refusal is the one JSON error body (`error`, \
            `error_description`, and the state and reason where one applies).\n\n\
            Webhook events are POSTed to an app's endpoints as the `Event` schema \
            (`{\"type\", \"timestamp\", \"data\"}`), signed as Standard Webhooks 1.0 \
            (`webhook-id`, `webhook-timestamp`, `webhook-signature`).",
        version = env!("CARGO_PKG_VERSION"),
    ),
    tags(
        (name = "partner", description = "A partner's own apps, keys and review (partner API key)."),
        (name = "operator", description = "Onyx operators: partners, reviews, access and audit (operator API key)."),
        (name = "grants", description = "An app's view of its users' grants (the app's client credentials)."),
        (name = "meta", description = "This document."),
    ),
    components(schemas(
        crate::error::ErrorBody,
        crate::partner::Step,
        CapabilityName,
        crate::webhooks::Event
    )),
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

/// The schemas that carry an app's access state with its reason: (schema, state member,
/// reason member).
pub(crate) const ACCESS_PAIRS: &[(&str, &str, &str)] = &[
    ("AccessBody", "state", "reason"),
    ("AccessView", "state", "reason"),
    ("CauseView", "state", "reason"),
    ("Grant", "access_state", "access_reason"),
    ("GrantHistory", "access_state", "access_reason"),
];

/// States the access state and reason pairs in the schemas that carry them: a `oneOf` with one
/// branch per state and the reasons that go with it (`restored` for `active` and only for it).
/// The pairs are those `AccessChange::parse` accepts, which every access change goes through,
/// so they come from the rule itself; a reason may be `null` where a state goes without one.
pub(super) fn access_pairs(doc: &mut utoipa::openapi::OpenApi) {
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    for (schema, state, reason) in ACCESS_PAIRS {
        if let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut(*schema) {
            o.extensions
                .get_or_insert_with(Default::default)
                .insert("oneOf".into(), pairs(state, reason));
        }
    }
}

fn pairs(state_member: &str, reason_member: &str) -> Value {
    let branches = AccessState::iter().map(|state| {
        let accepts = |reason: Option<&str>| {
            AccessChange::parse(state.as_str(), reason, None, Vec::new(), None).is_ok()
        };
        let mut reasons: Vec<Value> = AccessReason::all()
            .filter(|r| accepts(Some(r.as_str())))
            .map(|r| r.as_str().into())
            .collect();
        let mut required = vec![state_member];
        if accepts(None) {
            reasons.push(Value::Null);
        } else {
            required.push(reason_member);
        }
        json!({
            "properties": {
                state_member: { "const": state.as_str() },
                reason_member: { "enum": reasons },
            },
            "required": required,
        })
    });
    Value::Array(branches.collect())
}

/// The schema of a string enum whose names come from the code (an enum's
/// `strum::VariantNames`, a list of names): `$doc_type` is documentation only.
macro_rules! names_schema {
    ($(#[$doc:meta])* $doc_type:ident = $name:literal, $names:expr) => {
        $(#[$doc])*
        pub(crate) struct $doc_type;

        impl utoipa::PartialSchema for $doc_type {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some($names.iter().copied()))
                    .into()
            }
        }

        impl utoipa::ToSchema for $doc_type {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($name)
            }
        }
    };
}
pub(crate) use names_schema;

names_schema!(
    /// How far Onyx trusts an app (`scopes::TrustLevel`).
    TrustLevelDoc = "TrustLevel", <crate::scopes::TrustLevel as strum::VariantNames>::VARIANTS
);
names_schema!(
    /// A gated capability (`partner::CAPABILITIES`).
    CapabilityName = "CapabilityName", crate::partner::CAPABILITIES
);

// The schemas of the storage rows the API answers with as they are (`store` stays free of
// documentation concerns). The unit tests below hold each one to the row's serialized members.

/// A partner.
#[derive(utoipa::ToSchema)]
#[schema(as = Partner)]
#[allow(dead_code)]
pub(crate) struct PartnerDoc {
    id: String,
    name: String,
    website: String,
    regions: Vec<String>,
    support_contact: String,
    /// Seconds since the Unix epoch.
    created_at: i64,
}

/// A member of a partner, with its role.
#[derive(utoipa::ToSchema)]
#[schema(as = Member)]
#[allow(dead_code)]
pub(crate) struct MemberDoc {
    user_id: String,
    email: String,
    #[schema(value_type = crate::partner::partners::Role)]
    role: String,
    created_at: i64,
}

/// An API key, without its secret.
#[derive(utoipa::ToSchema)]
#[schema(as = ApiKeyInfo)]
#[allow(dead_code)]
pub(crate) struct KeyInfoDoc {
    id: String,
    name: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

/// One entry of the audit log.
#[derive(utoipa::ToSchema)]
#[schema(as = AuditEntry)]
#[allow(dead_code)]
pub(crate) struct AuditEntryDoc {
    id: i64,
    at: i64,
    /// `operator:<user id>/key:<key id>`, `partner:<partner id>/key:<key id>` (the APIs),
    /// `operator:<user id>/console`, `partner:<partner id>/user:<user id>` (the consoles), `cli`
    /// or `onyx-id`.
    actor: String,
    partner_id: Option<String>,
    client_id: Option<String>,
    action: String,
    /// What changed, by action.
    #[schema(value_type = Object)]
    detail: serde_json::Value,
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use serde::Serialize;
    use serde_json::Value;
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::Schema;

    use crate::store::{audit, partners};

    pub(crate) fn members(v: impl Serialize) -> BTreeSet<String> {
        match serde_json::to_value(v).unwrap() {
            serde_json::Value::Object(m) => m.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    pub(crate) fn properties<T: utoipa::ToSchema>() -> BTreeSet<String> {
        match T::schema() {
            RefOr::T(Schema::Object(o)) => o.properties.keys().cloned().collect(),
            _ => panic!("{} is not an object schema", T::name()),
        }
    }

    #[test]
    fn the_row_schemas_name_the_members_the_rows_serialize() {
        let partner = partners::Partner {
            id: "p".into(),
            name: "n".into(),
            website: "w".into(),
            regions: vec![],
            support_contact: "s".into(),
            created_at: 0,
        };
        assert_eq!(members(partner), properties::<super::PartnerDoc>());
        let member = partners::Member {
            user_id: "u".into(),
            email: "e".into(),
            role: "owner".into(),
            created_at: 0,
        };
        assert_eq!(members(member), properties::<super::MemberDoc>());
        let key = partners::KeyInfo {
            id: "k".into(),
            name: "n".into(),
            created_at: 0,
            last_used_at: None,
            revoked_at: None,
        };
        assert_eq!(members(key), properties::<super::KeyInfoDoc>());
        let entry = audit::Entry {
            id: 1,
            at: 0,
            actor: "cli".into(),
            partner_id: None,
            client_id: None,
            action: "a".into(),
            detail: serde_json::json!({}),
        };
        assert_eq!(members(entry), properties::<super::AuditEntryDoc>());
    }

    #[test]
    fn the_access_pairs_are_restored_for_active_and_every_other_reason_for_the_rest() {
        let pairs = super::pairs("state", "reason");
        let branches = pairs.as_array().unwrap();
        assert_eq!(branches.len(), 3);
        assert_eq!(branches[0]["properties"]["state"]["const"], "active");
        assert_eq!(
            branches[0]["properties"]["reason"]["enum"],
            serde_json::json!(["restored", null])
        );
        for (branch, state) in branches[1..].iter().zip(["limited", "suspended"]) {
            assert_eq!(branch["properties"]["state"]["const"], state);
            let reasons = branch["properties"]["reason"]["enum"].as_array().unwrap();
            assert_eq!(reasons.len(), super::AccessReason::all().count() - 1);
            assert!(!reasons.contains(&"restored".into()) && !reasons.contains(&Value::Null));
            assert_eq!(branch["required"], serde_json::json!(["state", "reason"]));
        }
    }
}
