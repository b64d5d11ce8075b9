//! The SMTP URL: what it says, what it may say, and the lettre transport built from it.

use std::net::IpAddr;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::MailConfigError;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Security {
    /// `smtps://`: TLS from the first byte (port 465 by default).
    ImplicitTls,
    /// `smtp://…?tls=required`: STARTTLS, and no mail if the server does not offer it
    /// (port 587 by default).
    StartTls,
    /// `smtp://` on loopback only: a local relay (port 25 by default).
    Plain,
}

/// A checked SMTP URL.
#[derive(Debug)]
pub(crate) struct SmtpUrl {
    /// The host to connect to and to verify the certificate against: an IP address
    /// without brackets, or a domain.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) security: Security,
    credentials: Option<(String, String)>,
}

/// Whether `host` is this machine: 127.0.0.0/8, ::1 or `localhost`.
fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        // `smtp` is not a scheme the URL standard knows, so an IPv4 address arrives as
        // an opaque name; Rust's parser takes only the dotted-decimal form, and any
        // other spelling (`0x7f.1`) counts as remote, which only asks for more.
        url::Host::Domain(domain) => {
            if let Ok(ip) = domain.parse::<IpAddr>() {
                return ip.is_loopback();
            }
            let domain = domain.trim_end_matches('.');
            domain.eq_ignore_ascii_case("localhost")
                || domain.to_ascii_lowercase().ends_with(".localhost")
        }
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

fn percent_decoded(text: &str) -> Result<String, MailConfigError> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| MailConfigError::InvalidUrl)
}

impl SmtpUrl {
    /// Parses `url`, refusing anything that would send in clear beyond loopback.
    pub(crate) fn parse(url: &str) -> Result<Self, MailConfigError> {
        let parsed = url::Url::parse(url.trim()).map_err(|_| MailConfigError::InvalidUrl)?;
        let scheme = parsed.scheme();
        if scheme != "smtp" && scheme != "smtps" {
            return Err(MailConfigError::Scheme(scheme.to_owned()));
        }
        let host = parsed.host().ok_or(MailConfigError::InvalidUrl)?;
        let loopback = is_loopback(&host);
        let host_name = match host {
            url::Host::Domain(domain) => domain.to_owned(),
            // lettre resolves `(host, port)`: an IPv6 address goes without brackets.
            url::Host::Ipv4(ip) => IpAddr::from(ip).to_string(),
            url::Host::Ipv6(ip) => IpAddr::from(ip).to_string(),
        };
        let mut tls = None;
        for (key, value) in parsed.query_pairs() {
            match &*key {
                "tls" if tls.is_none() => tls = Some(value.into_owned()),
                // A repeated `tls` could be read two ways: refuse it.
                "tls" => return Err(MailConfigError::TlsSetting(value.into_owned())),
                _ => return Err(MailConfigError::InvalidUrl),
            }
        }
        let security = match (scheme, tls.as_deref()) {
            ("smtps", None) => Security::ImplicitTls,
            ("smtp", Some("required")) => Security::StartTls,
            ("smtp", None) if loopback => Security::Plain,
            ("smtp", None) => return Err(MailConfigError::PlainTextRemote { host: host_name }),
            (_, Some(other)) => return Err(MailConfigError::TlsSetting(other.to_owned())),
            _ => return Err(MailConfigError::InvalidUrl),
        };
        let port = parsed.port().unwrap_or(match security {
            Security::ImplicitTls => 465,
            Security::StartTls => 587,
            Security::Plain => 25,
        });
        let credentials = match (parsed.username(), parsed.password()) {
            ("", None) => None,
            (user, password) => Some((
                percent_decoded(user)?,
                percent_decoded(password.unwrap_or_default())?,
            )),
        };
        Ok(Self {
            host: host_name,
            port,
            security,
            credentials,
        })
    }

