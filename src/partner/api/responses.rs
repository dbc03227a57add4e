//! The error responses of the documented routes, one set per kind of caller: a route's
//! `responses(...)` lists its success and one of these sets. Each refusal is the one JSON
//! error body (the `Error` schema, built by `error::error_body`).
//!
//! The sets are made of parts, each status described once: who the caller is (a partner key,
//! an operator key), the partner program's own refusals, and those of a JSON body.

use std::collections::BTreeMap;

use utoipa::IntoResponses;
use utoipa::openapi::RefOr;
use utoipa::openapi::response::Response;

use crate::error::ErrorBody;

/// The refusals of a route called with a partner API key.
#[derive(IntoResponses)]
#[allow(dead_code)]
enum PartnerKey {
    #[response(
        status = 401,
        description = "no API key, or an unknown or revoked one (`WWW-Authenticate: Bearer`)"
    )]
    Unauthorized(ErrorBody),
    #[response(
        status = 403,
        description = "an operator key: this endpoint needs a partner API key"
    )]
    Forbidden(ErrorBody),
    #[response(
        status = 404,
        description = "no such thing for this partner (another partner's app is not found)"
    )]
    NotFound(ErrorBody),
}

/// The refusals of a route called with an operator API key.
#[derive(IntoResponses)]
#[allow(dead_code)]
enum OperatorKey {
    #[response(
        status = 401,
        description = "no API key, or an unknown or revoked one (`WWW-Authenticate: Bearer`)"
    )]
    Unauthorized(ErrorBody),
    #[response(
        status = 403,
        description = "a partner key: this endpoint needs an operator API key"
    )]
    Forbidden(ErrorBody),
    #[response(status = 404, description = "no such app or partner")]
    NotFound(ErrorBody),
}

/// The partner program's refusals of a well-authenticated request (`ProgramError`).
#[derive(IntoResponses)]
#[allow(dead_code)]
enum Program {
    #[response(
        status = 400,
        description = "the request is malformed or a value is not acceptable"
    )]
    BadRequest(ErrorBody),
    #[response(status = 409, description = "the current state does not allow it")]
    Conflict(ErrorBody),
    #[response(
        status = 500,
        description = "the server could not complete the request"
    )]
    Internal(ErrorBody),
}

/// The refusals of a JSON request body (beside its 400s).
#[derive(IntoResponses)]
#[allow(dead_code)]
enum Body {
    #[response(
        status = 413,
        description = "the body is larger than the 64 KiB accepted"
    )]
    TooLarge(ErrorBody),
    #[response(
        status = 415,
        description = "the body is not sent as `application/json`"
    )]
    UnsupportedMediaType(ErrorBody),
}

/// The refusals of the grants API, called with the app's own client credentials.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub(crate) enum GrantsErrors {
    #[response(
        status = 400,
        description = "the request is malformed, or `scope` names a scope that does not exist"
    )]
    BadRequest(ErrorBody),
    #[response(
        status = 401,
        description = "the client credentials are missing or wrong (`WWW-Authenticate: Basic`)"
    )]
    Unauthorized(ErrorBody),
    #[response(
        status = 403,
        description = "the app may not be used now (`unauthorized_client`, with `access_state` \
            and `reason`), or does not hold `grants:read` (`insufficient_scope`)"
    )]
    Forbidden(ErrorBody),
    #[response(status = 404, description = "this user has no grant for this app")]
    NotFound(ErrorBody),
    #[response(
        status = 500,
        description = "the server could not complete the request"
    )]
    Internal(ErrorBody),
}

/// An error set: the union of its parts' responses.
macro_rules! error_set {
    ($(#[$doc:meta])* $name:ident = $($part:ty),+) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                let mut all = BTreeMap::new();
                $(all.extend(<$part as IntoResponses>::responses());)+
                all
            }
        }
    };
}

error_set!(
    /// A partner route without a request body.
    PartnerErrors = PartnerKey, Program
);
error_set!(
    /// A partner route that reads a JSON body.
    PartnerBodyErrors = PartnerKey, Program, Body
);
error_set!(
    /// An operator route without a request body.
    OperatorErrors = OperatorKey, Program
);
error_set!(
    /// An operator route that reads a JSON body.
    OperatorBodyErrors = OperatorKey, Program, Body
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
