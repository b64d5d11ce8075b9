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

mod raw_html;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
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

/// A template couldn't be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The template does not parse, or could not be read.
    #[error("template error: {0}")]
    Syntax(#[from] minijinja::Error),
    /// The template writes values unescaped.
    #[error(
        "template {name:?}, line {line}: {reason}; render user rich text as a SafeHtml from \
         portcullis::sanitize, or name a template of trusted markup in \
         TemplatesBuilder::dangerous_trust_raw_html"
    )]
    RawHtml {
        /// The template's name.
        name: String,
        /// The line of the first such use.
        line: usize,
        /// What it does.
        reason: &'static str,
    },
    /// A template folder could not be listed.
    #[error("template folder {path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Refuses `source` if it writes values unescaped and `name` is not trusted to.
fn check_escaping(
    name: &str,
    source: &str,
    trusted: &HashSet<String>,
) -> Result<(), TemplateError> {
    if trusted.contains(name) {
        return Ok(());
    }
    match raw_html::find(source) {
        Some(found) => Err(TemplateError::RawHtml {
            name: name.to_owned(),
            line: found.line,
            reason: found.reason,
        }),
        None => Ok(()),
    }
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

fn secure_environment(trusted: Arc<HashSet<String>>) -> Environment<'static> {
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

/// Builds [`Templates`] from compiled-in sources and a folder, checking each template
/// as it loads.
///
/// ```
/// use portcullis::templates::{TemplateError, Templates};
///
/// let refused = Templates::builder().source("page.html", "{{ body|safe }}").build();
/// assert!(matches!(refused, Err(TemplateError::RawHtml { line: 1, .. })));
///
/// let trusted = Templates::builder()
///     .source("banner.html", "{{ banner|safe }}")
///     .dangerous_trust_raw_html("banner.html")
///     .build();
/// assert!(trusted.is_ok());
/// ```
#[derive(Debug, Default)]
pub struct TemplatesBuilder {
    sources: Vec<(String, String)>,
    dir: Option<PathBuf>,
    trusted: HashSet<String>,
}

impl TemplatesBuilder {
    /// Adds a template compiled into the binary (`include_str!`).
    pub fn source(mut self, name: impl Into<String>, source: impl Into<String>) -> Self {
        self.sources.push((name.into(), source.into()));
        self
    }

    /// Reads templates from `dir` (a folder such as `templates/`) on first use.
    /// [`TemplatesBuilder::build`] loads and checks every file in it once.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Lets the template `name` use the `safe` filter and `{% autoescape false %}`:
    /// everything it marks safe reaches the page as it is. Only for templates whose
    /// values never come from users.
    pub fn dangerous_trust_raw_html(mut self, name: impl Into<String>) -> Self {
        self.trusted.insert(name.into());
        self
    }

    /// Loads the templates, refusing any that fails to parse or writes values
    /// unescaped without being trusted to.
    pub fn build(self) -> Result<Templates, TemplateError> {
        let trusted = Arc::new(self.trusted);
        let mut env = secure_environment(trusted.clone());
        for (name, source) in self.sources {
            check_escaping(&name, &source, &trusted)?;
            env.add_template_owned(name, source)?;
        }
        if let Some(dir) = self.dir {
            let names = template_names(&dir)?;
            for name in &names {
                let path = dir.join(name);
                let source = std::fs::read_to_string(&path)
                    .map_err(|source| TemplateError::Folder { path, source })?;
                check_escaping(name, &source, &trusted)?;
            }
            env.set_loader(checked_loader(dir, trusted));
            for name in &names {
                env.get_template(name)?;
            }
        }
        Ok(Templates { env: Arc::new(env) })
    }
}

/// A path loader that checks every template it reads.
fn checked_loader(
    dir: PathBuf,
    trusted: Arc<HashSet<String>>,
) -> impl for<'a> Fn(&'a str) -> Result<Option<String>, minijinja::Error> + Send + Sync + 'static {
    let load = minijinja::path_loader(dir);
    move |name| {
        let source = load(name)?;
        if let Some(source) = &source {
            check_escaping(name, source, &trusted).map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
            })?;
        }
        Ok(source)
    }
}

