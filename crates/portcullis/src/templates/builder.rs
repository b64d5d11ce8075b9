//! Loading templates: from sources and a folder, each checked for raw HTML as it
//! loads, with the named exceptions.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{raw_html, secure_environment, Templates};

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
            // Every file is read, checked and compiled once here; the loader serves
            // only files added to the folder later, checked the same way.
            for name in template_names(&dir)? {
                let path = dir.join(&name);
                let source = std::fs::read_to_string(&path)
                    .map_err(|source| TemplateError::Folder { path, source })?;
                check_escaping(&name, &source, &trusted)?;
                env.add_template_owned(name, source)?;
            }
            env.set_loader(checked_loader(dir, trusted));
        }
        Ok(Templates { env: Arc::new(env) })
    }
}

/// A path loader that checks every template it reads.
pub(super) fn checked_loader(
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
