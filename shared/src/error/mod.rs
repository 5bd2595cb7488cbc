//! The error every server function returns, shared by the server and the browser.
//!
//! Policy (kept in one place so every layer agrees):
//! - Each error carries a stable, machine-readable [`ErrorCode`]; clients branch on the code,
//!   never on the message, so messages may be reworded freely.
//! - The HTTP status is derived from the code alone ([`ErrorCode::http_status`]); the host
//!   applies it to every server-function error response, so no function sets statuses by hand.
//! - Validation failures are 4xx and name the field they belong to, so the UI can show the
//!   message beside that field. They are expected and never logged as errors.
//! - Internal failures carry a generic message: details go to the server log (once, with the
//!   request ID), never to the client.

use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

#[cfg(feature = "server")]
mod database;
#[cfg(feature = "server")]
pub use database::query_failed;

/// A stable, machine-readable error code. Serialised in `snake_case`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// One or more fields failed validation (422).
    Validation,
    /// The request could not be read: missing fields, wrong types, bad encoding (400).
    BadRequest,
    /// The request needs a signed-in account (401).
    Unauthorized,
    /// The request is not allowed, e.g. it came from another site (403).
    Forbidden,
    /// The thing asked for does not exist (404).
    NotFound,
    /// The request body is larger than this route accepts (413).
    PayloadTooLarge,
    /// The file's type is not one we accept, or not the one declared (415).
    UnsupportedMediaType,
    /// The request's headers are larger than the server accepts (431).
    HeadersTooLarge,
    /// Too many requests; `Retry-After` says when to try again (429).
    RateLimited,
    /// The account's tier allowance (generations per day, storage) is used up (429).
    QuotaExceeded,
    /// A dependency (the database, storage) is unavailable right now (503).
    Unavailable,
    /// The browser could not reach the server; never produced by the server.
    Network,
    /// Anything else: a bug or an unexpected failure (500).
    Internal,
}

impl ErrorCode {
    /// The HTTP status that goes with this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Validation => 422,
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::HeadersTooLarge => 431,
            ErrorCode::RateLimited | ErrorCode::QuotaExceeded => 429,
            ErrorCode::Unavailable => 503,
            ErrorCode::Network | ErrorCode::Internal => 500,
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Validation => "validation",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::HeadersTooLarge => "headers_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Network => "network",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A validation failure tied to one form field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The form field's name, as in the HTML form (`prompt`, `style`).
    pub field: String,
    /// A stable code for the rule that failed (`too_short`, `control_chars`, ...).
    pub code: String,
    /// A sentence for the person filling in the form.
    pub message: String,
}

impl FieldError {
    /// A field error for `field`, failing rule `code`, explained by `message`.
    pub fn new(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// The error type of every SocialCraft server function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// What kind of failure this is; decides the HTTP status.
    pub code: ErrorCode,
    /// A sentence safe to show to the user.
    pub message: String,
    /// Per-field validation failures (empty unless `code` is `Validation`).
    #[serde(default)]
    pub fields: Vec<FieldError>,
}

impl AppError {
    /// An error of `code` with a user-facing `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// A validation error carrying the failing fields.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        let message = match fields.as_slice() {
            [only] => only.message.clone(),
            _ => "Some fields need attention.".to_owned(),
        };
        Self {
            code: ErrorCode::Validation,
            message,
            fields,
        }
    }

    /// A generic internal error; the details belong in the server log, not here.
    pub fn internal() -> Self {
        Self::new(
            ErrorCode::Internal,
            "Something went wrong on our side. Please try again.",
        )
    }

    /// The dependency the request needed is down.
    pub fn unavailable() -> Self {
        Self::new(
            ErrorCode::Unavailable,
            "SocialCraft is briefly unavailable. Please try again in a moment.",
        )
    }

    /// The thing asked for does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// The message for `field`, if validation failed on it.
    pub fn field_message(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.field == field)
            .map(|f| f.message.as_str())
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // The request body or query could not be turned into the function's arguments.
            ServerFnErrorErr::Args(_)
            | ServerFnErrorErr::Deserialization(_)
            | ServerFnErrorErr::MissingArg(_) => AppError::new(
                ErrorCode::BadRequest,
                "The request could not be read. Reload the page and try again.",
            ),
            // Raised in the browser when the fetch itself fails.
            ServerFnErrorErr::Request(_) => AppError::new(
                ErrorCode::Network,
                "Could not reach SocialCraft. Check your connection and try again.",
            ),
            _ => AppError::internal(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_statuses_and_wire_names() {
        assert_eq!(ErrorCode::Validation.http_status(), 422);
        assert_eq!(ErrorCode::BadRequest.http_status(), 400);
        assert_eq!(ErrorCode::Unavailable.http_status(), 503);
        let json = serde_json_like(&AppError::validation(vec![FieldError::new(
            "prompt",
            "too_short",
            "Too short",
        )]));
        assert!(json.contains("\"code\":\"validation\""), "{json}");
    }

    #[test]
    fn bad_arguments_become_bad_request() {
        let e = AppError::from_server_fn_error(ServerFnErrorErr::Args("missing".into()));
        assert_eq!(e.code, ErrorCode::BadRequest);
    }

    #[test]
    fn single_field_error_uses_its_message() {
        let e = AppError::validation(vec![FieldError::new("style", "unknown", "Pick a style")]);
        assert_eq!(e.message, "Pick a style");
        assert_eq!(e.field_message("style"), Some("Pick a style"));
        assert_eq!(e.field_message("prompt"), None);
    }

    fn serde_json_like(e: &AppError) -> String {
        let bytes = e.ser();
        String::from_utf8(bytes.to_vec()).unwrap_or_default()
    }
}
