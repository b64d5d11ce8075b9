use std::sync::Arc;

use super::nonce::{CspNonce, NONCE_LEN};

/// A CSP fetch or navigation directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Directive {
    /// `default-src`
    DefaultSrc,
    /// `script-src`
    ScriptSrc,
    /// `style-src`
    StyleSrc,
    /// `img-src`
    ImgSrc,
    /// `connect-src`
    ConnectSrc,
    /// `font-src`
    FontSrc,
    /// `object-src`
    ObjectSrc,
    /// `media-src`
    MediaSrc,
    /// `frame-src`
    FrameSrc,
    /// `worker-src`
    WorkerSrc,
    /// `manifest-src`
    ManifestSrc,
    /// `base-uri`
    BaseUri,
    /// `form-action`
    FormAction,
    /// `frame-ancestors`: who may frame this page.
    FrameAncestors,
}

impl Directive {
    /// The directive's name in the header.
    pub fn name(self) -> &'static str {
        match self {
            Self::DefaultSrc => "default-src",
            Self::ScriptSrc => "script-src",
            Self::StyleSrc => "style-src",
            Self::ImgSrc => "img-src",
            Self::ConnectSrc => "connect-src",
            Self::FontSrc => "font-src",
            Self::ObjectSrc => "object-src",
            Self::MediaSrc => "media-src",
            Self::FrameSrc => "frame-src",
            Self::WorkerSrc => "worker-src",
            Self::ManifestSrc => "manifest-src",
            Self::BaseUri => "base-uri",
            Self::FormAction => "form-action",
            Self::FrameAncestors => "frame-ancestors",
        }
    }
}

/// A source expression. Hosts and schemes are validated when the policy compiles.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// `'self'`
    SelfOrigin,
    /// `'none'`
    None,
    /// `'nonce-…'` with this request's nonce.
    Nonce,
    /// `'strict-dynamic'`
    StrictDynamic,
    /// `'unsafe-inline'`: accepted for styles only; refused for scripts.
    UnsafeInline,
    /// `'report-sample'`
    ReportSample,
    /// A host source such as `https://cdn.example.com` or `*.example.com`.
    Host(String),
    /// A scheme source such as `data:` or `https:`.
    Scheme(String),
    /// `'sha256-…'` (the base64 hash of an inline script or style).
    Sha256(String),
}

impl Source {
    /// A host source.
    pub fn host(host: impl Into<String>) -> Self {
        Self::Host(host.into())
    }

    /// A scheme source; `data` and `data:` are both accepted.
    pub fn scheme(scheme: impl Into<String>) -> Self {
        Self::Scheme(scheme.into())
    }
}

