//! Web origins (`scheme://host[:port]`) as configuration names them and browsers send
//! them, parsed one way for every layer that compares them: CORS's allowed origins,
//! CSRF's trusted and API origins, and the origins a route may be framed by.
//!
//! An origin is compared with a request's `Origin` header as a string, so a configured
//! origin that a browser would never send is a silent hole or a silent lock-out. Every
//! form a browser never sends is refused when the configuration is built, with the
//! fix in the message:
//!
//! - a path or a trailing slash (`https://a.example/`), a query, a fragment, user
//!   information, a wildcard (`https://*.example`) or a space;
//! - the scheme's default port (`https://a.example:443`, `http://a.example:80`);
//! - a port with leading zeros or out of range;
//! - `null`, the origin of sandboxed frames and local files, which anyone can produce.
//!
//! Letters are lowercased, as browsers serialise them.
//!
//! ```
//! use portcullis::origin::Origin;
//!
//! let origin: Origin = "https://App.Example:8443".parse().unwrap();
//! assert_eq!(origin.as_str(), "https://app.example:8443");
//! assert!(origin.matches("https://app.example:8443"));
//! assert!("https://app.example:443".parse::<Origin>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

/// A web origin, `scheme://host[:port]`, in the form browsers send it.
///
/// ```
/// use portcullis::origin::Origin;
///
/// let origin = Origin::parse("http://localhost:5173").unwrap();
/// assert_eq!(origin.scheme(), "http");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    serialized: String,
    scheme_len: usize,
}

/// A configured origin that a browser would never send.
///
/// ```
/// use portcullis::origin::Origin;
///
/// let err = Origin::parse("https://a.example/").unwrap_err();
/// assert!(err.to_string().contains("trailing slash"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid origin {origin:?}: {reason}")]
pub struct OriginError {
    /// The origin as configured.
    pub origin: String,
    /// What is wrong with it, and how to fix it.
    pub reason: &'static str,
}

impl Origin {
    /// Parses `scheme://host[:port]`; see the module docs for what is refused.
    pub fn parse(origin: &str) -> Result<Self, OriginError> {
        let invalid = |reason| OriginError {
            origin: origin.to_owned(),
            reason,
        };
        if origin.eq_ignore_ascii_case("null") {
            return Err(invalid(
                "null is the origin of sandboxed frames and local files, which anyone can produce",
            ));
        }
        let lower = origin.to_ascii_lowercase();
        let Some((scheme, rest)) = lower.split_once("://") else {
            return Err(invalid(
                "expected scheme://host[:port], such as https://app.example.com",
            ));
        };
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !scheme_ok {
            return Err(invalid("the scheme is not valid"));
        }
        if rest.ends_with('/') {
            return Err(invalid("remove the trailing slash: an origin has no path"));
        }
        if rest.contains('/') {
            return Err(invalid("an origin has no path"));
        }
        if rest.is_empty() || rest.contains(['?', '#', '@', '*', ' ', '\t']) {
            return Err(invalid("expected scheme://host[:port] with an exact host"));
        }
        let authority: axum::http::uri::Authority = rest
            .parse()
            .map_err(|_| invalid("the host or port is not valid"))?;
        if authority.host().is_empty() {
            return Err(invalid("the host is missing"));
        }
        let default_port = match scheme {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        };
        if authority.port_u16().is_some() && authority.port_u16() == default_port {
            return Err(invalid("remove the default port: browsers never send it"));
        }
        // `Authority` forgets a port it cannot read rather than refusing it.
        let port_text = match rest.rfind(']') {
            Some(end) => rest[end + 1..].strip_prefix(':'),
            None => rest.rsplit_once(':').map(|(_, port)| port),
        };
        if let Some(port) = port_text {
            // Browsers write ports without leading zeros; `08443` would never match.
            if port.parse::<u16>().is_err() || (port.len() > 1 && port.starts_with('0')) {
                return Err(invalid("the port is not valid"));
            }
        }
        if axum::http::HeaderValue::from_str(&lower).is_err() {
            return Err(invalid("not a valid header value"));
        }
        Ok(Self {
            scheme_len: scheme.len(),
            serialized: lower,
        })
    }

    /// Parses an `http` or `https` origin: a web page's, the only kind that may
    /// frame a page or be trusted to post to it.
    ///
    /// ```
    /// use portcullis::origin::Origin;
    ///
    /// assert!(Origin::parse_web("https://partner.example").is_ok());
    /// assert!(Origin::parse_web("capacitor://localhost").is_err());
    /// ```
    pub fn parse_web(origin: &str) -> Result<Self, OriginError> {
        let parsed = Self::parse(origin)?;
        if matches!(parsed.scheme(), "http" | "https") {
            Ok(parsed)
        } else {
            Err(OriginError {
                origin: origin.to_owned(),
                reason: "expected an http:// or https:// origin",
            })
        }
    }

    /// The origin as browsers serialise it.
    pub fn as_str(&self) -> &str {
        &self.serialized
    }

    /// The scheme (`https`, `http`, …), lowercase.
    pub fn scheme(&self) -> &str {
        &self.serialized[..self.scheme_len]
    }

    /// Whether a request's `Origin` header names this origin.
    pub fn matches(&self, header: &str) -> bool {
        self.serialized.eq_ignore_ascii_case(header)
    }
}

impl FromStr for Origin {
    type Err = OriginError;

    fn from_str(origin: &str) -> Result<Self, Self::Err> {
        Self::parse(origin)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.serialized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_a_browser_sends_is_an_origin() {
        for bad in [
            "example.com",
            "https://a.example/",
            "https://a.example/path",
            "null",
            "NULL",
            "https://",
            "https://*.example.com",
            "https://user@a.example",
            "https://a.example?x",
            "https://a.example#x",
            "https://a.example:443",
            "http://a.example:80",
            "https://a.example:99999",
            "https://a.example:",
            "https://a.example:08443",
            "http://[::1]:x",
            "https://a .example",
            "1https://a.example",
            "://a.example",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "https://a.example",
            "http://localhost:5173",
            "https://App.Example",
            "http://[::1]:8080",
            "http://127.0.0.1:3000",
            "capacitor://localhost",
        ] {
            assert!(Origin::parse(good).is_ok(), "{good:?}");
        }
        let origin = Origin::parse("HTTPS://App.Example:8443").unwrap();
        assert_eq!(origin.as_str(), "https://app.example:8443");
        assert_eq!(origin.scheme(), "https");
        assert!(origin.matches("https://APP.example:8443"));
        assert!(!origin.matches("https://app.example"));
        assert!(Origin::parse_web("javascript://x").is_err());
        assert!(Origin::parse_web("capacitor://localhost").is_err());
    }
}
