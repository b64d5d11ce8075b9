//! The one error type, and how it answers: JSON with a stable code, never an internal.

use std::borrow::Cow;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;

/// An error answered to the client.
///
/// ```
/// use portcullis::error::Error;
///
/// let e = Error::bad_request("the comment is empty");
/// assert_eq!(e.status(), 400);
/// assert_eq!(e.code(), "bad_request");
/// assert_eq!(e.message(), "the comment is empty");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct Error {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
    retry_after: Option<u64>,
}

impl Error {
    /// An error with any status, code and message.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400: the request is malformed; `message` says what to fix.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401: authentication is missing or failed.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: authenticated but not allowed, or a failed CSRF check.
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404, the same for "absent" and "not yours".
    pub fn not_found() -> Self {
        Self::for_status(StatusCode::NOT_FOUND)
    }

    /// 413: the body is larger than this route accepts.
    pub fn payload_too_large() -> Self {
        Self::for_status(StatusCode::PAYLOAD_TOO_LARGE)
    }

    /// 415: the body's type is not one this route accepts.
    pub fn unsupported_media_type(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::for_status(StatusCode::TOO_MANY_REQUESTS).with_retry_after(retry_after_secs)
    }

    /// 503 with `Retry-After`: a backend this request needs is unavailable.
    pub fn service_unavailable(retry_after_secs: u64) -> Self {
        Self::for_status(StatusCode::SERVICE_UNAVAILABLE).with_retry_after(retry_after_secs)
    }

    /// 500 with no detail. Log the cause before returning it.
    pub fn internal() -> Self {
        Self::for_status(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The generic error for `status`, with the uniform code and message.
    pub fn for_status(status: StatusCode) -> Self {
        let (code, message) = describe(status);
        Self::new(status, code, message)
    }

    /// Adds a `Retry-After` of `secs` seconds.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code in the JSON body.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message for the user.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body `{"error":{"code","message"}}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "error": { "code": self.code, "message": self.message } }).to_string()
    }
}

fn describe(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("bad_request", "The request could not be understood."),
        401 => ("unauthorized", "Authentication is required."),
        403 => ("forbidden", "You are not allowed to do that."),
        404 => ("not_found", "Nothing is here."),
        405 => ("method_not_allowed", "That method is not allowed here."),
        406 => (
            "not_acceptable",
            "No acceptable representation is available.",
        ),
        408 => ("request_timeout", "The request took too long to arrive."),
        409 => ("conflict", "The request conflicts with the current state."),
        411 => ("length_required", "A Content-Length is required."),
        413 => ("payload_too_large", "The request body is too large."),
        414 => ("uri_too_long", "The address is too long."),
        415 => (
            "unsupported_media_type",
            "That content type is not accepted here.",
        ),
        422 => (
            "invalid_input",
            "The request body is not valid for this route.",
        ),
        429 => (
            "rate_limited",
            "Too many requests; slow down and retry later.",
        ),
        431 => ("headers_too_large", "The request headers are too large."),
        503 => (
            "unavailable",
            "The service is temporarily unavailable; retry later.",
        ),
        504 => ("timeout", "The request took too long to process."),
        s if s >= 500 => ("internal_error", "Something went wrong on our side."),
        _ => ("error", "The request could not be completed."),
    }
}

/// The error of a response, attached as an extension so that outer layers can render
/// it for the route (JSON or HTML) without parsing the body.
#[derive(Debug, Clone)]
pub struct ErrorDetails(pub Error);

impl IntoResponse for Error {
    fn into_response(self) -> axum::response::Response {
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.to_json(),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(ErrorDetails(self));
        response
    }
}
