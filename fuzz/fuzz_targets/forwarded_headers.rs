//! `X-Forwarded-*` and `Forwarded` from a trusted proxy, through
//! `ClientInfoConfig::resolve` (what the client-info layer calls per request).
//!
//! The first byte picks the header family and whether forwarded hosts are believed;
//! the rest is header lines `Name: value`.
//!
//! Properties: nothing panics; the host, when there is one, is a plain host (letters,
//! digits, `-.:[]`, a valid authority), since it goes into redirects and the CSRF
//! origin; the origin built from it parses back as a URI; the client address is the
//! peer or comes from the headers.
#![no_main]

use std::net::IpAddr;
use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use libfuzzer_sys::fuzz_target;
use portcullis::client_ip::{ClientInfoConfig, ForwardedHeaders};

const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));

fn configs() -> &'static [ClientInfoConfig; 4] {
    static CONFIGS: OnceLock<[ClientInfoConfig; 4]> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let base = ClientInfoConfig::default().trusted_proxies("10.0.0.0/8".parse().unwrap());
        [
            base.clone().forwarded_headers(ForwardedHeaders::XForwarded),
            base.clone().forwarded_headers(ForwardedHeaders::Forwarded),
            base.clone()
                .forwarded_headers(ForwardedHeaders::XForwarded)
                .trust_forwarded_host(),
            base.forwarded_headers(ForwardedHeaders::Forwarded)
                .trust_forwarded_host(),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut headers = HeaderMap::new();
    for line in rest.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    let config = &configs()[usize::from(mode % 4)];
    let info = config.resolve(PEER, &Uri::from_static("/"), &headers);

    if let Some(host) = &info.host {
        assert!(
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b)),
            "host {host:?}"
        );
        assert!(
            host.parse::<axum::http::uri::Authority>().is_ok(),
            "host {host:?}"
        );
    }
    if let Some(origin) = info.origin() {
        assert!(origin.parse::<Uri>().is_ok(), "origin {origin:?}");
    }
    if info.ip != PEER {
        assert!(!headers.is_empty(), "an address from nowhere");
    }
});
