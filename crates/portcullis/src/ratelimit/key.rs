//! How a request's keys are made: the client's address block, and the username it
//! submits, read wherever the handler's extractors could read one.
//!
//! A key names its group, its kind and the counted value (`auth:ip:192.0.2.7`,
//! `auth:user:alice`), so that a store only has to count under it.

use std::fmt;
use std::net::IpAddr;

use axum::http::{header, HeaderMap, Method};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::client_ip::{client_block, AddressText};

#[derive(Clone, Copy)]
pub(crate) enum KeyKind {
    Ip,
    User,
}

impl KeyKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::User => "user",
        }
    }
}

/// The store key for `value` of `kind` in `group`: `group:kind:value`. A group name
/// has no `:`, so the kind is always the second field.
pub(crate) fn store_key(group: &str, kind: KeyKind, value: &str) -> String {
    format!("{group}:{}:{value}", kind.as_str())
}

/// Whether a store key names a user (see [`store_key`]).
pub(crate) fn is_username_key(key: &str) -> bool {
    key.split(':').nth(1) == Some(KeyKind::User.as_str())
}

/// The store key of the address block of `ip` in `group` (`group:ip:192.0.2.7`,
/// `group:ip:2001:db8:1:2::/64`), as [`store_key`] makes it but in one allocation:
/// this runs for every request a rule counts.
pub(crate) fn ip_store_key(group: &str, ip: IpAddr) -> String {
    let mut key = String::with_capacity(group.len() + ":ip:".len() + IP_BLOCK_MAX);
    key.push_str(group);
    key.push(':');
    key.push_str(KeyKind::Ip.as_str());
    key.push(':');
    push_ip_block(&mut key, ip);
    key
}

/// The longest [`push_ip_block`] writes: `ffff:ffff:ffff:ffff::/64`.
const IP_BLOCK_MAX: usize = 24;

/// [`client_block`] as text: `192.0.2.7`, `2001:db8:1:2::/64`.
fn push_ip_block(out: &mut String, ip: IpAddr) {
    match client_block(ip) {
        IpAddr::V4(v4) => out.push_str(AddressText::ipv4(v4, &mut [0; 15])),
        IpAddr::V6(v6) => {
            use std::fmt::Write as _;
            let s = v6.segments();
            // Writing to a `String` cannot fail.
            let _ = write!(out, "{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]);
        }
    }
}

/// [`client_block`] as a key.
#[cfg(test)]
pub(crate) fn ip_key(ip: IpAddr) -> String {
    let mut key = String::new();
    push_ip_block(&mut key, ip);
    key
}

// Longer usernames are hashed so that a key's size stays small whatever a client sends.
const MAX_PLAIN_USERNAME: usize = 64;

/// The username as counted: [`crate::input::username_key`] (trimmed, NFC, lowercase),
/// the name under which the handler finds one account; `None` when empty.
fn username_key(raw: &str) -> Option<String> {
    let name = crate::input::username_key(raw);
    if name.is_empty() {
        return None;
    }
    // `#` marks a hash; a name that starts with one is hashed too, so none collide.
    if name.len() > MAX_PLAIN_USERNAME || name.starts_with('#') {
        return Some(format!(
            "#{}",
            URL_SAFE_NO_PAD.encode(Sha256::digest(name.as_bytes()))
        ));
    }
    Some(name)
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Username {
    None,
    One(String),
    Several,
}

/// Where the handler's extractors can read a username from, by the rules of axum
/// 0.8's own extractors, so that the limiter reads every place the handler might:
///
/// - `Form` reads the query string of a `GET`, and otherwise the body when the
///   `Content-Type` header, as text, *starts with* `application/x-www-form-urlencoded`
///   (a byte prefix: `application/x-www-form-urlencodedX` is read as a form);
/// - `Json` reads the body when the header parses as a media type `application/json`
///   or `application/*+json`, whatever the method.
///
/// Both look at the first `Content-Type` header only, as this does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UsernameSources {
    query: bool,
    form_body: bool,
    json_body: bool,
}

impl UsernameSources {
    pub(crate) fn of(method: &Method, headers: &HeaderMap) -> Self {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        let is_get = method == Method::GET;
        let form_body = !is_get
            && content_type.is_some_and(|value| {
                value.starts_with(mime::APPLICATION_WWW_FORM_URLENCODED.as_ref())
            });
        let json_body = content_type
            .and_then(|value| value.parse::<mime::Mime>().ok())
            .is_some_and(|media| {
                media.type_() == mime::APPLICATION
                    && (media.subtype() == mime::JSON
                        || media.suffix().is_some_and(|suffix| suffix == mime::JSON))
            });
        Self {
            query: is_get,
            form_body,
            json_body,
        }
    }

    /// Whether a handler could read a username at all: when not, the request is
    /// refused (415) rather than let through uncounted.
    pub(crate) fn any(self) -> bool {
        self.query || self.form_body || self.json_body
    }

    pub(crate) fn reads_body(self) -> bool {
        self.form_body || self.json_body
    }
}

/// Why a body on a username-counted route is refused before it is counted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum UnreadableUsername {
    /// JSON that is not an object: serde reads a struct from an array as well, by
    /// position, where no field is called `username`.
    NotAnObject,
}

