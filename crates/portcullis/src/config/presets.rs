//! What a [`Settings`] describes, built: the secure stack, CORS. Environment-driven
//! presets live here, with the settings, so that the layers never depend on how an
//! app reads its configuration.

use crate::client_ip::{ClientInfoConfig, Scheme};
#[cfg(feature = "cors")]
use crate::cors::CorsConfig;
use crate::https::HttpsRedirectConfig;
#[cfg(feature = "ratelimit")]
use crate::ratelimit::RateLimitConfig;
#[cfg(feature = "session")]
use crate::session::SessionConfig;
use crate::stack::SecureStack;

use super::Settings;

impl Settings {
    /// The stack for these settings: trusted proxies, the socket's scheme with
    /// built-in TLS, the allowed hosts (`PORTCULLIS_ALLOWED_HOSTS`, plus the loopback
    /// names in development; `/healthz` answers whatever the host), and the HTTPS
    /// redirect outside development.
    ///
    /// ```
    /// use portcullis::config::Settings;
    ///
    /// let settings = Settings::from_lookup(|_| None).unwrap();
    /// let app = settings.secure_stack().apply(axum::Router::new()).unwrap();
    /// ```
    pub fn secure_stack(&self) -> SecureStack {
        let mut client_info =
            ClientInfoConfig::default().trusted_proxies(self.trusted_proxies.clone());
        if self.trust_forwarded_host {
            client_info = client_info.trust_forwarded_host();
        }
        let stack = SecureStack::default()
            .allowed_hosts(self.served_hosts())
            .any_host_for("/healthz");
        let redirect = HttpsRedirectConfig::default().exempt("/healthz");
        let stack = match (&self.tls, self.addr.port()) {
            (Some(_), port) => {
                client_info = client_info.connection_scheme(Scheme::Https);
                if port == 443 {
                    stack.https_redirect(HttpsRedirectConfig::default())
                } else {
                    stack.https_redirect(redirect.https_port(port))
                }
            }
            (None, _) => stack.https_redirect(redirect),
        };
        let stack = if self.is_production() {
            stack
        } else {
            stack.without_https_redirect()
        };
        stack.client_info(client_info)
    }

    #[cfg(feature = "cors")]
    /// The CORS settings: the origins of `PORTCULLIS_CORS_ORIGINS` and the
    /// credentials setting of `PORTCULLIS_CORS_CREDENTIALS`; the rest as `Default`.
    ///
    /// ```
    /// use portcullis::config::Settings;
    ///
    /// let settings = Settings::from_lookup(|name| match name {
    ///     "PORTCULLIS_CORS_ORIGINS" => Some("https://app.example.com".to_owned()),
    ///     "PORTCULLIS_CORS_CREDENTIALS" => Some("true".to_owned()),
    ///     _ => None,
    /// })
    /// .unwrap();
    /// assert!(settings.cors_config().layer().is_ok());
    /// ```
    pub fn cors_config(&self) -> CorsConfig {
        let config = CorsConfig::default().origins(self.cors_origins.iter().cloned());
        if self.cors_credentials {
            config.allow_credentials()
        } else {
            config
        }
    }

    /// The contract's rate limits, in the mode `PORTCULLIS_RATE_LIMITS` names.
    ///
    /// ```
    /// use portcullis::config::Settings;
    ///
    /// let settings = Settings::from_lookup(|name| {
    ///     (name == "PORTCULLIS_RATE_LIMITS").then(|| "bench".to_owned())
    /// })
    /// .unwrap();
    /// let config = settings.rate_limit_config();
    /// ```
    #[cfg(feature = "ratelimit")]
    pub fn rate_limit_config(&self) -> RateLimitConfig {
        RateLimitConfig::default().mode(self.rate_limits)
    }

    /// The session settings: `Secure` cookies, unless `PORTCULLIS_COOKIE_SECURE=false`
    /// (development only; production refuses it) sends them without `Secure` over
    /// plain HTTP.
    ///
    /// ```
    /// use portcullis::config::Settings;
    ///
    /// let settings = Settings::from_lookup(|_| None).unwrap();
    /// let config = settings.session_config();
    /// ```
    #[cfg(feature = "session")]
    pub fn session_config(&self) -> SessionConfig {
        if self.cookie_secure {
            SessionConfig::default()
        } else {
            SessionConfig::default().insecure_cookie_over_plain_http()
        }
    }
}
