//! Which TLS versions a server accepts, and when its certificate expires.
//!
//! rustls speaks TLS 1.2 and 1.3 only, which is right for a client and leaves the old
//! versions unprobed; for those the audit sends one hand-written ClientHello offering
//! only that version and reads whether a ServerHello or an alert comes back. Nothing
//! is negotiated further: the connection is closed after the first record.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::fetch::Client;

/// What a server did when offered one protocol version only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    Accepted,
    Refused,
    /// No connection, or an answer that is neither a ServerHello nor an alert.
    Unknown,
}

/// The versions probed, newest first: `(name, outcome)`.
pub(crate) async fn probe_versions(
    client: &Client,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Vec<(&'static str, Offer)> {
    let mut out = Vec::new();
    for (name, version) in [
        ("TLS 1.3", &rustls::version::TLS13),
        ("TLS 1.2", &rustls::version::TLS12),
    ] {
        out.push((
            name,
            rustls_offer(client, host, port, version, timeout).await,
        ));
    }
    for (name, wire) in [("TLS 1.1", 0x0302u16), ("TLS 1.0", 0x0301u16)] {
        let offer = tokio::time::timeout(timeout, legacy_offer(host, port, wire))
            .await
            .unwrap_or(Offer::Unknown);
        out.push((name, offer));
    }
    out
}

async fn rustls_offer(
    client: &Client,
    host: &str,
    port: u16,
    version: &'static rustls::SupportedProtocolVersion,
    timeout: Duration,
) -> Offer {
    let Ok((config, _)) = client.tls_config(&[version], true) else {
        return Offer::Unknown;
    };
    let Ok(name) = ServerName::try_from(host.to_owned()) else {
        return Offer::Unknown;
    };
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        Some(
            tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .is_ok(),
        )
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Some(true)) => Offer::Accepted,
        Ok(Some(false)) => Offer::Refused,
        _ => Offer::Unknown,
    }
}

/// Offers exactly `version` (0x0301 TLS 1.0, 0x0302 TLS 1.1) with the cipher suites
/// those versions used, and reads the first record of the answer.
async fn legacy_offer(host: &str, port: u16, version: u16) -> Offer {
    let Ok(mut tcp) = tokio::net::TcpStream::connect((host, port)).await else {
        return Offer::Unknown;
    };
    if tcp.write_all(&client_hello(host, version)).await.is_err() {
        return Offer::Unknown;
    }
    let mut head = [0u8; 5];
    if tcp.read_exact(&mut head).await.is_err() {
        // Closed without a word: the version is not spoken.
        return Offer::Refused;
    }
    match head[0] {
        0x15 => Offer::Refused,
        0x16 => {
            let mut hello = [0u8; 6];
            if tcp.read_exact(&mut hello).await.is_err() || hello[0] != 2 {
                return Offer::Unknown;
            }
            if u16::from_be_bytes([hello[4], hello[5]]) == version {
                Offer::Accepted
            } else {
                Offer::Refused
            }
        }
        _ => Offer::Unknown,
    }
}

fn client_hello(host: &str, version: u16) -> Vec<u8> {
    // ECDHE and RSA key exchange with AES-CBC and 3DES: what TLS 1.0 and 1.1 servers offer.
    const SUITES: [u16; 7] = [0xc013, 0xc014, 0xc009, 0xc00a, 0x002f, 0x0035, 0x000a];
    let mut extensions = Vec::new();
    if host.parse::<std::net::IpAddr>().is_err() {
        let name = host.as_bytes();
        let mut sni = Vec::new();
        push_u16(&mut sni, name.len() as u16 + 3);
        sni.push(0);
        push_u16(&mut sni, name.len() as u16);
        sni.extend_from_slice(name);
        extension(&mut extensions, 0x0000, &sni);
    }
    // Groups x25519, secp256r1, secp384r1; uncompressed points; secure renegotiation.
    extension(&mut extensions, 0x000a, &[0, 6, 0, 0x1d, 0, 0x17, 0, 0x18]);
    extension(&mut extensions, 0x000b, &[1, 0]);
    extension(&mut extensions, 0xff01, &[0]);

    let mut body = Vec::new();
    push_u16(&mut body, version);
    let mut random = [0u8; 32];
    let _ = getrandom::fill(&mut random);
    body.extend_from_slice(&random);
    body.push(0); // no session id
    push_u16(&mut body, (SUITES.len() * 2) as u16);
    for suite in SUITES {
        push_u16(&mut body, suite);
    }
    body.extend_from_slice(&[1, 0]); // null compression only
    push_u16(&mut body, extensions.len() as u16);
    body.extend_from_slice(&extensions);

    let mut handshake = vec![1];
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    push_u16(&mut record, handshake.len() as u16);
    record.extend_from_slice(&handshake);
    record
}

fn extension(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    push_u16(out, kind);
    push_u16(out, data.len() as u16);
    out.extend_from_slice(data);
}

fn push_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_be_bytes());
}

/// The certificate's subject and its last valid moment (Unix seconds).
pub(crate) fn certificate_dates(leaf: &CertificateDer<'_>) -> Option<(String, i64)> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    Some((
        cert.subject().to_string(),
        cert.validity().not_after.timestamp(),
    ))
}

/// Verifies as rustls does, and records the outcome; `insecure` goes on after a
/// failure so that the rest of the site can still be graded.
#[derive(Debug)]
pub(crate) struct RecordingVerifier {
    pub(crate) inner: Arc<WebPkiServerVerifier>,
    pub(crate) insecure: bool,
    pub(crate) outcome: Arc<Mutex<Option<String>>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => Ok(verified),
            Err(error) => {
                // A poisoned lock still holds a usable slot: nothing panics while it is held.
                let mut slot = self
                    .outcome
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                *slot = Some(error.to_string());
                if self.insecure {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(error)
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_hello_is_one_well_formed_record() {
        let hello = client_hello("example.com", 0x0301);
        assert_eq!(&hello[..3], &[0x16, 0x03, 0x01]);
        let length = u16::from_be_bytes([hello[3], hello[4]]) as usize;
        assert_eq!(hello.len(), 5 + length);
        assert_eq!(hello[5], 1, "a ClientHello");
        let inner = u32::from_be_bytes([0, hello[6], hello[7], hello[8]]) as usize;
        assert_eq!(inner + 4, length);
        assert_eq!(&hello[9..11], &[0x03, 0x01]);
        assert!(hello.windows(11).any(|w| w == b"example.com"));
        // An address is not a server name.
        assert!(!client_hello("127.0.0.1", 0x0302)
            .windows(9)
            .any(|w| w == b"127.0.0.1"));
    }
}
