//! Templates that escape everything, with the request's CSP nonce at hand.
//!
//! minijinja (Jinja2 syntax, so Flask templates carry over) decides auto-escaping by
//! the template's file extension: a template named `comment.txt`, `page.jinja` or
//! `email` would render `<script>` as it came. [`Templates`] forces HTML escaping on
//! for every template whatever its name; only values the code marks safe are not
//! escaped, so rich text must go through a sanitizer first.
//!
//! Nothing else is written unescaped: a template that uses the `safe` filter or
//! `{% autoescape false %}` is refused when it is loaded, with the line and the reason
//! in the error, and the filter refuses at render time too. User rich text reaches a
//! page as a `SafeHtml` from `portcullis::sanitize` (feature `sanitize`), which renders
//! as it is; a template that must write other trusted markup is named in
//! [`TemplatesBuilder::dangerous_trust_raw_html`].
//!
//! Every template can call `csp_nonce()` to put this request's nonce on an inline
//! `<script>` or `<style>`, which is the only way such an element runs under the
//! default policy, and `csrf_token()` / `csrf_field()` for forms. Handlers take a
//! [`Page`] (an extractor holding both) and pass it to [`Templates::render`].
//!
//! ```
//! use portcullis::csp::CspNonce;
//! use portcullis::templates::{Page, Templates};
//!
//! let templates = Templates::from_sources([
//!     ("page.txt", "<p>{{ name }}</p><script nonce=\"{{ csp_nonce() }}\">go()</script>"),
//! ])
//! .unwrap();
//! let nonce = CspNonce::generate();
//! let html = templates
//!     .render("page.txt", &Page::new(nonce), minijinja::context! { name => "<b>x</b>" })
//!     .unwrap();
//! assert!(html.0.contains("&lt;b&gt;x&lt;&#x2f;b&gt;"));
//! assert!(html.0.contains(nonce.as_str()));
//! ```

mod builder;
mod raw_html;

use builder::checked_loader;
pub use builder::{TemplateError, TemplatesBuilder};

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Html;
use minijinja::value::{Object, Value};
use minijinja::{AutoEscape, Environment, State, UndefinedBehavior};
use serde::Serialize;

use crate::csp::CspNonce;
use crate::csrf::CsrfMinter;
use crate::error::Error;
use crate::session::Session;

// Names no application template is likely to use; they carry the request's nonce and
// CSRF source from `render` to the template functions.
const NONCE_VARIABLE: &str = "__portcullis_csp_nonce";
const CSRF_VARIABLE: &str = "__portcullis_csrf";

/// What a page needs from its request: the CSP nonce, and the session's CSRF source
/// when the session and CSRF layers are installed. An extractor.
///
/// ```
/// use axum::extract::State;
/// use portcullis::templates::{Page, Templates};
///
/// async fn form(State(templates): State<Templates>, page: Page) -> Result<axum::response::Html<String>, portcullis::error::Error> {
///     templates.render("form.html", &page, ())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Page {
    nonce: CspNonce,
    csrf: Option<Arc<CsrfSource>>,
}

impl Page {
    /// A page with `nonce` and no CSRF source (`csrf_token()` then fails to render).
    pub fn new(nonce: CspNonce) -> Self {
        Self { nonce, csrf: None }
    }

    /// This response's nonce.
    pub fn nonce(&self) -> &CspNonce {
        &self.nonce
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let nonce = CspNonce::from_request_parts(parts, state).await?;
        let csrf = match (
            parts.extensions.get::<CsrfMinter>(),
            parts.extensions.get::<Session>(),
        ) {
            (Some(minter), Some(session)) => Some(Arc::new(CsrfSource {
                minter: minter.clone(),
                session: session.clone(),
                token: std::sync::OnceLock::new(),
            })),
            _ => None,
        };
        Ok(Self { nonce, csrf })
    }
}

