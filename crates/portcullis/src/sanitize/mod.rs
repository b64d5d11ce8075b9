//! User rich text that cannot carry a script: an allow-list HTML sanitizer, Markdown
//! rendered through it, and [`SafeHtml`], the one value templates write unescaped.
//!
//! Templates escape every string, which is the right default. When users *format*
//! their text (links, emphasis, lists, code), the HTML must be sanitised before it is
//! shown, never marked safe as it came: that is the hole `|safe` opens in Flask apps.
//! [`Sanitizer`] is built on ammonia, which parses with html5ever (the HTML5 parsing
//! algorithm browsers use), keeps what an allow-list names and serialises the tree
//! again, so what a browser parses is what was checked.
//!
//! The default allow-list, for comments and posts:
//! - **elements**: paragraphs, line breaks, rules, emphasis (`em strong b i s del ins
//!   sub sup kbd`), lists (`ul ol li dl dt dd`), `blockquote`, `code`, `pre`,
//!   headings `h1`–`h6`, tables, links. No SVG, MathML, forms, frames, media,
//!   `style` or `script`; the content of `script`, `style`, `svg`, `math`,
//!   `template`, `noscript`, `iframe` and the other raw-text elements goes with them.
//! - **attributes**: `href` and `title` on links, `start` on ordered lists. No
//!   `style`, no `id`, `name` or `class` (nothing to clobber a page's globals with),
//!   no event handlers.
//! - **URLs**: `http:`, `https:` and `mailto:` only; relative URLs are dropped unless
//!   [`SanitizerBuilder::allow_relative_urls`]. Every link gets
//!   `rel="nofollow noopener noreferrer ugc"`.
//! - **images**: off; [`SanitizerBuilder::allow_images_from`] turns them on for
//!   absolute URLs on the named `https://` origins only, so a comment cannot make its
//!   readers' browsers call a third party.
//! - **comments** are removed.
//!
//! The sanitizer does not rely on the page's Content Security Policy: the tests load
//! its output for a corpus of known XSS and mutation-XSS vectors in Chromium on a page
//! without one.
//!
//! ## Size and time
//! Input over [`SanitizerBuilder::max_input_bytes`] (64 KiB by default) is refused
//! before parsing. Output is bounded too (256 KiB by default, for the HTML that
//! Markdown produces and for the sanitised result), because a small input can expand:
//! a Markdown reference definition may be used many times, and every link gains its
//! `rel`. Both passes are linear in the input for ordinary text; html5ever's
//! tree-building rules scan the stack of open elements, so deeply nested tags cost up
//! to input × depth, which the input bound keeps small (see `BENCHMARKS.md`).
//!
//! ```
//! use portcullis::sanitize::Sanitizer;
//!
//! let sanitizer = Sanitizer::default();
//! let html = sanitizer
//!     .markdown("Hello *world*, see <https://example.com>\n\n<img src=x onerror=alert(1)>")
//!     .unwrap();
//! assert_eq!(
//!     html.as_str(),
//!     "<p>Hello <em>world</em>, see <a href=\"https://example.com\" \
//!      rel=\"nofollow noopener noreferrer ugc\">https://example.com</a></p>\n"
//! );
//! ```
//!
//! ## Coming from Flask
//! | Flask | Portcullis |
//! |---|---|
//! | `bleach.clean(text, tags=…, attributes=…)` | [`Sanitizer::clean`], allow-list set by [`SanitizerBuilder`] |
//! | `markdown.markdown(text)` then `bleach.clean` | [`Sanitizer::markdown`] (sanitised in one call) |
//! | `markupsafe.Markup(html)` | [`SafeHtml`], made only by the sanitizer or [`SafeHtml::escape`] |
//! | `{{ html \| safe }}` | pass a [`SafeHtml`]; `\|safe` on anything else is refused when the template loads |

mod bounded;
mod policy;
mod safe_html;
mod work;

pub use policy::{
    SanitizeError, Sanitizer, SanitizerBuilder, SanitizerConfigError, DEFAULT_MAX_INPUT_BYTES,
    DEFAULT_MAX_OUTPUT_BYTES,
};
pub use safe_html::SafeHtml;

#[cfg(test)]
mod tests;
