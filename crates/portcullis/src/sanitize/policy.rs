//! The allow-list, its builder, and the two ways in: HTML and Markdown.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use ammonia::{Builder, Url, UrlRelative};

use super::bounded::{BoundedBytes, BoundedText};
use super::safe_html::SafeHtml;
use super::work;
use crate::origin::Origin;

/// The default bound on the text a sanitizer accepts: 64 KiB.
pub const DEFAULT_MAX_INPUT_BYTES: usize = 64 * 1024;
/// The default bound on the HTML a sanitizer produces: 256 KiB.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 256 * 1024;

/// Elements a user's rich text may use: text structure, emphasis, lists, quotes,
/// code, headings, tables and links. No forms, frames, media, SVG or MathML.
const TAGS: &[&str] = &[
    "a",
    "b",
    "blockquote",
    "br",
    "code",
    "dd",
    "del",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "ins",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
];

/// Elements removed with everything inside them: their content is code, styling or
/// another document, never text a reader should see.
const REMOVED_WITH_CONTENT: &[&str] = &[
    "script", "style", "svg", "math", "template", "noscript", "iframe", "object", "textarea",
    "title", "xmp", "noembed", "noframes",
];

/// Sanitising passes before the output must read back as itself: the first cleans,
/// the second checks (or settles what the parser repaired), the third checks that.
const PASSES: usize = 3;

/// Every link leaves the site without passing it on or vouching for it.
const LINK_REL: &str = "nofollow noopener noreferrer ugc";

/// Markdown extensions: tables and strikethrough. Footnotes, heading attributes and
/// task lists are off: they make `id`s and form controls.
const MARKDOWN: pulldown_cmark::Options =
    pulldown_cmark::Options::ENABLE_TABLES.union(pulldown_cmark::Options::ENABLE_STRIKETHROUGH);