/// The `username` values of a urlencoded form, decoded pair by pair.
fn form_usernames(bytes: &[u8]) -> impl Iterator<Item = std::borrow::Cow<'_, str>> {
    form_urlencoded::parse(bytes)
        .filter(|(key, _)| key == "username")
        .map(|(_, value)| value)
}

/// The `username` of every source the handler may read (see [`UsernameSources`]).
/// Bodies that do not parse name nobody: the handler refuses them anyway.
pub(crate) fn find_username(
    sources: UsernameSources,
    query: &str,
    body: &[u8],
) -> Result<Username, UnreadableUsername> {
    let mut json_names = Vec::new();
    if sources.json_body {
        let first = body
            .iter()
            .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
        if first != Some(&b'{') {
            return Err(UnreadableUsername::NotAnObject);
        }
        if let Ok(names) = serde_json::from_slice::<JsonUsernames>(body) {
            json_names = names.0;
        }
    }
    // Pair by pair: nothing is kept of the other fields, and reading stops at a
    // second, different username.
    let query_names = sources
        .query
        .then(|| form_usernames(query.as_bytes()))
        .into_iter()
        .flatten();
    let body_names = sources
        .form_body
        .then(|| form_usernames(body))
        .into_iter()
        .flatten();
    Ok(one_username(query_names.chain(body_names).chain(
        json_names.into_iter().map(std::borrow::Cow::Owned),
    )))
}

/// `One` when every non-empty value names the same user (after [`username_key`]),
/// `Several` as soon as one names another.
fn one_username<'a>(values: impl Iterator<Item = std::borrow::Cow<'a, str>>) -> Username {
    let mut found: Option<String> = None;
    for value in values {
        let Some(name) = username_key(&value) else {
            continue;
        };
        match &found {
            None => found = Some(name),
            Some(first) if *first == name => {}
            Some(_) => return Username::Several,
        }
    }
    found.map_or(Username::None, Username::One)
}

/// Every top-level `"username"` string of a JSON object, duplicates included: parsers
/// disagree on which duplicate wins, so all of them are seen.
struct JsonUsernames(Vec<String>);

impl<'de> serde::Deserialize<'de> for JsonUsernames {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = JsonUsernames;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut names = Vec::new();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "username" {
                        if let serde_json::Value::String(name) = map.next_value()? {
                            names.push(name);
                        }
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(JsonUsernames(names))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_and_long_ones_hashed() {
        assert_eq!(username_key("  Alice "), Some("alice".to_owned()));
        assert_eq!(username_key("ALICE"), username_key("alice\t"));
        assert_eq!(username_key("   "), None);
        // NFC, as the handler reads names: KELVIN SIGN is `K`.
        assert_eq!(username_key("\u{212A}elvin"), Some("kelvin".to_owned()));
        let long = username_key(&"a".repeat(10_000)).unwrap();
        assert!(long.starts_with('#') && long.len() < 50, "{long}");
        // A name that looks like a hash is hashed itself, so it cannot collide with one.
        let fake = format!("#{}", &long[1..]);
        assert_ne!(username_key(&fake).unwrap(), long);
    }

