//! The one-call secure preset: every layer of the response side, in the right order.
//!
//! [`SecureStack::apply`] wraps a `Router` in, from the outside in:
//!
//! 1. a fresh request id (`x-request-id`, also on the response);
//! 2. `Authorization`, `Cookie` and `Set-Cookie` marked sensitive;
//! 3. [`crate::client_ip`]: who is asking, believing forwarding headers from trusted
//!    proxies only; a request without its socket's peer address is refused (`500`
//!    `client_address_unknown`, logged once as an error) rather than counted as
//!    everyone's, so serve the app with [`crate::serve`];
//! 4. the request's span, carrying its id, method, path and client address (never
//!    the query, headers or body), and one access line when the response is ready
//!    (target `portcullis::access`: `INFO`, or `ERROR` for a 5xx, with `status` and
//!    `latency_us`);
//! 5. [`crate::headers`]: the secure headers and a CSP nonce on every response;
//! 6. when configured, [`crate::cors`]: preflights are answered here, before rate
//!    limits, sessions and CSRF, and still get the secure headers;
//! 7. [`crate::error`]: uniform error bodies, JSON under `/api` or when asked, HTML
//!    elsewhere;
//! 8. [`crate::hosts`]: `400` for a `Host` the app does not serve (by default only the
//!    loopback names: set [`SecureStack::allowed_hosts`] before deploying);
//! 9. [`crate::https`]: the redirect to HTTPS (outside development);
//! 10. a time limit on the whole request, body included (a client that trickles its
//!     body gets 408), and a body-size limit (1 MiB by default; larger gets 413);
//! 11. caught panics (a generic 500, the panic logged with the request id);
//! 12. when configured, [`crate::ratelimit`], then [`crate::session`] and then
//!     [`crate::csrf`].
//!
//! Wiring these by hand is where apps go wrong (headers missing on error pages, panics
//! answered without headers, the redirect trusting a spoofed `X-Forwarded-Proto`), so
//! Portcullis ships the order as one piece.
//!
//! ```
//! use axum::{routing::get, Router};
//! use portcullis::stack::SecureStack;
//!
//! let app: Router = Router::new().route("/", get(|| async { "hello" }));
//! let app = SecureStack::default()
//!     .without_https_redirect() // plain HTTP on loopback, for this example
//!     .apply(app)
//!     .unwrap();
//! // Then `portcullis::serve::serve(listener, app, ServeConfig::default(), shutdown)`,
//! // which gives every request its peer address.
//! ```
//!
//! | file | what it holds |
//! |---|---|
//! | `builder.rs` | [`SecureStack`]: every layer's settings, secure by default |
//! | `access.rs` | the request span and the access line (target `portcullis::access`) |
//! | `apply.rs` | [`SecureStack::apply`]: the checks, then the layers in their order |
//! | `error.rs` | [`StackError`]: each part's configuration error, and the mistakes of putting them together |

mod access;
mod apply;
mod builder;
mod error;

pub use builder::SecureStack;
pub use error::StackError;

pub use crate::body::DEFAULT_BODY_LIMIT;
