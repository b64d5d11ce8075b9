//! Content Security Policy: a typed builder, per-request nonces and a report collector.
//!
//! The default policy allows only scripts that carry this request's nonce (and what
//! they load, through `'strict-dynamic'`), so an injected `<script>` does not run even
//! when an escaping mistake lets it into a page:
//!
//! ```text
//! default-src 'self'; script-src 'nonce-…' 'strict-dynamic'; style-src 'self' 'nonce-…';
//! object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self';
//! img-src 'self' data:
//! ```
//!
//! plus `upgrade-insecure-requests` on HTTPS responses. The policy is compiled once into
//! static segments; each page only splices in its fresh nonce. Responses that are no
//! page (JSON, text, images, empty redirects) get a stricter policy built once and no
//! nonce: `default-src 'none'` with the policy's `frame-ancestors` and report
//! directives ([`CompiledCsp::render_strict`]).
//!
//! Per-request nonces wired into templates are something no crate does, so Portcullis
//! writes them itself (the random bytes come from the OS through `getrandom`).
//!
//! ```
//! use portcullis::csp::{ContentSecurityPolicy, Directive, Source};
//!
//! let policy = ContentSecurityPolicy::default()
//!     .directive(Directive::ImgSrc, [Source::SelfOrigin, Source::host("https://img.example.com")]);
//! let compiled = policy.compile().unwrap();
//! let header = compiled.render(&portcullis::csp::CspNonce::generate(), false);
//! assert!(header.contains("img-src 'self' https://img.example.com"));
//! assert!(!header.contains("unsafe-inline"));
//! ```
//!
//! | file | what it holds |
//! |---|---|
//! | `policy.rs` | [`ContentSecurityPolicy`], its [`Directive`]s and [`Source`]s, their validation ([`CspError`]) and the [`CompiledCsp`] each response renders |
//! | `nonce.rs` | [`CspNonce`], made for a request when first asked for, and its extractor |
//! | `report.rs` | [`report_collector`]: the violation-report endpoint, its [`ReportCollectorConfig`] and its per-client rate limit |

mod nonce;
mod policy;
mod report;

pub use nonce::CspNonce;
pub(crate) use nonce::NonceSlot;
pub use policy::{
    CompiledCsp, ContentSecurityPolicy, CspError, Directive, Source, DEFAULT_REPORT_PATH,
    REPORT_GROUP,
};
pub use report::{report_collector, ReportCollectorConfig};