    /// The key written by hand is the address as `Ipv4Addr` displays it, for every
    /// octet in every position, so that no two addresses share a bucket.
    #[test]
    fn ipv4_keys_are_the_address_as_written() {
        for octet in 0..=255u8 {
            for position in 0..4 {
                let mut octets = [192, 0, 2, 7];
                octets[position] = octet;
                let ip = std::net::Ipv4Addr::from(octets);
                assert_eq!(ip_key(IpAddr::V4(ip)), ip.to_string());
                assert_eq!(
                    ip_store_key("auth", IpAddr::V4(ip)),
                    store_key("auth", KeyKind::Ip, &ip.to_string())
                );
            }
        }
        let widest = ip_store_key("g", "ffff:ffff:ffff:ffff:1::1".parse().unwrap());
        assert_eq!(widest, "g:ip:ffff:ffff:ffff:ffff::/64");
        assert_eq!(widest.len(), "g:ip:".len() + IP_BLOCK_MAX);
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let a = ip_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = ip_key("2001:db8:1:2:bbbb::2".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_ne!(a, ip_key("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(ip_key("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
    }

    fn sources(method: Method, content_type: &str) -> UsernameSources {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
        UsernameSources::of(&method, &headers)
    }

    #[test]
    fn usernames_are_found_in_forms_and_json() {
        let form = sources(Method::POST, "application/x-www-form-urlencoded");
        let json = sources(Method::POST, "application/json");
        let one = |name: &str| Ok(Username::One(name.to_owned()));
        let find = |sources, body: &[u8]| find_username(sources, "", body);
        assert_eq!(find(form, b"username=Alice+&password=x"), one("alice"));
        assert_eq!(
            find(json, br#"{"password":"x","username":" ALICE"}"#),
            one("alice")
        );
        assert_eq!(find(json, br#"{"username":7}"#), Ok(Username::None));
        assert_eq!(find(json, b"{broken"), Ok(Username::None));
        assert_eq!(find(form, b"password=x"), Ok(Username::None));
        // serde reads a struct from an array too, by position: refused.
        assert_eq!(
            find(json, br#" ["victim", "guess"]"#),
            Err(UnreadableUsername::NotAnObject)
        );
        assert_eq!(find(json, b""), Err(UnreadableUsername::NotAnObject));
        // Parsers disagree about duplicates: two different names are refused.
        assert_eq!(
            find(form, b"username=a&username=victim"),
            Ok(Username::Several)
        );
        assert_eq!(
            find(json, br#"{"username":"a","username":"victim"}"#),
            Ok(Username::Several)
        );
        assert_eq!(find(form, b"username=bob&username=BOB"), one("bob"));
        // A GET form is read from the query string, as axum's `Form` reads it.
        let get = sources(Method::GET, "text/plain");
        assert_eq!(
            find_username(get, "username=Victim", b"username=other"),
            one("victim")
        );
    }

    #[test]
    fn sources_follow_the_extractors_rules() {
        let form = UsernameSources {
            query: false,
            form_body: true,
            json_body: false,
        };
        let json = UsernameSources {
            query: false,
            form_body: false,
            json_body: true,
        };
        // `Form` takes any type that starts with its own, byte for byte.
        for read_as_form in [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencodedX",
            "application/x-www-form-urlencoded; charset=utf-8",
            "application/x-www-form-urlencoded/evil",
        ] {
            assert_eq!(sources(Method::POST, read_as_form), form, "{read_as_form}");
        }
        for read_as_json in [
            "application/json",
            "application/json;charset=utf-8",
            "application/problem+json",
            "Application/JSON",
        ] {
            assert_eq!(sources(Method::POST, read_as_json), json, "{read_as_json}");
        }
        // Both at once: every name the two could read is counted.
        let both = sources(Method::POST, "application/x-www-form-urlencoded+json");
        assert!(both.form_body && both.json_body);
        assert_eq!(
            find_username(both, "", br#"{"a":"&username=victim&","username":"other"}"#),
            Ok(Username::Several)
        );
        for unread in [
            "text/plain",
            "multipart/form-data; boundary=x",
            " application/x-www-form-urlencoded",
            "APPLICATION/X-WWW-FORM-URLENCODED",
            "text/json",
        ] {
            assert!(!sources(Method::POST, unread).any(), "{unread}");
        }
        assert!(!UsernameSources::of(&Method::POST, &HeaderMap::new()).any());
        assert!(UsernameSources::of(&Method::GET, &HeaderMap::new()).query);
    }
}
