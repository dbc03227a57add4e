//! `OAuthError`: the RFC error codes of the token, userinfo, introspection and revocation
//! endpoints, always as JSON (RFC 6749 §5.2), and of the authorization endpoint's redirects
//! (RFC 6749 §4.1.2.1).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::wire::wire_enum;

wire_enum! {
    /// RFC 6749 §4.1.2.1 and §5.2 error codes, plus OIDC Core §3.1.2.6.
    /// The code's string form is derived once (`as_str`, `Display`, `FromStr`).
    pub enum ErrorCode as "snake_case" {
        InvalidRequest,
        InvalidClient,
        InvalidGrant,
        UnauthorizedClient,
        UnsupportedGrantType,
        UnsupportedResponseType,
        InvalidScope,
        AccessDenied,
        ServerError,
        LoginRequired,
        ConsentRequired,
        InteractionRequired,
        RequestNotSupported,
        RequestUriNotSupported,
        InvalidToken,
        InsufficientScope,
        InvalidTarget,
        /// RFC 9449 §12.2: the DPoP proof is missing or not acceptable.
        InvalidDpopProof,
        /// RFC 9449 §12.2: the proof must carry the server's nonce (given in `DPoP-Nonce`).
        UseDpopNonce,
    }
}

/// What a `WWW-Authenticate` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// Client authentication with HTTP Basic (RFC 6749 §5.2, `invalid_client`).
    Basic,
    /// A bearer token (RFC 6750 §3). `with_error` puts the error code and description in the
    /// challenge; a request that sent no token at all gets the bare challenge (§3.1).
    Bearer { with_error: bool },
    /// A DPoP-bound token (RFC 9449 §7.1): the error code and description, and the proof
    /// algorithms accepted.
    DPoP,
}

#[derive(Debug)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    /// Members beside `error` and `error_description` that name a state and its reason (an
    /// app's access state, a capability's state), so that a refusal is never just a code.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// The status when it is not the code's own (a bearer error's 401 or 403).
    status: Option<StatusCode>,
    /// `WWW-Authenticate`, when the error asks for credentials.
    challenge: Option<Challenge>,
    /// A `DPoP-Nonce` to send with the error (RFC 9449 §8).
    dpop_nonce: Option<String>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            extra: serde_json::Map::new(),
            status: None,
            challenge: (code == ErrorCode::InvalidClient).then_some(Challenge::Basic),
            dpop_nonce: None,
        }
    }

    /// A failure at a resource for a DPoP request (RFC 9449 §7.1): 401 with a
    /// `WWW-Authenticate: DPoP` challenge naming `code` (`invalid_token`,
    /// `invalid_dpop_proof` or `use_dpop_nonce`).
    pub fn dpop(code: ErrorCode, description: &str) -> Self {
        Self {
            status: Some(StatusCode::UNAUTHORIZED),
            challenge: Some(Challenge::DPoP),
            ..Self::new(code, description)
        }
    }

    /// The same refusal for a request made with the DPoP scheme (RFC 9449 §7.1): a bearer
    /// challenge that names an error becomes a DPoP one.
    pub fn for_dpop(mut self) -> Self {
        if self.challenge == Some(Challenge::Bearer { with_error: true }) {
            self.challenge = Some(Challenge::DPoP);
        }
        self
    }

    /// Sends `nonce` in the `DPoP-Nonce` header of the answer.
    pub fn with_dpop_nonce(mut self, nonce: String) -> Self {
        self.dpop_nonce = Some(nonce);
        self
    }

    /// A bearer-token failure (RFC 6750 §3): `status`, and a `WWW-Authenticate: Bearer`
    /// challenge naming `code`, if any. Without a code the body says `invalid_request` and the
    /// challenge is bare (no token was sent, or the server failed).
    pub fn bearer(status: StatusCode, code: Option<ErrorCode>, description: &str) -> Self {
        Self {
            status: Some(status),
            challenge: Some(Challenge::Bearer {
                with_error: code.is_some(),
            }),
            ..Self::new(code.unwrap_or(ErrorCode::InvalidRequest), description)
        }
    }

    /// 401 `invalid_token` with its bearer challenge.
    pub fn invalid_token(description: &str) -> Self {
        Self::bearer(
            StatusCode::UNAUTHORIZED,
            Some(ErrorCode::InvalidToken),
            description,
        )
    }

    /// Adds a member to the error response.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }

    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }

    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }

    pub fn server_error(e: impl std::fmt::Debug) -> Self {
        tracing::error!(error = ?e, "internal error at an OAuth endpoint");
        Self::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or(match self.code {
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        })
    }

    fn challenge_header(&self) -> Option<HeaderValue> {
        match self.challenge? {
            Challenge::Basic => Some(HeaderValue::from_static(
                "Basic realm=\"onyx-id\", charset=\"UTF-8\"",
            )),
            Challenge::Bearer { with_error: false } => {
                Some(HeaderValue::from_static("Bearer realm=\"onyx-id\""))
            }
            Challenge::Bearer { with_error: true } => HeaderValue::from_str(&format!(
                "Bearer realm=\"onyx-id\", error=\"{}\", error_description=\"{}\"",
                self.code.as_str(),
                self.description
            ))
            .ok(),
            Challenge::DPoP => HeaderValue::from_str(&format!(
                "DPoP algs=\"{}\", error=\"{}\", error_description=\"{}\"",
                super::dpop::ALGS.join(" "),
                self.code.as_str(),
                self.description
            ))
            .ok(),
        }
    }
}