    /// The lettre transport's builder, trusting the Mozilla roots plus
    /// `extra_roots_pem`. Built into a transport on first use: with a connection pool,
    /// building spawns the pool's task, which needs a Tokio runtime.
    pub(crate) fn transport(
        self,
        extra_roots_pem: Option<&[u8]>,
    ) -> Result<AsyncSmtpTransportBuilder, MailConfigError> {
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host).port(self.port);
        if self.security != Security::Plain {
            let mut params = TlsParameters::builder(self.host.clone());
            if let Some(pem) = extra_roots_pem {
                let roots = CertificateDer::pem_slice_iter(pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| MailConfigError::RootCertificate(Some(Box::new(e))))?;
                if roots.is_empty() {
                    return Err(MailConfigError::RootCertificate(None));
                }
                for root in roots {
                    let root = Certificate::from_der(root.to_vec())
                        .map_err(|e| MailConfigError::RootCertificate(Some(Box::new(e))))?;
                    params = params.add_root_certificate(root);
                }
            }
            let params = params
                .build_rustls()
                .map_err(|e| MailConfigError::Tls(Box::new(e)))?;
            builder = builder.tls(match self.security {
                Security::ImplicitTls => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        }
        if let Some((user, password)) = self.credentials {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(builder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> MailConfigError {
        SmtpUrl::parse(url).unwrap_err()
    }

    #[test]
    fn tls_is_required_beyond_loopback() {
        assert!(matches!(
            refused("smtp://user:pw@mail.example.com"),
            MailConfigError::PlainTextRemote { host } if host == "mail.example.com"
        ));
        assert!(matches!(
            refused("smtp://10.0.0.5:25"),
            MailConfigError::PlainTextRemote { .. }
        ));
        // A name that merely starts like loopback is not loopback.
        assert!(matches!(
            refused("smtp://localhost.example.com"),
            MailConfigError::PlainTextRemote { .. }
        ));
        assert!(matches!(
            refused("smtp://127.0.0.1.nip.io"),
            MailConfigError::PlainTextRemote { .. }
        ));
        // Opportunistic STARTTLS can be stripped on the path: refused, even on loopback.
        assert!(matches!(
            refused("smtp://mail.example.com?tls=opportunistic"),
            MailConfigError::TlsSetting(_)
        ));
        assert!(matches!(
            refused("smtp://mail.example.com?tls=required&tls=none"),
            MailConfigError::TlsSetting(_)
        ));
        assert!(matches!(
            refused("smtps://mail.example.com?tls=none"),
            MailConfigError::TlsSetting(_)
        ));
        assert!(matches!(
            refused("http://mail.example.com"),
            MailConfigError::Scheme(s) if s == "http"
        ));
        assert!(matches!(refused("not a url"), MailConfigError::InvalidUrl));
        assert!(matches!(
            refused("smtp://mail.example.com?tls=required&password=x"),
            MailConfigError::InvalidUrl
        ));
    }

    #[test]
    fn each_accepted_form_and_its_default_port() {
        let url = SmtpUrl::parse("smtps://u%40x:p%3Aw@mail.example.com").unwrap();
        assert_eq!((url.security, url.port), (Security::ImplicitTls, 465));
        assert_eq!(url.credentials, Some(("u@x".to_owned(), "p:w".to_owned())));
        let url = SmtpUrl::parse("smtp://mail.example.com?tls=required").unwrap();
        assert_eq!((url.security, url.port), (Security::StartTls, 587));
        assert_eq!(url.credentials, None);
        for local in [
            "smtp://127.0.0.1:2525",
            "smtp://127.1.2.3",
            "smtp://[::1]:25",
            "smtp://localhost",
            "smtp://LOCALHOST.",
        ] {
            let url = SmtpUrl::parse(local).unwrap();
            assert_eq!(url.security, Security::Plain, "{local}");
        }
        assert_eq!(SmtpUrl::parse("smtp://[::1]:25").unwrap().host, "::1");
    }

    #[test]
    fn errors_never_repeat_the_password() {
        for url in [
            "smtp://user:hunter2@mail.example.com",
            "smtp://user:hunter2@mail.example.com?tls=maybe",
            "ftp://user:hunter2@mail.example.com",
            "smtp://user:hunter2@",
        ] {
            let error = refused(url);
            assert!(!error.to_string().contains("hunter2"), "{error}");
            assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
        }
    }

    #[test]
    fn extra_roots_must_hold_a_certificate() {
        let url = || SmtpUrl::parse("smtps://mail.example.com").unwrap();
        assert!(matches!(
            url().transport(Some(b"not pem")),
            Err(MailConfigError::RootCertificate(_))
        ));
        assert!(url().transport(None).is_ok());
    }
}
