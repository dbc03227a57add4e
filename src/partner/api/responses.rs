//! The error responses of the documented routes, one set per kind of caller: a route's
//! `responses(...)` lists its success and one of these sets. Each refusal is the one JSON
//! error body (the `Error` schema, built by `error::error_body`).
//!
//! The sets are made of parts, each status described once for its kind of caller: who the
//! caller is (a partner key, an operator key, an app's client credentials), the partner
//! program's own refusals, and those of a JSON body.

use std::collections::BTreeMap;

use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{Content, Ref, RefOr};
use utoipa::{IntoResponses, ToSchema};

use crate::error::ErrorBody;

/// A part of an error set: each status with what it means for this kind of caller.
type Part = &'static [(&'static str, &'static str)];

const BEARER_401: &str = "no API key, or an unknown or revoked one (`WWW-Authenticate: Bearer`)";
const SERVER_500: &str = "the server could not complete the request";

/// The refusals of a route called with a partner API key.
const PARTNER_KEY: Part = &[
    ("401", BEARER_401),
    (
        "403",
        "an operator key: this endpoint needs a partner API key",
    ),
    (
        "404",
        "no such thing for this partner (another partner's app is not found)",
    ),
];

/// The refusals of a route called with an operator API key.
const OPERATOR_KEY: Part = &[
    ("401", BEARER_401),
    (
        "403",
        "a partner key: this endpoint needs an operator API key",
    ),
    ("404", "no such app or partner"),
];

/// The partner program's refusals of a well-authenticated request (`ProgramError`).
const PROGRAM: Part = &[
    (
        "400",
        "the request is malformed or a value is not acceptable",
    ),
    ("409", "the current state does not allow it"),
    ("500", SERVER_500),
];

/// The refusals of a JSON request body (beside its 400s).
const BODY: Part = &[
    ("413", "the body is larger than the 64 KiB accepted"),
    ("415", "the body is not sent as `application/json`"),
];

/// The refusals of the grants API, called with the app's own client credentials.
const GRANTS: Part = &[
    (
        "400",
        "the request is malformed, or `scope` names a scope that does not exist",
    ),
    (
        "401",
        "the client credentials are missing or wrong (`WWW-Authenticate: Basic`)",
    ),
    (
        "403",
        "the app may not be used now (`unauthorized_client`, with `access_state` and \
         `reason`), or does not hold `grants:read` (`insufficient_scope`)",
    ),
    ("404", "this user has no grant for this app"),
    ("500", SERVER_500),
];

/// The responses of `parts`, each the one JSON error body.
fn responses(parts: &[Part]) -> BTreeMap<String, RefOr<Response>> {
    let schema = Ref::from_schema_name(ErrorBody::name());
    parts
        .iter()
        .flat_map(|part| part.iter())
        .map(|(status, description)| {
            let response = ResponseBuilder::new()
                .description(*description)
                .content("application/json", Content::new(Some(schema.clone())))
                .build();
            (status.to_string(), response.into())
        })
        .collect()
}

/// An error set: the union of its parts' responses.
macro_rules! error_set {
    ($(#[$doc:meta])* $name:ident = $($part:expr),+) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                responses(&[$($part),+])
            }
        }
    };
}

error_set!(
    /// A partner route without a request body.
    PartnerErrors = PARTNER_KEY, PROGRAM
);
error_set!(
    /// A partner route that reads a JSON body.
    PartnerBodyErrors = PARTNER_KEY, PROGRAM, BODY
);
error_set!(
    /// An operator route without a request body.
    OperatorErrors = OPERATOR_KEY, PROGRAM
);
error_set!(
    /// An operator route that reads a JSON body.
    OperatorBodyErrors = OPERATOR_KEY, PROGRAM, BODY
);
error_set!(
    /// A route of the grants API.
    GrantsErrors = GRANTS
);

#[cfg(test)]
mod tests {
    use super::*;

    fn statuses<T: IntoResponses>() -> Vec<String> {
        T::responses().into_keys().collect()
    }

    #[test]
    fn each_set_lists_its_callers_statuses() {
        let plain = ["400", "401", "403", "404", "409", "500"];
        let body = ["400", "401", "403", "404", "409", "413", "415", "500"];
        assert_eq!(statuses::<PartnerErrors>(), plain);
        assert_eq!(statuses::<OperatorErrors>(), plain);
        assert_eq!(statuses::<PartnerBodyErrors>(), body);
        assert_eq!(statuses::<OperatorBodyErrors>(), body);
        assert_eq!(
            statuses::<GrantsErrors>(),
            ["400", "401", "403", "404", "500"]
        );
    }
}