/// Mints one CSRF token per render, and only if the template asks for it, so that
/// pages without forms never create a session.
#[derive(Debug)]
struct CsrfSource {
    minter: CsrfMinter,
    session: Session,
    token: std::sync::OnceLock<String>,
}

impl CsrfSource {
    fn token(&self) -> &str {
        self.token.get_or_init(|| self.minter.mint(&self.session))
    }
}

impl Object for CsrfSource {}

fn csrf_token(state: &State) -> Result<String, minijinja::Error> {
    state
        .lookup(CSRF_VARIABLE)
        .and_then(|v| {
            v.downcast_object_ref::<CsrfSource>()
                .map(|s| s.token().to_owned())
        })
        .ok_or_else(|| {
            minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                "csrf_token() needs the session and CSRF layers and a Page from the request",
            )
        })
}

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

pub(super) fn secure_environment(trusted: Arc<HashSet<String>>) -> Environment<'static> {
    let mut env = Environment::new();
    // The built-in `safe` marks any string safe; this one passes values that are
    // already safe (a `SafeHtml`, a macro's output) and refuses the rest, unless the
    // template was named as trusted.
    env.add_filter(
        "safe",
        move |state: &State, value: Value| -> Result<Value, minijinja::Error> {
            if value.is_safe() {
                Ok(value)
            } else if trusted.contains(state.name()) {
                Ok(Value::from_safe_string(value.to_string()))
            } else {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    "the safe filter on a plain string: pass a SafeHtml from portcullis::sanitize",
                ))
            }
        },
    );
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
    env.add_function("csrf_token", csrf_token);
    env.add_function(
        "csrf_field",
        |state: &State| -> Result<Value, minijinja::Error> {
            csrf_token(state)
                .map(|token| Value::from_safe_string(crate::csrf::hidden_field(&token)))
        },
    );
    env
}

impl Templates {
    /// A builder for templates from sources and a folder, with named exceptions.
    pub fn builder() -> TemplatesBuilder {
        TemplatesBuilder::default()
    }

    /// Templates read from `dir` on first use (a folder such as `templates/`). A
    /// template that writes values unescaped fails when first rendered; use
    /// [`Templates::builder`] to check them all at start-up.
    ///
    /// ```
    /// let templates = portcullis::templates::Templates::from_dir("templates");
    /// ```
    pub fn from_dir(dir: impl Into<PathBuf>) -> Self {
        let trusted = Arc::new(HashSet::new());
        let mut env = secure_environment(trusted.clone());
        env.set_loader(checked_loader(dir.into(), trusted));
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
        sources
            .into_iter()
            .fold(Self::builder(), |builder, (name, source)| {
                builder.source(name, source)
            })
            .build()
    }

    /// Renders `name` with `context` and the request's nonce and CSRF source.
    ///
    /// A failure is logged with its cause and answered as a generic 500: template
    /// errors quote source lines, which never go to the client.
    pub fn render(
        &self,
        name: &str,
        page: &Page,
        context: impl Serialize,
    ) -> Result<Html<String>, Error> {
        self.render_string(name, page, context).map(Html)
    }

    /// As [`Templates::render`], returning the text.
    pub fn render_string(
        &self,
        name: &str,
        page: &Page,
        context: impl Serialize,
    ) -> Result<String, Error> {
        let template = self.env.get_template(name).map_err(|e| {
            tracing::error!(template = name, error = %e, "template not found");
            Error::internal()
        })?;
        let csrf = page
            .csrf
            .clone()
            .map(Value::from_dyn_object)
            .unwrap_or(Value::UNDEFINED);
        let context = minijinja::context! {
            __portcullis_csp_nonce => page.nonce.as_str(),
            __portcullis_csrf => csrf,
            ..Value::from_serialize(&context)
        };
        template.render(context).map_err(|e| {
            tracing::error!(template = name, error = %e, "template failed to render");
            Error::internal()
        })
    }
}

#[cfg(test)]
mod tests;
