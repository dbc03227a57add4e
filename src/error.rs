//! `AppError`: failures of the pages. Internal causes (database, I/O) are logged here and never
//! shown; people get a readable page.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::web::error_page;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request cannot be served as sent; the message is for the person.
    #[error("{title}: {message}")]
    BadRequest {
        title: &'static str,
        message: String,
    },
    /// Nothing here (or nothing this person may see): title and message.
    #[error("{0}: {1}")]
    NotFound(&'static str, &'static str),
    #[error("too many attempts")]
    TooManyRequests,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn bad_request(title: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            title,
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            Self::BadRequest { title, message } => {
                error_page(StatusCode::BAD_REQUEST, title, &message)
            }
            Self::NotFound(title, message) => error_page(StatusCode::NOT_FOUND, title, message),
            Self::TooManyRequests => error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                "Too many sign-in attempts. Wait a few minutes and try again.",
            ),
            Self::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Something went wrong on our side. Please try again in a moment.",
                )
            }
        }
    }
}