/// A sanitizer configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SanitizerConfigError {
    /// The input limit is zero.
    #[error("max_input_bytes must be at least 1")]
    ZeroInputLimit,
    /// The output limit is below the input limit, so inputs within bounds would fail.
    #[error(
        "max_output_bytes ({output}) is below max_input_bytes ({input}); sanitised HTML is \
         usually larger than its source, so allow at least as much output as input"
    )]
    OutputBelowInput {
        /// The input limit.
        input: usize,
        /// The output limit.
        output: usize,
    },
    /// An image origin is not an `https://` origin.
    #[error("image origin {origin:?}: {reason}")]
    ImageOrigin {
        /// The origin as given.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Text the sanitizer refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SanitizeError {
    /// The text is longer than the sanitizer's input limit.
    #[error("the text is {len} bytes; at most {limit} are accepted")]
    InputTooLarge {
        /// The text's length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The markup is nested or tangled so that parsing it would cost more than a
    /// bound linear in its length (see [the module](super)).
    #[error("the text is nested too deeply to be rendered")]
    TooComplex,
    /// The sanitised markup did not read back as itself after repeated passes.
    #[error("the text's markup could not be made stable")]
    Unstable,
    /// The text renders to more HTML than the output limit.
    #[error("the text renders to more than {limit} bytes of HTML")]
    OutputTooLarge {
        /// The limit.
        limit: usize,
    },
}

/// Builds a [`Sanitizer`]; every setting is checked by [`SanitizerBuilder::build`].
///
/// ```
/// use portcullis::sanitize::Sanitizer;
///
/// let sanitizer = Sanitizer::builder()
///     .allow_relative_urls()
///     .allow_images_from("https://images.example")
///     .max_input_bytes(16 * 1024)
///     .build()
///     .unwrap();
/// let html = sanitizer
///     .clean("<img src=https://images.example/a.png><img src=https://tracker.example/p.gif>")
///     .unwrap();
/// assert_eq!(html.as_str(), "<img src=\"https://images.example/a.png\"><img>");
/// ```
#[derive(Debug, Clone)]
pub struct SanitizerBuilder {
    relative_urls: bool,
    image_origins: Vec<String>,
    max_input_bytes: usize,
    max_output_bytes: usize,
}

impl Default for SanitizerBuilder {
    fn default() -> Self {
        Self {
            relative_urls: false,
            image_origins: Vec::new(),
            max_input_bytes: DEFAULT_MAX_INPUT_BYTES,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

impl SanitizerBuilder {
    /// Keeps relative link URLs (`/docs`, `../a`, `#top`), which point into the site
    /// that renders them. Off by default: only `http:`, `https:` and `mailto:` links.
    ///
    /// ```
    /// use portcullis::sanitize::Sanitizer;
    ///
    /// let html = Sanitizer::builder().allow_relative_urls().build().unwrap().clean("<a href=/docs>d</a>").unwrap();
    /// assert!(html.as_str().contains("href=\"/docs\""));
    /// ```
    pub fn allow_relative_urls(mut self) -> Self {
        self.relative_urls = true;
        self
    }

    /// Allows `<img>` whose `src` is an absolute URL on `origin` (`https://…`, no path).
    /// Images are off until the first call; an image from any other origin loses its
    /// `src`, so a comment cannot make readers' browsers call a third party.
    ///
    /// ```
    /// use portcullis::sanitize::Sanitizer;
    ///
    /// assert!(Sanitizer::builder().allow_images_from("http://images.example").build().is_err());
    /// ```
    pub fn allow_images_from(mut self, origin: impl Into<String>) -> Self {
        self.image_origins.push(origin.into());
        self
    }

    /// The longest text accepted, in bytes ([`DEFAULT_MAX_INPUT_BYTES`] by default).
    pub fn max_input_bytes(mut self, bytes: usize) -> Self {
        self.max_input_bytes = bytes;
        self
    }

    /// The most HTML produced, in bytes ([`DEFAULT_MAX_OUTPUT_BYTES`] by default); it
    /// bounds the Markdown's HTML and the sanitised result alike.
    pub fn max_output_bytes(mut self, bytes: usize) -> Self {
        self.max_output_bytes = bytes;
        self
    }

    /// Checks the settings and builds the sanitizer.
    pub fn build(self) -> Result<Sanitizer, SanitizerConfigError> {
        if self.max_input_bytes == 0 {
            return Err(SanitizerConfigError::ZeroInputLimit);
        }
        if self.max_output_bytes < self.max_input_bytes {
            return Err(SanitizerConfigError::OutputBelowInput {
                input: self.max_input_bytes,
                output: self.max_output_bytes,
            });
        }
        let mut image_origins = HashSet::new();
        for origin in &self.image_origins {
            let parsed =
                Origin::parse_web(origin).map_err(|e| SanitizerConfigError::ImageOrigin {
                    origin: origin.clone(),
                    reason: e.to_string(),
                })?;
            if parsed.scheme() != "https" {
                return Err(SanitizerConfigError::ImageOrigin {
                    origin: origin.clone(),
                    reason: "images must come from an https:// origin: a plain-HTTP image \
                             can be altered on the way and is mixed content on an HTTPS page"
                        .to_owned(),
                });
            }
            image_origins.insert(parsed.as_str().to_owned());
        }
        let html = allow_list(self.relative_urls, image_origins);
        Ok(Sanitizer {
            inner: Arc::new(Inner {
                html,
                relative_urls: self.relative_urls,
                images: !self.image_origins.is_empty(),
                max_input_bytes: self.max_input_bytes,
                max_output_bytes: self.max_output_bytes,
            }),
        })
    }
}

fn allow_list(relative_urls: bool, image_origins: HashSet<String>) -> Builder<'static> {
    let mut tags: HashSet<&'static str> = TAGS.iter().copied().collect();
    let mut attributes: HashMap<&'static str, HashSet<&'static str>> = HashMap::from([
        ("a", HashSet::from(["href", "title"])),
        ("ol", HashSet::from(["start"])),
    ]);
    let images = !image_origins.is_empty();
    if images {
        tags.insert("img");
        attributes.insert("img", HashSet::from(["src", "alt", "title"]));
    }
    let mut html = Builder::empty();
    html.tags(tags)
        .clean_content_tags(REMOVED_WITH_CONTENT.iter().copied().collect())
        .tag_attributes(attributes)
        .generic_attributes(HashSet::new())
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(if relative_urls {
            UrlRelative::PassThrough
        } else {
            UrlRelative::Deny
        })
        .link_rel(Some(LINK_REL))
        .strip_comments(true)
        .attribute_filter(move |element, attribute, value| {
            if (element, attribute) == ("img", "src") {
                // Only absolute URLs on an allowed origin: a relative image would make
                // every reader's browser send a GET to this site, cookies included.
                let url = Url::parse(value).ok()?;
                return image_origins
                    .contains(&url.origin().ascii_serialization())
                    .then(|| value.into());
            }
            Some(value.into())
        });
    html
}

/// The HTML sanitizer for user rich text, on ammonia's html5ever parser: what it
/// keeps is an allow-list (see [the module](super)), whatever the input. Cheap to
/// clone.
///
/// ```
/// use portcullis::sanitize::Sanitizer;
///
/// let sanitizer = Sanitizer::default();
/// let html = sanitizer.clean("<a href=\"javascript:alert(1)\" onclick=x>hi</a><script>x()</script>").unwrap();
/// assert_eq!(html.as_str(), "<a rel=\"nofollow noopener noreferrer ugc\">hi</a>");
/// ```
#[derive(Clone)]
pub struct Sanitizer {
    inner: Arc<Inner>,
}

struct Inner {
    html: Builder<'static>,
    relative_urls: bool,
    images: bool,
    max_input_bytes: usize,
    max_output_bytes: usize,
}

impl fmt::Debug for Sanitizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sanitizer")
            .field("relative_urls", &self.inner.relative_urls)
            .field("images", &self.inner.images)
            .field("max_input_bytes", &self.inner.max_input_bytes)
            .field("max_output_bytes", &self.inner.max_output_bytes)
            .finish_non_exhaustive()
    }
}

impl Default for Sanitizer {
    /// The strict policy: no images, no relative URLs, the default size bounds.
    fn default() -> Self {
        SanitizerBuilder::default()
            .build()
            .expect("the default sanitizer settings are valid")
    }
}

impl Sanitizer {
    /// A builder starting from the strict default policy.
    pub fn builder() -> SanitizerBuilder {
        SanitizerBuilder::default()
    }

    /// Sanitises an HTML fragment.
    ///
    /// ```
    /// use portcullis::sanitize::Sanitizer;
    ///
    /// let html = Sanitizer::default().clean("<p style=\"color:red\" id=cookie>ok</p>").unwrap();
    /// assert_eq!(html.as_str(), "<p>ok</p>");
    /// ```
    pub fn clean(&self, html: &str) -> Result<SafeHtml, SanitizeError> {
        self.check_input(html)?;
        self.sanitize(html, html.len())
    }

    /// Renders Markdown (CommonMark with tables and strikethrough) and sanitises the
    /// result: HTML written inside the Markdown goes through the same allow-list.
    ///
    /// ```
    /// use portcullis::sanitize::Sanitizer;
    ///
    /// let html = Sanitizer::default().markdown("[x](javascript:alert(1)) *ok*").unwrap();
    /// assert_eq!(html.as_str(), "<p><a rel=\"nofollow noopener noreferrer ugc\">x</a> <em>ok</em></p>\n");
    /// ```
    pub fn markdown(&self, markdown: &str) -> Result<SafeHtml, SanitizeError> {
        self.check_input(markdown)?;
        let limit = self.inner.max_output_bytes;
        let mut html = BoundedText::new(limit);
        let parser = pulldown_cmark::Parser::new_ext(markdown, MARKDOWN);
        if pulldown_cmark::html::write_html_fmt(&mut html, parser).is_err() {
            return Err(SanitizeError::OutputTooLarge { limit });
        }
        // The parsing budget follows what the user wrote, not the HTML it became:
        // nested Markdown quotes turn one byte into thirteen.
        self.sanitize(&html.into_string(), markdown.len())
    }

    fn check_input(&self, text: &str) -> Result<(), SanitizeError> {
        let limit = self.inner.max_input_bytes;
        if text.len() > limit {
            return Err(SanitizeError::InputTooLarge {
                len: text.len(),
                limit,
            });
        }
        Ok(())
    }

    /// Sanitises until the output reads back as itself: what is returned is what a
    /// browser will build from it. Removing a disallowed element keeps its children,
    /// and the parser's repairs around it can leave a structure no parser builds (a
    /// `<p>` inside a `<p>` from `<p><button>x</p>`); the next pass settles it.
    fn sanitize(&self, html: &str, source_len: usize) -> Result<SafeHtml, SanitizeError> {
        let mut input = std::borrow::Cow::Borrowed(html);
        // The first pass is budgeted by what the user wrote; the later ones read this
        // sanitizer's own output, which may be longer but is well formed.
        let mut budget = source_len;
        for _ in 0..PASSES {
            let output = self.sanitize_once(&input, budget)?;
            budget = source_len.max(output.len());
            if output == *input {
                return Ok(SafeHtml::sanitized(output));
            }
            input = std::borrow::Cow::Owned(output);
        }
        Err(SanitizeError::Unstable)
    }

    fn sanitize_once(&self, html: &str, source_len: usize) -> Result<String, SanitizeError> {
        let limit = self.inner.max_output_bytes;
        if !work::within_budget(html, source_len) {
            return Err(SanitizeError::TooComplex);
        }
        let mut out = BoundedBytes::new(limit);
        if self.inner.html.clean(html).write_to(&mut out).is_err() {
            return Err(SanitizeError::OutputTooLarge { limit });
        }
        Ok(out.into_string())
    }
}