/// Why a policy cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CspError {
    /// `'unsafe-inline'` in `script-src` (or in `default-src` without a `script-src`).
    #[error("'unsafe-inline' is refused for scripts: use the request nonce instead")]
    UnsafeInlineScript,
    /// A host or scheme that would break out of its directive.
    #[error("invalid CSP source {0:?}")]
    InvalidSource(String),
    /// The same directive given twice.
    #[error("CSP directive {0} is given twice")]
    DuplicateDirective(&'static str),
    /// A report path that is not an absolute path or URL.
    #[error("invalid CSP report endpoint {0:?}")]
    InvalidReportEndpoint(String),
    /// Report collector settings that cannot work.
    #[error("CSP report collector: {0}")]
    InvalidReportCollector(&'static str),
}

/// A Content Security Policy, built up from typed directives.
///
/// `Default` is the strict nonce-based policy above. Setting a directive replaces it.
///
/// ```
/// use portcullis::csp::{ContentSecurityPolicy, CspError, Directive, Source};
///
/// let bad = ContentSecurityPolicy::default()
///     .directive(Directive::ScriptSrc, [Source::SelfOrigin, Source::UnsafeInline]);
/// assert_eq!(bad.compile().unwrap_err(), CspError::UnsafeInlineScript);
/// ```
#[derive(Debug, Clone)]
pub struct ContentSecurityPolicy {
    directives: Vec<(Directive, Vec<Source>)>,
    report_endpoint: Option<String>,
}

/// Where the built-in collector listens, unless configured otherwise.
pub const DEFAULT_REPORT_PATH: &str = "/csp-report";
/// The `Reporting-Endpoints` group name used for `report-to`.
pub const REPORT_GROUP: &str = "csp-endpoint";

impl Default for ContentSecurityPolicy {
    fn default() -> Self {
        use Directive::*;
        use Source::*;
        Self {
            directives: vec![
                (DefaultSrc, vec![SelfOrigin]),
                (ScriptSrc, vec![Nonce, StrictDynamic]),
                (StyleSrc, vec![SelfOrigin, Nonce]),
                (ObjectSrc, vec![None]),
                (BaseUri, vec![None]),
                (FrameAncestors, vec![None]),
                (FormAction, vec![SelfOrigin]),
                (ImgSrc, vec![SelfOrigin, Scheme("data:".into())]),
            ],
            report_endpoint: Option::None,
        }
    }
}

impl ContentSecurityPolicy {
    /// An empty policy, for building one from scratch.
    pub fn empty() -> Self {
        Self {
            directives: Vec::new(),
            report_endpoint: None,
        }
    }

    /// Sets `directive` to `sources`, replacing what it had.
    pub fn directive(
        mut self,
        directive: Directive,
        sources: impl IntoIterator<Item = Source>,
    ) -> Self {
        let sources: Vec<Source> = sources.into_iter().collect();
        match self.directives.iter_mut().find(|(d, _)| *d == directive) {
            Some(slot) => slot.1 = sources,
            None => self.directives.push((directive, sources)),
        }
        self
    }

    /// Removes `directive`.
    pub fn without(mut self, directive: Directive) -> Self {
        self.directives.retain(|(d, _)| *d != directive);
        self
    }

    /// Sends violation reports to `path` with both `report-uri` and `report-to`
    /// (browsers support one or the other). Mount
    /// [`report_collector`](super::report_collector()) there.
    pub fn report_to(mut self, path: impl Into<String>) -> Self {
        self.report_endpoint = Some(path.into());
        self
    }

    /// The sources of `directive`, if set.
    pub fn get(&self, directive: Directive) -> Option<&[Source]> {
        self.directives
            .iter()
            .find(|(d, _)| *d == directive)
            .map(|(_, s)| s.as_slice())
    }

    /// The report endpoint, if reports are on.
    pub fn report_endpoint(&self) -> Option<&str> {
        self.report_endpoint.as_deref()
    }

    /// Validates the policy and compiles it into static segments.
    pub fn compile(&self) -> Result<CompiledCsp, CspError> {
        let mut seen = Vec::new();
        for (directive, _) in &self.directives {
            if seen.contains(directive) {
                return Err(CspError::DuplicateDirective(directive.name()));
            }
            seen.push(*directive);
        }
        let script_sources = self
            .get(Directive::ScriptSrc)
            .or_else(|| self.get(Directive::DefaultSrc))
            .unwrap_or(&[]);
        if script_sources.contains(&Source::UnsafeInline) {
            return Err(CspError::UnsafeInlineScript);
        }

        let mut segments = Vec::new();
        let mut text = String::new();
        // What a response that is no document gets: nothing may load, and whatever
        // this policy says about framing and reports.
        let mut strict = String::from("default-src 'none'");
        for (i, (directive, sources)) in self.directives.iter().enumerate() {
            if i > 0 {
                text.push_str("; ");
            }
            text.push_str(directive.name());
            if sources.is_empty() {
                text.push_str(" 'none'");
            }
            for source in sources {
                text.push(' ');
                if let Source::Nonce = source {
                    text.push_str("'nonce-");
                    segments.push(std::mem::take(&mut text));
                    text.push('\'');
                } else {
                    push_source(&mut text, source)?;
                }
            }
            if *directive == Directive::FrameAncestors {
                strict.push_str("; frame-ancestors");
                // A nonce means nothing to `frame-ancestors`: left out.
                let mut named = sources.iter().filter(|s| !matches!(s, Source::Nonce));
                match named.next() {
                    None => strict.push_str(" 'none'"),
                    Some(first) => {
                        for source in std::iter::once(first).chain(named) {
                            strict.push(' ');
                            push_source(&mut strict, source)?;
                        }
                    }
                }
            }
        }
        if let Some(endpoint) = &self.report_endpoint {
            let valid = (endpoint.starts_with('/') || endpoint.starts_with("https://"))
                && !endpoint
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || ";,\"'".contains(c));
            if !valid {
                return Err(CspError::InvalidReportEndpoint(endpoint.clone()));
            }
            for out in [&mut text, &mut strict] {
                out.push_str("; report-uri ");
                out.push_str(endpoint);
                out.push_str("; report-to ");
                out.push_str(REPORT_GROUP);
            }
        }
        segments.push(text);
        let fixed_len = segments.iter().map(String::len).sum();
        Ok(CompiledCsp {
            segments: segments.into(),
            fixed_len,
            strict: strict.into(),
            report_endpoint: self.report_endpoint.clone(),
        })
    }
}

