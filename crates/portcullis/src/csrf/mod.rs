//! Cross-site request forgery: two independent lines of defence.
//!
//! 1. **Fetch metadata and `Origin`.** An unsafe request (`POST`, `PUT`, `PATCH`,
//!    `DELETE` …) whose `Sec-Fetch-Site` says `cross-site` or `same-site`, or whose
//!    `Origin` is neither the app's own origin (from [`crate::client_ip::ClientInfo`]) nor a configured
//!    trusted origin, is refused before anything else runs. Browsers send these
//!    headers and pages cannot forge them.
//! 2. **A token bound to the session.** The session keeps a random secret; every page
//!    render gets a fresh token: the secret masked with new random bytes (so the token
//!    differs on every response and compression side channels such as BREACH learn
//!    nothing, as in Django) plus an issue time, signed with the keyring's `csrf`
//!    subkey (fallback keys verify, so rotation does not break open forms). Unsafe
//!    requests must return it in the form field `csrf_token` or the `X-CSRF-Token`
//!    header.
//!
//! A urlencoded form is read up to its limit and searched pair by pair. A multipart
//! form must carry the token as its first part (a part with a `filename` never counts,
//! whatever its name); at most 16 KiB are read to find it, in time linear in the bytes
//! however the client cuts the body into chunks, and the handler then reads the same
//! bytes. A multipart boundary RFC 2046 does not allow (over 70 characters, say) is a
//! 400, and so is a body that breaks while it is read.
//!
//! Requests that carry no cookie at all and whose body is not one an HTML form can
//! send (JSON, say, or no body) pass the first line but skip the token: with no cookie
//! there is no session for a forged request to ride, so an API client that signs in
//! with a password (`POST /api/token`) or a Bearer token needs no exemption. A
//! cookie-less form post (urlencoded, multipart or `text/plain`) still needs its
//! token: that is the sign-in form, and a forged one would sign the visitor in to the
//! attacker's account. Exemptions are explicit and greppable: [`CsrfConfig::exempt`].
//!
//! Taking a [`CsrfToken`] (or calling `csrf_token()` in a template) gives the visitor
//! a session to hold the secret, signed in or not: render forms only on pages that
//! need them. The session store keeps anonymous sessions apart from signed-in ones,
//! so a flood of form views cannot push a user out.
//!
//! The layer needs the [`crate::client_ip`] layer (the app's own origin) and the
//! [`crate::session`] layer outside it; [`crate::stack::SecureStack`] refuses to build
//! with CSRF but without sessions, and installs the client-info layer itself.
//!
//! | file | what it holds |
//! |---|---|
//! | `token.rs` | the token format: mask, issue time, signature; [`CsrfMinter`], [`CsrfToken`] |
//! | `config.rs` | [`CsrfConfig`] and its validation |
//! | `form/` | finding the token in a urlencoded or multipart body, in linear time |
//! | `layer.rs` | [`CsrfLayer`]: the origin line, finding the token in a form or a header |
//! | `rejection.rs` | [`CsrfRejection`]: each refusal's status, code and log line |
//!
//! A refusal is a 403 whose code names the reason (`csrf_missing`, `csrf_invalid`,
//! `csrf_expired`, `csrf_origin`), and a `portcullis::security` warning in the log.
//!
//! Session-bound, masked tokens are something no crate does, so Portcullis writes them
//! itself; the primitives (HMAC, constant-time comparison) come from RustCrypto.
//!
//! ```
//! use std::sync::Arc;
//! use portcullis::csrf::CsrfConfig;
//! use portcullis::keys::{Keyring, SecretKey};
//!
//! let keyring = Keyring::new(SecretKey::generate(), vec![]);
//! let layer = CsrfConfig::default()
//!     .trusted_origin("https://admin.example.com")
//!     .exempt("/csp-report") // browsers post reports without a token
//!     .layer(&keyring)
//!     .unwrap();
//! ```

mod config;
mod form;
mod layer;
mod rejection;
mod token;

pub use config::{CsrfConfig, CsrfConfigError};
pub use layer::{Csrf, CsrfLayer};
pub use rejection::CsrfRejection;
pub use token::{CsrfMinter, CsrfToken};

/// The form field that carries the token.
pub const FORM_FIELD: &str = "csrf_token";
/// The header that carries the token.
pub const HEADER: &str = "x-csrf-token";

/// The token as a hidden form field, for templates.
pub fn hidden_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{FORM_FIELD}\" value=\"{}\">",
        crate::error::escape_html(token)
    )
}
