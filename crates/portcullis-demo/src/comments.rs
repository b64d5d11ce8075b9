//! Comments as pages and the API show them: the Markdown as written, and the HTML the
//! sanitizer makes of it.
//!
//! Only the source is stored. The HTML is rendered on every read with the sanitizer's
//! current policy, so a stricter policy applies to old comments at once and no HTML
//! made under an older one is ever served as trusted.

use portcullis::error::Error;
use portcullis::sanitize::{SafeHtml, Sanitizer};
use serde::Serialize;

use crate::db::Comment;

/// A comment with its sanitised HTML.
#[derive(Debug, Clone, Serialize)]
pub struct RenderedComment {
    /// The comment's id.
    pub id: i64,
    /// Who wrote it.
    pub username: String,
    /// The Markdown, as written.
    pub body: String,
    /// The sanitised HTML pages show.
    pub body_html: SafeHtml,
    /// When, RFC 3339.
    pub created_at: String,
}

impl RenderedComment {
    /// Renders `comment` with `sanitizer`. A stored body the policy now refuses (too
    /// large or too deeply nested once rendered) is shown as escaped text.
    pub fn new(comment: Comment, sanitizer: &Sanitizer) -> Self {
        let body_html = sanitizer
            .markdown(&comment.body)
            .unwrap_or_else(|_| SafeHtml::escape(&comment.body));
        Self {
            id: comment.id,
            username: comment.username,
            body: comment.body,
            body_html,
            created_at: comment.created_at,
        }
    }

    /// Renders each of `comments`.
    pub fn all(comments: Vec<Comment>, sanitizer: &Sanitizer) -> Vec<Self> {
        comments
            .into_iter()
            .map(|comment| Self::new(comment, sanitizer))
            .collect()
    }
}

/// Refuses a new comment whose Markdown the sanitizer would not render, so that what
/// is stored can be shown.
pub fn check_renders(body: &str, sanitizer: &Sanitizer) -> Result<(), Error> {
    sanitizer
        .markdown(body)
        .map(drop)
        .map_err(|e| Error::bad_request(format!("This comment cannot be shown: {e}.")))
}