impl From<sqlx::Error> for OAuthError {
    fn from(e: sqlx::Error) -> Self {
        Self::server_error(e)
    }
}

impl From<anyhow::Error> for OAuthError {
    fn from(e: anyhow::Error) -> Self {
        Self::server_error(e)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let challenge = self.challenge_header();
        let bearer = matches!(
            self.challenge,
            Some(Challenge::Bearer { .. } | Challenge::DPoP)
        );
        let mut res = crate::error::json_error_response(
            self.status(),
            self.code.as_str(),
            &self.description,
            self.extra,
        );
        let h = res.headers_mut();
        // RFC 6749 §5.1 asks the token endpoint's answers for `Pragma: no-cache` too; the
        // bearer errors of RFC 6750 carry `no-store` only.
        if !bearer {
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        }
        if let Some(v) = challenge {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        if let Some(v) = self.dpop_nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
            h.insert(super::dpop::NONCE_HEADER, v);
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_print_their_rfc_names() {
        use strum::IntoEnumIterator;
        for code in ErrorCode::iter() {
            assert_eq!(code.as_str().parse::<ErrorCode>().ok(), Some(code));
        }
        assert_eq!(
            ErrorCode::RequestUriNotSupported.as_str(),
            "request_uri_not_supported"
        );
        assert_eq!(ErrorCode::InvalidTarget.to_string(), "invalid_target");
    }

    #[test]
    fn a_bearer_error_carries_its_challenge_and_no_pragma() {
        let res = OAuthError::invalid_token("the access token has expired").into_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let h = res.headers();
        assert_eq!(
            h[header::WWW_AUTHENTICATE],
            "Bearer realm=\"onyx-id\", error=\"invalid_token\", error_description=\"the access token has expired\""
        );
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert!(h.get(header::PRAGMA).is_none());
        let bare = OAuthError::bearer(StatusCode::UNAUTHORIZED, None, "a token is required");
        assert_eq!(bare.code, ErrorCode::InvalidRequest);
        assert_eq!(
            bare.into_response().headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"onyx-id\""
        );
        let client = OAuthError::invalid_client("unknown client").into_response();
        assert_eq!(client.status(), StatusCode::UNAUTHORIZED);
        assert!(
            client.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Basic ")
        );
        assert_eq!(client.headers()[header::PRAGMA], "no-cache");
    }
}
