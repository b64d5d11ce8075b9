//! Templates that escape everything, with the request's CSP nonce at hand.
//!
//! minijinja (Jinja2 syntax, so Flask templates carry over) decides auto-escaping by
//! the template's file extension: a template named `comment.txt`, `page.jinja` or
//! `email` would render `<script>` as it came. [`Templates`] forces HTML escaping on
//! for every template whatever its name; only values the code marks safe are not
//! escaped, so rich text must go through a sanitizer first.
//!
//! Every template can call `csp_nonce()` to put this request's nonce on an inline
//! `<script>` or `<style>`, which is the only way such an element runs under the
//! default policy.
//!
//! ```
//! use portcullis::csp::CspNonce;
//! use portcullis::templates::Templates;
//!
//! let templates = Templates::from_sources([
//!     ("page.txt", "<p>{{ name }}</p><script nonce=\"{{ csp_nonce() }}\">go()</script>"),
//! ])
//! .unwrap();
//! let nonce = CspNonce::generate();
//! let html = templates
//!     .render("page.txt", &nonce, minijinja::context! { name => "<b>x</b>" })
//!     .unwrap();
//! assert!(html.0.contains("&lt;b&gt;x&lt;&#x2f;b&gt;"));
//! assert!(html.0.contains(nonce.as_str()));
//! ```

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use axum::response::Html;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, State, UndefinedBehavior};
use serde::Serialize;

use crate::csp::CspNonce;
use crate::error::Error;

// A name no application template is likely to use; it carries the nonce from
// `render` to the `csp_nonce()` function.
const NONCE_VARIABLE: &str = "__portcullis_csp_nonce";

/// A template couldn't be loaded.
#[derive(Debug, thiserror::Error)]
#[error("template error: {0}")]
pub struct TemplateError(#[from] minijinja::Error);

/// A set of templates with HTML auto-escaping forced on. Cheap to clone.
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

fn secure_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_name| AutoEscape::Html);
    // A misspelt variable is an error in a `{{ … }}`, not a silent empty string; `if`
    // tests on missing values still work.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.add_function(
        "csp_nonce",
        |state: &State| -> Result<String, minijinja::Error> {
            state
                .lookup(NONCE_VARIABLE)
                .and_then(|v| v.as_str().map(str::to_owned))
                .ok_or_else(|| {
                    minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        "csp_nonce() is only available when rendering through Templates::render",
                    )
                })
        },
    );
    env
}

impl Templates {
    /// Templates read from `dir` on first use (a folder such as `templates/`).
    ///
    /// ```
    /// let templates = portcullis::templates::Templates::from_dir("templates");
    /// ```
    pub fn from_dir(dir: impl Into<PathBuf>) -> Self {
        let mut env = secure_environment();
        env.set_loader(minijinja::path_loader(dir.into()));
        Self { env: Arc::new(env) }
    }

    /// Templates compiled into the binary, as `(name, source)` pairs
    /// (`include_str!`), so that the app runs from any working directory.
    pub fn from_sources<N, S>(
        sources: impl IntoIterator<Item = (N, S)>,
    ) -> Result<Self, TemplateError>
    where
        N: Into<String>,
        S: Into<String>,
    {
        let mut env = secure_environment();
        for (name, source) in sources {
            env.add_template_owned(name.into(), source.into())?;
        }
        Ok(Self { env: Arc::new(env) })
    }

    /// Renders `name` with `context` and the request's `nonce`.
    ///
    /// A failure is logged with its cause and answered as a generic 500: template
    /// errors quote source lines, which never go to the client.
    pub fn render(
        &self,
        name: &str,
        nonce: &CspNonce,
        context: impl Serialize,
    ) -> Result<Html<String>, Error> {
        self.render_string(name, nonce, context).map(Html)
    }

    /// As [`Templates::render`], returning the text.
    pub fn render_string(
        &self,
        name: &str,
        nonce: &CspNonce,
        context: impl Serialize,
    ) -> Result<String, Error> {
        let template = self.env.get_template(name).map_err(|e| {
            tracing::error!(template = name, error = %e, "template not found");
            Error::internal()
        })?;
        let context = minijinja::context! {
            __portcullis_csp_nonce => nonce.as_str(),
            ..Value::from_serialize(&context)
        };
        template.render(context).map_err(|e| {
            tracing::error!(template = name, error = %e, "template failed to render");
            Error::internal()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &str = "<script>alert(1)</script>\"'><img src=x onerror=alert(1)>";

    #[test]
    fn templates_without_html_extension_still_escape() {
        let templates = Templates::from_sources([
            ("comment.txt", "{{ body }}"),
            ("noextension", "{{ body }}"),
            ("page.jinja", "<a title=\"{{ body }}\">x</a>"),
        ])
        .unwrap();
        let nonce = CspNonce::generate();
        for name in ["comment.txt", "noextension", "page.jinja"] {
            let out = templates
                .render_string(name, &nonce, minijinja::context! { body => PAYLOAD })
                .unwrap();
            assert!(!out.contains("<script>"), "{name}: {out}");
            assert!(!out.contains("<img"), "{name}: {out}");
            assert!(!out.contains("\"'>"), "{name}: {out}");
            assert!(out.contains("&lt;script&gt;"), "{name}: {out}");
        }
    }

    #[test]
    fn templates_from_a_folder_escape_and_get_the_nonce() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("plain.txt"), "{{ body }}|{{ csp_nonce() }}").unwrap();
        let templates = Templates::from_dir(dir.path());
        let nonce = CspNonce::generate();
        let out = templates
            .render_string("plain.txt", &nonce, minijinja::context! { body => PAYLOAD })
            .unwrap();
        assert!(!out.contains("<script>"));
        assert!(out.ends_with(nonce.as_str()));
    }

    #[test]
    fn context_cannot_forge_the_nonce() {
        let templates = Templates::from_sources([("t", "{{ csp_nonce() }}")]).unwrap();
        let nonce = CspNonce::generate();
        let out = templates
            .render_string(
                "t",
                &nonce,
                minijinja::context! { __portcullis_csp_nonce => "forged" },
            )
            .unwrap();
        assert_eq!(out, nonce.as_str());
    }

    #[test]
    fn render_errors_do_not_leak_template_source() {
        let templates = Templates::from_sources([("t", "{{ missing.deeply }}")]).unwrap();
        let err = templates
            .render_string("t", &CspNonce::generate(), ())
            .unwrap_err();
        assert_eq!(err.status(), 500);
        assert!(!err.message().contains("missing"));
        let err = templates
            .render_string("absent", &CspNonce::generate(), ())
            .unwrap_err();
        assert_eq!(err.status(), 500);
    }
}
