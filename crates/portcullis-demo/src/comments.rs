//! Comments as pages and the API show them: the Markdown as written, and the HTML the
//! sanitizer makes of it.
//!
//! Only the source is stored. The HTML is rendered on read with the sanitizer's
//! current policy (and kept in memory only), so a stricter policy applies to old
//! comments from the next start and no HTML made under an older one is ever served
//! as trusted.

use std::sync::Arc;

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

/// Renders comments with a sanitizer, keeping the HTML of recent ones in memory: a
/// page shows twenty comments and each takes a few hundred microseconds to render.
/// Nothing rendered is ever stored, so a new policy applies from the next start.
#[derive(Debug, Clone)]
pub struct CommentRenderer {
    sanitizer: Sanitizer,
    // Keyed by id, holding the source the HTML was made from: a cached entry is used
    // only for the very same text.
    cache: Arc<quick_cache::sync::Cache<i64, (String, SafeHtml)>>,
}

/// How many comments' HTML is kept.
const CACHED_COMMENTS: usize = 4096;

impl CommentRenderer {
    /// A renderer with `sanitizer`'s policy.
    pub fn new(sanitizer: Sanitizer) -> Self {
        Self {
            sanitizer,
            cache: Arc::new(quick_cache::sync::Cache::new(CACHED_COMMENTS)),
        }
    }

    /// Renders `comment`. A stored body the policy now refuses (too large or too
    /// deeply nested once rendered) is shown as escaped text.
    pub fn render(&self, comment: Comment) -> RenderedComment {
        let cached = self
            .cache
            .get(&comment.id)
            .filter(|(source, _)| *source == comment.body)
            .map(|(_, html)| html);
        let body_html = cached.unwrap_or_else(|| {
            let html = self
                .sanitizer
                .markdown(&comment.body)
                .unwrap_or_else(|_| SafeHtml::escape(&comment.body));
            self.cache
                .insert(comment.id, (comment.body.clone(), html.clone()));
            html
        });
        RenderedComment {
            id: comment.id,
            username: comment.username,
            body: comment.body,
            body_html,
            created_at: comment.created_at,
        }
    }

    /// Renders each of `comments`.
    pub fn render_all(&self, comments: Vec<Comment>) -> Vec<RenderedComment> {
        comments
            .into_iter()
            .map(|comment| self.render(comment))
            .collect()
    }

    /// Renders a new comment's Markdown, refusing one the sanitizer would not render,
    /// so that what is stored can be shown. Pass the HTML to
    /// [`CommentRenderer::remember`] once the comment has its id.
    pub fn prepare(&self, body: &str) -> Result<SafeHtml, Error> {
        self.sanitizer
            .markdown(body)
            .map_err(|e| Error::bad_request(format!("This comment cannot be shown: {e}.")))
    }

    /// Keeps the HTML [`CommentRenderer::prepare`] made for the comment stored as `id`,
    /// so that its first showing does not render it again.
    pub fn remember(&self, id: i64, body: &str, html: SafeHtml) {
        self.cache.insert(id, (body.to_owned(), html));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comment(id: i64, body: &str) -> Comment {
        Comment {
            id,
            username: "u".to_owned(),
            body: body.to_owned(),
            created_at: "2026-01-01T00:00:00Z".to_owned(),
        }
    }

    #[test]
    fn the_cache_serves_only_the_text_it_was_made_from() {
        let renderer = CommentRenderer::new(Sanitizer::default());
        let first = renderer.render(comment(1, "*a* <script>x()</script>"));
        assert_eq!(first.body_html.as_str(), "<p><em>a</em> </p>\n");
        // The same id with other text (a database rebuilt under a running process).
        let second = renderer.render(comment(1, "**b**"));
        assert_eq!(second.body_html.as_str(), "<p><strong>b</strong></p>\n");
    }
}
