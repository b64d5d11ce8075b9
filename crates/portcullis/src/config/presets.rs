//! What a [`Settings`] describes, built: the secure stack, CORS. Environment-driven
//! presets live here, with the settings, so that the layers never depend on how an
//! app reads its configuration.

use crate::client_ip::{ClientInfoConfig, Scheme};
#[cfg(feature = "cors")]
use crate::cors::CorsConfig;
use crate::https::HttpsRedirectConfig;
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
        CorsConfig::default()
            .origins(self.cors_origins.iter().cloned())
            .allow_credentials(self.cors_credentials)
    }
}