/// Writes `source` (anything but a nonce, which is spliced in per response) into
/// `text`, refusing what would break out of its directive.
fn push_source(text: &mut String, source: &Source) -> Result<(), CspError> {
    match source {
        Source::SelfOrigin => text.push_str("'self'"),
        Source::None => text.push_str("'none'"),
        Source::StrictDynamic => text.push_str("'strict-dynamic'"),
        Source::UnsafeInline => text.push_str("'unsafe-inline'"),
        Source::ReportSample => text.push_str("'report-sample'"),
        // Spliced in by the caller, per response; never written here.
        Source::Nonce => {}
        Source::Host(host) => {
            validate_host_source(host)?;
            text.push_str(host);
        }
        Source::Scheme(scheme) => {
            let scheme = scheme.trim_end_matches(':');
            let valid = !scheme.is_empty()
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            if !valid {
                return Err(CspError::InvalidSource(scheme.to_owned()));
            }
            text.push_str(scheme);
            text.push(':');
        }
        Source::Sha256(hash) => {
            let valid = !hash.is_empty()
                && hash
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+/=-_".contains(c));
            if !valid {
                return Err(CspError::InvalidSource(hash.clone()));
            }
            text.push_str("'sha256-");
            text.push_str(hash);
            text.push('\'');
        }
    }
    Ok(())
}

