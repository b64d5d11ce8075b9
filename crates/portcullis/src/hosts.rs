//! Allowed hosts: the names this app answers to, and a 400 for every other `Host`.
//!
//! The `Host` header is chosen by the client. An app that believes it builds
//! redirects to wherever the client says (an open redirect, and a poisoned cache entry
//! when a shared cache keys on the path alone), and takes a DNS-rebinding attacker's
//! name for its own origin in the CSRF check. Like Django's `ALLOWED_HOSTS`, Portcullis
//! answers only the names it is told: [`AllowedHostsLayer`] refuses any other host with
//! `400 Bad Request` before the request reaches the redirect, the CSRF check or a
//! handler, and logs the refusal as a security event.
//!
//! A name is matched without its port and without case. An entry starting with a dot
//! (`.example.com`) allows the name and every subdomain. [`AllowedHosts::loopback`]
//! (`localhost`, its subdomains, `127.0.0.1` and `[::1]`) is what development allows.
//!
//! ```
//! use portcullis::hosts::AllowedHosts;
//!
//! let hosts: AllowedHosts = "example.com, .example.org".parse().unwrap();
//! assert!(hosts.allows("example.com:443"));
//! assert!(hosts.allows("API.example.org"));
//! assert!(!hosts.allows("example.com.evil.test"));
//! assert!(!hosts.allows("evil.test"));
//! ```

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{Request, Response};
use axum::response::IntoResponse;
use futures_util::future::{self, Either, Ready};
use tower::{Layer, Service};

use crate::client_ip::ClientInfo;
use crate::error::{Error, MissingLayer};

/// The host names an app answers to.
///
/// ```
/// use portcullis::hosts::AllowedHosts;
///
/// let hosts = AllowedHosts::loopback();
/// assert!(hosts.allows("localhost:8000"));
/// assert!(hosts.allows("127.0.0.1:8000"));
/// assert!(hosts.allows("[::1]:8000"));
/// assert!(!hosts.allows("attacker.example"));
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AllowedHosts {
    entries: Vec<HostPattern>,
    any: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// Exactly this name.
    Exact(String),
    /// This name and every name below it (`.example.com`).
    WithSubdomains(String),
}

/// An allowed-hosts entry that is not a host name or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a host name such as example.com, .example.com or 192.0.2.7")]
pub struct InvalidHost(pub String);

/// The name of `host` (`Host` header syntax, port optional) as entries are compared:
/// lowercase, without port or trailing dot; IPv6 addresses keep their brackets.
fn host_name(host: &str) -> Option<Cow<'_, str>> {
    let host = host.trim();
    let authority: axum::http::uri::Authority = host.parse().ok()?;
    if authority.as_str().contains('@') {
        return None;
    }
    // The name is where the authority starts (`host[:port]`): borrowed from `host`,
    // and copied only when it has capitals, since every request asks.
    let name = host
        .get(..authority.host().len())
        .filter(|name| *name == authority.host())?
        .trim_end_matches('.');
    let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    };
    let plausible = !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
    plausible.then_some(name)
}

impl AllowedHosts {
    /// No host at all: every request is refused. Add names with [`AllowedHosts::allow`].
    pub fn none() -> Self {
        Self::default()
    }

    /// The loopback names: `localhost` and its subdomains, `127.0.0.1`, `[::1]`.
    pub fn loopback() -> Self {
        Self {
            entries: vec![
                HostPattern::WithSubdomains("localhost".to_owned()),
                HostPattern::Exact("127.0.0.1".to_owned()),
                HostPattern::Exact("[::1]".to_owned()),
            ],
            any: false,
        }
    }

    /// Every host, whatever the client sends. Redirects then point wherever the
    /// client's `Host` says and the CSRF origin check follows it: only for an app whose
    /// proxy already refuses unknown hosts. Named so that an audit finds it.
    pub fn dangerous_any() -> Self {
        Self {
            entries: Vec::new(),
            any: true,
        }
    }

    /// Adds one entry: `example.com`, `.example.com` (with subdomains), an IP address.
    ///
    /// ```
    /// use portcullis::hosts::AllowedHosts;
    ///
    /// let hosts = AllowedHosts::none().allow("app.example").unwrap();
    /// assert!(hosts.allows("app.example"));
    /// assert!(AllowedHosts::none().allow("a b").is_err());
    /// ```
    pub fn allow(mut self, entry: &str) -> Result<Self, InvalidHost> {
        let trimmed = entry.trim();
        let (subdomains, name) = match trimmed.strip_prefix('.') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let name = host_name(name)
            .ok_or_else(|| InvalidHost(entry.to_owned()))?
            .into_owned();
        self.entries.push(if subdomains {
            HostPattern::WithSubdomains(name)
        } else {
            HostPattern::Exact(name)
        });
        Ok(self)
    }

    /// Every entry of `other` added to these.
    pub fn merge(mut self, other: &AllowedHosts) -> Self {
        self.any |= other.any;
        for entry in &other.entries {
            if !self.entries.contains(entry) {
                self.entries.push(entry.clone());
            }
        }
        self
    }

