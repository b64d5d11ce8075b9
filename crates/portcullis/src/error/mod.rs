//! One error type for the whole stack, and uniform error pages.
//!
//! An [`Error`] carries a status, a stable machine-readable code and a message written
//! for the user — never a stack trace, a file path, a SQL error or a secret. It renders
//! as JSON (`{"error":{"code","message"}}`) or as an HTML page; which one is decided by
//! [`ErrorPagesLayer`], which sees the route and the `Accept` header: `/api` routes and
//! clients that ask for JSON get JSON, browsers get a page.
//!
//! The layer also rewrites error responses that the framework produced on its own —
//! unknown routes (404), wrong methods (405), body limits (413), extractor rejections
//! whose text may quote parser internals — into the same uniform bodies. A handler
//! that deliberately renders its own HTML or JSON error keeps it.
//!
//! ```
//! use axum::response::IntoResponse;
//! use portcullis::error::Error;
//!
//! let response = Error::not_found().into_response();
//! assert_eq!(response.status(), 404);
//! ```
//!
//! | file | what it holds |
//! |---|---|
//! | `response.rs` | [`Error`]: status, code and message, answered as JSON; [`ErrorDetails`] |
//! | `rejection.rs` | [`MissingLayer`], and the macro that gives each security rejection its answer |
//! | `pages.rs` | [`ErrorPagesLayer`] and its [`ErrorPages`] and [`ErrorPagesFuture`]: JSON or HTML by route and `Accept`, uniform framework errors |

mod pages;
mod rejection;
mod response;

pub use pages::{
    escape_html, panic_response, ErrorPages, ErrorPagesConfig, ErrorPagesFuture, ErrorPagesLayer,
    HtmlRenderer,
};
#[cfg(feature = "csrf")]
pub(crate) use rejection::security_rejection;
pub use rejection::MissingLayer;
pub use response::{Error, ErrorDetails};
