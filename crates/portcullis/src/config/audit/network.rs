//! The audit of what crosses the network: Secure cookies, the trusted proxies, the
//! allowed hosts, HTTPS, and CORS with credentials.

use super::Check;
use crate::config::settings::{is_loopback_origin, is_too_broad, Settings};

impl Settings {
    /// Cookies, proxies, hosts, HTTPS and CORS.
    pub(super) fn audit_network(&self, checks: &mut Vec<Check>) {
        checks.push(if self.cookie_secure_setting.unwrap_or(true) {
            Check::pass("secure-cookies", "cookies are sent with Secure")
        } else {
            Check::fail(
                "secure-cookies",
                "cookies would be sent without Secure, so over plain HTTP too",
                "unset PORTCULLIS_COOKIE_SECURE (it defaults to true in production) or set it to true",
            )
        });

        let broad: Vec<String> = self
            .trusted_proxies
            .networks()
            .iter()
            .filter(|net| is_too_broad(net))
            .map(ToString::to_string)
            .collect();
        checks.push(if broad.is_empty() {
            Check::pass(
                "trusted-proxies",
                format!("{} trusted proxy network(s)", self.trusted_proxies.networks().len()),
            )
        } else {
            Check::fail(
                "trusted-proxies",
                format!(
                    "{} trusts a large part of the internet: any client there can forge its address, scheme and host",
                    broad.join(", ")
                ),
                "list only the addresses of your own proxies in PORTCULLIS_TRUSTED_PROXIES",
            )
        });
        let proxy_terminates_tls = !self.trusted_proxies.is_empty() && broad.is_empty();

        checks.push(if self.allowed_hosts.is_empty() {
            Check::fail(
                "allowed-hosts",
                "no allowed host is configured: production answers none",
                "set PORTCULLIS_ALLOWED_HOSTS to the site's host names (example.com, .example.com)",
            )
        } else if self.allowed_hosts.allows_any() {
            Check::fail(
                "allowed-hosts",
                "every host is allowed: redirects and the CSRF origin follow the client's Host",
                "list the site's host names in PORTCULLIS_ALLOWED_HOSTS",
            )
        } else {
            Check::pass("allowed-hosts", format!("{:?}", self.allowed_hosts))
        });

        checks.push(match (&self.tls, proxy_terminates_tls) {
            (Some(tls), _) => match (tls.cert.is_file(), tls.key.is_file()) {
                (true, true) => Check::pass("https", "built-in TLS is configured"),
                _ => Check::fail(
                    "https",
                    format!(
                        "TLS files not found: {} / {}",
                        tls.cert.display(),
                        tls.key.display()
                    ),
                    "point PORTCULLIS_TLS_CERT and PORTCULLIS_TLS_KEY at readable PEM files",
                ),
            },
            (None, true) => Check::pass(
                "https",
                "TLS terminates at a trusted proxy (PORTCULLIS_TRUSTED_PROXIES)",
            ),
            (None, false) => Check::fail(
                "https",
                "neither built-in TLS nor a trusted proxy (of a sound network) is configured",
                "set PORTCULLIS_TLS_CERT and PORTCULLIS_TLS_KEY, or PORTCULLIS_TRUSTED_PROXIES to the proxy that terminates TLS",
            ),
        });

        let wildcard = self.cors_origins.iter().any(|o| o == "*");
        let plain_http: Vec<&str> = self
            .cors_origins
            .iter()
            .map(String::as_str)
            .filter(|o| o.to_ascii_lowercase().starts_with("http://") && !is_loopback_origin(o))
            .collect();
        checks.push(if wildcard && self.cors_credentials {
            Check::fail(
                "cors",
                "CORS would allow any origin (*) with credentials",
                "list the allowed origins in PORTCULLIS_CORS_ORIGINS",
            )
        } else if self.cors_credentials && !plain_http.is_empty() {
            Check::fail(
                "cors",
                format!(
                    "credentials are allowed to plain-HTTP origins ({}): anyone on their network can inject a script that calls the API as the user",
                    plain_http.join(", ")
                ),
                "use https:// origins in PORTCULLIS_CORS_ORIGINS",
            )
        } else {
            Check::pass("cors", "no wildcard or plain-HTTP origin with credentials")
        });
    }
}
