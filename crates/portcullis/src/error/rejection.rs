//! A layer missing from the app, and the answer every security rejection shares.

use axum::response::IntoResponse;

use super::Error;

/// A layer that an extractor or an inner layer needs is not installed: a mistake in
/// how the app was put together, never the client's. Answered `500` with no detail,
/// and logged with what is missing and what needs it, so the first request shows the
/// fix. [`crate::stack::SecureStack`] installs every layer its parts need; this is
/// for apps that compose layers by hand.
///
/// ```
/// use axum::response::IntoResponse;
/// use portcullis::error::MissingLayer;
///
/// let response = MissingLayer::new("CsrfToken", "the session layer").into_response();
/// assert_eq!(response.status(), 500);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{needed_by} needs {layer} outside it")]
pub struct MissingLayer {
    needed_by: &'static str,
    layer: &'static str,
}

impl MissingLayer {
    /// `needed_by` (an extractor or layer) needs `layer` installed outside it.
    pub const fn new(needed_by: &'static str, layer: &'static str) -> Self {
        Self { needed_by, layer }
    }
}

impl MissingLayer {
    fn log(&self) {
        tracing::error!(
            target: "portcullis::config",
            needed_by = self.needed_by,
            missing = self.layer,
            "{self}: install it, or build the app with SecureStack"
        );
    }
}

impl IntoResponse for MissingLayer {
    fn into_response(self) -> axum::response::Response {
        Error::from(self).into_response()
    }
}

/// For extractors that answer with an [`Error`]: logged as it is converted, then a
/// plain 500.
impl From<MissingLayer> for Error {
    fn from(missing: MissingLayer) -> Self {
        missing.log();
        Error::internal()
    }
}

/// Gives a rejection enum its answer: each variant's status and stable code, its
/// message from `Display`, and a `portcullis::security` warning naming the event and
/// the code (the request span adds who asked and where). Implements `code()`,
/// `status()` and `IntoResponse`.
#[cfg_attr(not(feature = "csrf"), allow(unused_macros))]
macro_rules! security_rejection {
    ($ty:ty, event = $event:literal, { $($variant:ident => ($status:ident, $code:literal)),+ $(,)? }) => {
        impl $ty {
            /// The stable code in the error body and the log.
            pub fn code(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                }
            }

            /// The status it is answered with.
            pub fn status(self) -> ::axum::http::StatusCode {
                match self {
                    $(Self::$variant => ::axum::http::StatusCode::$status,)+
                }
            }
        }

        impl ::axum::response::IntoResponse for $ty {
            fn into_response(self) -> ::axum::response::Response {
                ::tracing::warn!(
                    target: "portcullis::security",
                    event = $event,
                    reason = self.code(),
                    "{self}"
                );
                $crate::error::Error::new(self.status(), self.code(), self.to_string())
                    .into_response()
            }
        }
    };
}
#[cfg(feature = "csrf")]
pub(crate) use security_rejection;
