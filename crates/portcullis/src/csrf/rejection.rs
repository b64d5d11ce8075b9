//! Why a request was refused, and how each refusal is answered and logged.

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsrfRejection {
    /// No token in the form or the header.
    #[error("The form is missing its security token. Reload the page and try again.")]
    Missing,
    /// A token that is forged, altered, or from another session.
    #[error("The form's security token is not valid. Reload the page and try again.")]
    Invalid,
    /// A token older than its lifetime, or from a session that has ended.
    #[error("The form has expired. Reload the page and try again.")]
    Expired,
    /// Sent from another site.
    #[error("This request came from another site and was refused.")]
    OriginMismatch,
}

crate::error::security_rejection!(CsrfRejection, event = "csrf_rejected", {
    Missing => (FORBIDDEN, "csrf_missing"),
    Invalid => (FORBIDDEN, "csrf_invalid"),
    Expired => (FORBIDDEN, "csrf_expired"),
    OriginMismatch => (FORBIDDEN, "csrf_origin"),
});