/// Every file under `dir`, named as the path loader names it (`/`-separated).
fn template_names(dir: &Path) -> Result<Vec<String>, TemplateError> {
    let mut names = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|source| TemplateError::Folder {
            path: folder.clone(),
            source,
        })?;
        for entry in entries {
            let path = entry
                .map_err(|source| TemplateError::Folder {
                    path: folder.clone(),
                    source,
                })?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                let parts: Vec<_> = relative.iter().map(|p| p.to_string_lossy()).collect();
                names.push(parts.join("/"));
            }
        }
    }
    names.sort();
    Ok(names)
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
                .render_string(
                    name,
                    &Page::new(nonce),
                    minijinja::context! { body => PAYLOAD },
                )
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
            .render_string(
                "plain.txt",
                &Page::new(nonce),
                minijinja::context! { body => PAYLOAD },
            )
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
                &Page::new(nonce),
                minijinja::context! { __portcullis_csp_nonce => "forged" },
            )
            .unwrap();
        assert_eq!(out, nonce.as_str());
    }

    #[test]
    fn render_errors_do_not_leak_template_source() {
        let templates = Templates::from_sources([("t", "{{ missing.deeply }}")]).unwrap();
        let err = templates
            .render_string("t", &Page::new(CspNonce::generate()), ())
            .unwrap_err();
        assert_eq!(err.status(), 500);
        assert!(!err.message().contains("missing"));
        let err = templates
            .render_string("absent", &Page::new(CspNonce::generate()), ())
            .unwrap_err();
        assert_eq!(err.status(), 500);
    }

    #[test]
    fn templates_that_write_raw_html_are_refused_when_loaded() {
        let refused =
            Templates::from_sources([("page.html", "<p>\n{{ body|safe }}</p>")]).unwrap_err();
        assert!(
            matches!(&refused, TemplateError::RawHtml { name, line: 2, .. } if name == "page.html"),
            "{refused}"
        );
        assert!(refused.to_string().contains("SafeHtml"), "{refused}");
        assert!(matches!(
            Templates::from_sources([("p", "{% autoescape false %}{{ b }}{% endautoescape %}")]),
            Err(TemplateError::RawHtml { .. })
        ));

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("parts")).unwrap();
        std::fs::write(dir.path().join("ok.html"), "{{ body }}").unwrap();
        std::fs::write(dir.path().join("parts/raw.html"), "{{ body|safe }}").unwrap();
        let refused = Templates::builder().dir(dir.path()).build().unwrap_err();
        assert!(
            matches!(&refused, TemplateError::RawHtml { name, .. } if name == "parts/raw.html"),
            "{refused}"
        );
        // Loaded lazily, the same template fails to render and never writes the body.
        let lazy = Templates::from_dir(dir.path());
        let nonce = CspNonce::generate();
        let page = Page::new(nonce);
        assert!(lazy
            .render_string(
                "parts/raw.html",
                &page,
                minijinja::context! { body => PAYLOAD }
            )
            .is_err());
        assert!(lazy
            .render_string("ok.html", &page, minijinja::context! { body => PAYLOAD })
            .unwrap()
            .starts_with("&lt;script&gt;"));
    }

    #[test]
    fn a_trusted_template_may_mark_values_safe_and_others_may_not() {
        let templates = Templates::builder()
            .source("banner.html", "{{ banner|safe }}")
            .dangerous_trust_raw_html("banner.html")
            .build()
            .unwrap();
        let out = templates
            .render_string(
                "banner.html",
                &Page::new(CspNonce::generate()),
                minijinja::context! { banner => "<b>ops</b>" },
            )
            .unwrap();
        assert_eq!(out, "<b>ops</b>");
    }

    #[cfg(feature = "sanitize")]
    #[test]
    fn sanitized_html_renders_as_it_is_and_plain_strings_are_escaped() {
        let templates =
            Templates::from_sources([("c.html", "{{ html }}|{{ text }}|{{ html|safe }}")]);
        // `|safe` is refused even where it would be harmless: the check is by name.
        assert!(templates.is_err());
        let templates = Templates::from_sources([("c.html", "{{ html }}|{{ text }}")]).unwrap();
        let html = crate::sanitize::Sanitizer::default()
            .markdown("*hi* <img src=x onerror=alert(1)>")
            .unwrap();
        let out = templates
            .render_string(
                "c.html",
                &Page::new(CspNonce::generate()),
                minijinja::context! { html => html, text => "<em>hi</em>" },
            )
            .unwrap();
        assert_eq!(out, "<p><em>hi</em> </p>\n|&lt;em&gt;hi&lt;&#x2f;em&gt;");
    }
}