fn validate_host_source(host: &str) -> Result<(), CspError> {
    let valid = !host.is_empty()
        && host.len() <= 255
        && !host.starts_with('\'')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:/*[]%~".contains(c));
    if valid {
        Ok(())
    } else {
        Err(CspError::InvalidSource(host.to_owned()))
    }
}

/// A validated policy, split at the nonce positions so that rendering one is a single
/// allocation.
#[derive(Debug, Clone)]
pub struct CompiledCsp {
    segments: Arc<[String]>,
    fixed_len: usize,
    strict: Arc<str>,
    report_endpoint: Option<String>,
}

const UPGRADE: &str = "; upgrade-insecure-requests";

impl CompiledCsp {
    /// The header value for one response. `https` adds `upgrade-insecure-requests`.
    pub fn render(&self, nonce: &CspNonce, https: bool) -> String {
        // Exactly the length: the string then becomes a header value without a copy.
        let nonces = self.segments.len() - 1;
        let upgrade = if https { UPGRADE.len() } else { 0 };
        let mut out = String::with_capacity(self.fixed_len + nonces * NONCE_LEN + upgrade);
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 {
                out.push_str(nonce.as_str());
            }
            out.push_str(segment);
        }
        if https {
            out.push_str(UPGRADE);
        }
        out
    }

    /// The policy of a response that is no page (JSON, text, an image, an empty
    /// redirect): `default-src 'none'`, this policy's `frame-ancestors` and report
    /// directives, and no nonce, since nothing in such a response runs. The same for
    /// every response, so it is built once. `https` adds `upgrade-insecure-requests`.
    ///
    /// ```
    /// use portcullis::csp::ContentSecurityPolicy;
    ///
    /// let compiled = ContentSecurityPolicy::default().compile().unwrap();
    /// assert_eq!(compiled.render_strict(false), "default-src 'none'; frame-ancestors 'none'");
    /// ```
    pub fn render_strict(&self, https: bool) -> String {
        let mut out = String::with_capacity(self.strict.len() + UPGRADE.len());
        out.push_str(&self.strict);
        if https {
            out.push_str(UPGRADE);
        }
        out
    }

    /// The report endpoint, if reports are on.
    pub fn report_endpoint(&self) -> Option<&str> {
        self.report_endpoint.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_matches_the_documented_one() {
        let compiled = ContentSecurityPolicy::default().compile().unwrap();
        let nonce = CspNonce::generate();
        let n = nonce.as_str();
        assert_eq!(
            compiled.render(&nonce, false),
            format!(
                "default-src 'self'; script-src 'nonce-{n}' 'strict-dynamic'; \
                 style-src 'self' 'nonce-{n}'; object-src 'none'; base-uri 'none'; \
                 frame-ancestors 'none'; form-action 'self'; img-src 'self' data:"
            )
        );
        assert!(compiled
            .render(&nonce, true)
            .ends_with("; upgrade-insecure-requests"));
    }

    #[test]
    fn unsafe_inline_scripts_are_refused_even_through_default_src() {
        let policy = ContentSecurityPolicy::empty().directive(
            Directive::DefaultSrc,
            [Source::SelfOrigin, Source::UnsafeInline],
        );
        assert_eq!(policy.compile().unwrap_err(), CspError::UnsafeInlineScript);
        // Styles may opt in.
        let styles = ContentSecurityPolicy::default().directive(
            Directive::StyleSrc,
            [Source::SelfOrigin, Source::UnsafeInline],
        );
        assert!(styles.compile().is_ok());
    }

    #[test]
    fn sources_that_inject_directives_are_refused() {
        for evil in [
            "https://a.example; script-src *",
            "https://a.example 'unsafe-inline'",
            "'unsafe-eval'",
            "a.example,b",
            "",
        ] {
            let policy =
                ContentSecurityPolicy::default().directive(Directive::ImgSrc, [Source::host(evil)]);
            assert!(policy.compile().is_err(), "{evil:?} compiled");
        }
        let scheme = ContentSecurityPolicy::default()
            .directive(Directive::ImgSrc, [Source::scheme("data; script-src *")]);
        assert!(scheme.compile().is_err());
        let report = ContentSecurityPolicy::default().report_to("/r; script-src *");
        assert!(report.compile().is_err());
    }

    #[test]
    fn strict_policy_keeps_framing_and_reports_and_no_nonce() {
        let compiled = ContentSecurityPolicy::default()
            .directive(
                Directive::FrameAncestors,
                [Source::SelfOrigin, Source::host("https://partner.example")],
            )
            .report_to(DEFAULT_REPORT_PATH)
            .compile()
            .unwrap();
        assert_eq!(
            compiled.render_strict(false),
            "default-src 'none'; frame-ancestors 'self' https://partner.example; \
             report-uri /csp-report; report-to csp-endpoint"
        );
        assert!(compiled
            .render_strict(true)
            .ends_with("report-to csp-endpoint; upgrade-insecure-requests"));
        // A policy that says nothing about framing adds no rule of its own.
        let unframed = ContentSecurityPolicy::default()
            .without(Directive::FrameAncestors)
            .compile()
            .unwrap();
        assert_eq!(unframed.render_strict(false), "default-src 'none'");
        let empty = ContentSecurityPolicy::default()
            .directive(Directive::FrameAncestors, [])
            .compile()
            .unwrap();
        assert_eq!(
            empty.render_strict(false),
            "default-src 'none'; frame-ancestors 'none'"
        );
    }

    #[test]
    fn rendered_length_is_exact() {
        let compiled = ContentSecurityPolicy::default().compile().unwrap();
        for https in [false, true] {
            let header = compiled.render(&CspNonce::generate(), https);
            assert_eq!(header.len(), header.capacity());
        }
    }

    #[test]
    fn report_endpoint_adds_both_report_directives() {
        let compiled = ContentSecurityPolicy::default()
            .report_to(DEFAULT_REPORT_PATH)
            .compile()
            .unwrap();
        let header = compiled.render(&CspNonce::generate(), false);
        assert!(header.ends_with("; report-uri /csp-report; report-to csp-endpoint"));
    }
}
