//! `SafeHtml`: markup that may be written into a page as it is.

use std::fmt;

use serde::{Serialize, Serializer};

/// HTML that is safe to write into a page unescaped: the output of a [`Sanitizer`],
/// or text escaped by [`SafeHtml::escape`]. There is no other way to make one, so a
/// `SafeHtml` in a template context is never a user's raw string.
///
/// Templates ([`crate::templates`]) render a `SafeHtml` as it is and escape every
/// other string. Serialised to JSON (an API's `body_html`) it is a plain string.
///
/// [`Sanitizer`]: super::Sanitizer
///
/// ```
/// use portcullis::sanitize::{SafeHtml, Sanitizer};
///
/// let html: SafeHtml = Sanitizer::default().markdown("**hi** <script>x()</script>").unwrap();
/// assert_eq!(html.as_str(), "<p><strong>hi</strong> </p>\n");
/// assert_eq!(SafeHtml::escape("<b>").as_str(), "&lt;b&gt;");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct SafeHtml(String);

impl SafeHtml {
    /// Sanitised markup; only the sanitizer makes these.
    pub(super) fn sanitized(html: String) -> Self {
        Self(html)
    }

    /// `text` with `& < > " '` escaped: safe in element content and in quoted
    /// attribute values.
    ///
    /// ```
    /// use portcullis::sanitize::SafeHtml;
    ///
    /// assert_eq!(SafeHtml::escape("a & \"b\"").as_str(), "a &amp; &quot;b&quot;");
    /// ```
    pub fn escape(text: &str) -> Self {
        Self(crate::error::escape_html(text))
    }

    /// The markup.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The markup, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for SafeHtml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SafeHtml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SafeHtml").field(&self.0).finish()
    }
}

impl Serialize for SafeHtml {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Inside a template context minijinja serialises into its own values: there,
        // and only there, the markup is marked safe so it is not escaped a second time.
        #[cfg(feature = "templates")]
        if minijinja::value::serializing_for_value() {
            return minijinja::Value::from_safe_string(self.0.clone()).serialize(serializer);
        }
        serializer.serialize_str(&self.0)
    }
}
