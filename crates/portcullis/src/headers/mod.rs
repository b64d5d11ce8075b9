//! The secure response headers, on every response.
//!
//! [`SecureHeadersLayer`] puts these on pages, JSON, redirects, 404s, 413s, errors and
//! caught panics alike (install it outside the error and panic layers, as
//! [`crate::stack`] does):
//!
//! | header | default |
//! |---|---|
//! | `Content-Security-Policy` | pages: the nonce policy of [`crate::csp`], fresh nonce per response; other responses: `default-src 'none'` and the policy's `frame-ancestors` |
//! | `X-Frame-Options` | `DENY` |
//! | `X-Content-Type-Options` | `nosniff` |
//! | `Referrer-Policy` | `strict-origin-when-cross-origin` |
//! | `Permissions-Policy` | camera, microphone, geolocation, payment, usb, browsing-topics … denied |
//! | `Cross-Origin-Opener-Policy` | `same-origin` |
//! | `Cross-Origin-Resource-Policy` | `same-origin` |
//! | `X-XSS-Protection` | `0` (the old filter caused leaks; CSP replaces it) |
//! | `X-Permitted-Cross-Domain-Policies` | `none` |
//! | `Origin-Agent-Cluster` | `?1` |
//! | `Strict-Transport-Security` | `max-age=63072000; includeSubDomains`, HTTPS responses only |
//!
//! and removes `Server` and `X-Powered-By`. Every value is validated when the layer is
//! built; all of them but a page's policy are encoded once, so a page costs one nonce
//! and one string for its policy, any other response only a handful of header-map
//! inserts.
//!
//! Pages (`text/html`, `application/xhtml+xml`) get the whole policy with this
//! request's nonce, as do SVG and JavaScript responses, which a browser may run as a
//! document or a worker. Every other response (JSON, text, images, files, responses
//! without a body) gets a stricter policy without a nonce, since nothing in it is
//! meant to run or load anything: `default-src 'none'`, the policy's
//! `frame-ancestors` and its report directives
//! ([`CompiledCsp::render_strict`](crate::csp::CompiledCsp::render_strict)).
//!
//! A header the handler already set is kept: a handler that serves a download with
//! `Content-Security-Policy: sandbox` means it, and one that serves a document of
//! another type meant to be shown (a PDF, say) sets the policy it needs.
//!
//! ```
//! use portcullis::headers::{RouteHeaders, SecureHeadersConfig};
//!
//! let layer = SecureHeadersConfig::default()
//!     // Let one page be framed by one partner, and nobody else.
//!     .route("/embed", RouteHeaders::default().allow_framing_by("https://partner.example"))
//!     .layer()
//!     .unwrap();
//! let app: axum::Router = axum::Router::new().layer(layer);
//! ```
//!
//! | file | what it holds |
//! |---|---|
//! | `config.rs` | [`SecureHeadersConfig`] with [`FrameOptions`] and [`Hsts`], validated into the header sets when the layer is built ([`HeadersError`]) |
//! | `route.rs` | [`RouteHeaders`]: other headers for some paths, and how a path pattern matches |
//! | `layer.rs` | [`SecureHeadersLayer`], its service [`SecureHeaders`] and its future [`SecureHeadersFuture`]: the encoded header sets, applied to each response |

mod config;
mod layer;
mod route;

pub use config::{
    FrameOptions, HeadersError, Hsts, SecureHeadersConfig, DEFAULT_PERMISSIONS_POLICY,
};
pub use layer::{SecureHeaders, SecureHeadersFuture, SecureHeadersLayer};
pub use route::RouteHeaders;
