//! Reading the forwarding headers a trusted proxy writes: `X-Forwarded-For`/`-Proto`/
//! `-Host`, or RFC 7239 `Forwarded`. Each hop is kept in order, unparseable ones as
//! `None`, so that the walk in `config.rs` can stop where the client's own writing
//! begins.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;

use super::Scheme;

/// Which forwarding headers the trusted proxies write.
///
/// Only one family is read: a client must not be able to add `Forwarded` behind a
/// proxy that only maintains `X-Forwarded-For`, or the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeaders {
    /// `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` (nginx, HAProxy, AWS).
    #[default]
    XForwarded,
    /// RFC 7239 `Forwarded: for=…;proto=…;host=…`.
    Forwarded,
}

/// What the forwarding headers say, nearest proxy rightmost.
pub(super) struct Forwarding {
    pub(super) hops: Vec<Option<IpAddr>>,
    pub(super) proto: Option<Scheme>,
    pub(super) host: Option<String>,
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

fn parse_scheme(value: &str) -> Option<Scheme> {
    match value.trim().trim_matches('"').to_ascii_lowercase().as_str() {
        "https" => Some(Scheme::Https),
        "http" => Some(Scheme::Http),
        _ => None,
    }
}

pub(super) fn read_x_forwarded(headers: &HeaderMap) -> Forwarding {
    Forwarding {
        hops: header_values(headers, "x-forwarded-for")
            .map(parse_node)
            .collect(),
        // The nearest proxy's value is the rightmost.
        proto: header_values(headers, "x-forwarded-proto")
            .last()
            .and_then(parse_scheme),
        host: header_values(headers, "x-forwarded-host")
            .last()
            .map(str::to_owned),
    }
}

pub(super) fn read_forwarded(headers: &HeaderMap) -> Forwarding {
    let mut hops = Vec::new();
    let mut proto = None;
    let mut host = None;
    for element in header_values(headers, "forwarded") {
        let mut element_proto = None;
        let mut element_host = None;
        for pair in element.split(';') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match key.trim().to_ascii_lowercase().as_str() {
                "for" => hops.push(parse_node(value)),
                "proto" => element_proto = parse_scheme(value),
                "host" => element_host = Some(value.to_owned()),
                _ => {}
            }
        }
        // The rightmost element is the nearest proxy's.
        proto = element_proto;
        host = element_host;
    }
    Forwarding { hops, proto, host }
}

/// Parses a forwarded node: `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]:80`, `2001:db8::1`.
/// `unknown` and obfuscated identifiers are not addresses.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = node.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    node.strip_prefix('[')
        .and_then(|rest| rest.split(']').next())
        .and_then(|inner| inner.parse::<IpAddr>().ok())
}

/// A host as a client may legitimately send it: a DNS name or an IP, optional port.
pub(super) fn is_valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && !host.starts_with(['.', '-', ':'])
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        && axum::http::uri::Authority::from_str(host).is_ok()
}