    /// Whether no host is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && !self.any
    }

    /// Whether every host is allowed ([`AllowedHosts::dangerous_any`]).
    pub fn allows_any(&self) -> bool {
        self.any
    }

    /// Whether a request for `host` (a `Host` header value, port optional) is answered.
    pub fn allows(&self, host: &str) -> bool {
        if self.any {
            return host_name(host).is_some();
        }
        let Some(name) = host_name(host) else {
            return false;
        };
        self.entries.iter().any(|entry| match entry {
            HostPattern::Exact(allowed) => *allowed == *name,
            HostPattern::WithSubdomains(parent) => {
                name == *parent
                    || name
                        .strip_suffix(parent.as_str())
                        .is_some_and(|head| head.ends_with('.'))
            }
        })
    }

    /// The layer that refuses other hosts.
    pub fn layer(self) -> AllowedHostsLayer {
        AllowedHostsLayer {
            config: Arc::new(LayerConfig {
                hosts: self,
                exempt: Vec::new(),
            }),
        }
    }
}

impl fmt::Debug for AllowedHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.any {
            return f.write_str("AllowedHosts(any)");
        }
        let mut list = f.debug_list();
        for entry in &self.entries {
            match entry {
                HostPattern::Exact(name) => list.entry(name),
                HostPattern::WithSubdomains(name) => list.entry(&format_args!(".{name}")),
            };
        }
        list.finish()
    }
}

impl FromStr for AllowedHosts {
    type Err = InvalidHost;

    /// A comma-separated list of entries, as `PORTCULLIS_ALLOWED_HOSTS` holds them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .try_fold(Self::none(), |hosts, entry| hosts.allow(entry))
    }
}

#[derive(Debug, Clone)]
struct LayerConfig {
    hosts: AllowedHosts,
    exempt: Vec<String>,
}

/// Answers `400 Bad Request` to a request for a host that is not allowed (or names no
/// valid host at all). Needs the [`crate::client_ip`] layer outside it, which reads the
/// host (from a trusted proxy's forwarding header only when that is switched on).
///
/// ```
/// use portcullis::hosts::AllowedHosts;
///
/// let layer = AllowedHosts::loopback()
///     .allow("app.example").unwrap()
///     .layer()
///     .exempt("/healthz");
/// ```
#[derive(Debug, Clone)]
pub struct AllowedHostsLayer {
    config: Arc<LayerConfig>,
}

impl AllowedHostsLayer {
    /// A path answered whatever the host (a load balancer's health check, which often
    /// asks by IP address).
    pub fn exempt(mut self, path: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.config).exempt.push(path.into());
        self
    }
}

impl<S> Layer<S> for AllowedHostsLayer {
    type Service = AllowedHostsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AllowedHostsService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service of [`AllowedHostsLayer`].
#[derive(Clone)]
pub struct AllowedHostsService<S> {
    inner: S,
    config: Arc<LayerConfig>,
}

impl<S> fmt::Debug for AllowedHostsService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllowedHostsService")
            .field("hosts", &self.config.hosts)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for AllowedHostsService<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Response<Body>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Some(client) = req.extensions().get::<ClientInfo>() else {
            let missing = MissingLayer::new("AllowedHostsLayer", "the client-info layer");
            return Either::Right(future::ready(Ok(missing.into_response())));
        };
        let allowed = client
            .host
            .as_deref()
            .is_some_and(|host| self.config.hosts.allows(host));
        if allowed || self.config.exempt.iter().any(|p| p == req.uri().path()) {
            return Either::Left(self.inner.call(req));
        }
        tracing::warn!(
            target: "portcullis::security",
            client_ip = %client.ip,
            host = ?client.host,
            "refused a request for a host that is not allowed (add it to PORTCULLIS_ALLOWED_HOSTS or AllowedHosts)"
        );
        let response = Error::new(
            axum::http::StatusCode::BAD_REQUEST,
            "host_not_allowed",
            "This host is not served here.",
        )
        .into_response();
        Either::Right(future::ready(Ok(response)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_case_and_trailing_dots_do_not_matter() {
        let hosts: AllowedHosts = "App.Example".parse().unwrap();
        for host in [
            "app.example",
            "APP.EXAMPLE:8443",
            "app.example.",
            "app.example:80",
        ] {
            assert!(hosts.allows(host), "{host}");
        }
    }

    #[test]
    fn look_alikes_and_tricks_are_refused() {
        let hosts: AllowedHosts = "app.example, .corp.example".parse().unwrap();
        for host in [
            "app.example.evil.test",
            "evilapp.example",
            "xcorp.example",
            "corp.example.evil.test",
            "app.example@evil.test",
            "app.example/",
            "",
            " ",
            "app\u{2024}example",
            "[::1]",
            "127.0.0.1",
        ] {
            assert!(!hosts.allows(host), "{host:?} was allowed");
        }
        assert!(hosts.allows("corp.example"));
        assert!(hosts.allows("a.b.corp.example:443"));
    }

    #[test]
    fn entries_that_are_not_hosts_are_errors() {
        for entry in ["a b", "http://x", "x/y", "-x", "*"] {
            assert!(entry.parse::<AllowedHosts>().is_err(), "{entry}");
        }
        assert!("".parse::<AllowedHosts>().unwrap().is_empty());
    }

    #[test]
    fn any_still_needs_a_syntactically_valid_host() {
        let any = AllowedHosts::dangerous_any();
        assert!(any.allows("whatever.example"));
        assert!(!any.allows("not a host"));
        assert!(format!("{any:?}").contains("any"));
    }
}
