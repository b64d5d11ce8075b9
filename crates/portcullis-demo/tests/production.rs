//! Production refuses to start insecurely: one test per check, each running the real
//! binary and reading its exit status and its one line per problem.

mod common;

use common::{refuse, Demo, STRONG_KEY};

const PROXY: (&str, &str) = ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8");
const PRODUCTION: (&str, &str) = ("PORTCULLIS_ENV", "production");
const KEY: (&str, &str) = ("PORTCULLIS_SECRET_KEY", STRONG_KEY);
const HOSTS: (&str, &str) = ("PORTCULLIS_ALLOWED_HOSTS", "community.example");

fn assert_refused(envs: &[(&str, &str)], check: &str, detail: &str) {
    let (code, stderr) = refuse(envs);
    assert_eq!(code, Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line per problem: {stderr}");
    assert!(
        lines[0].contains(&format!("refusing to start in production: {check}: ")),
        "{stderr}"
    );
    assert!(lines[0].contains(detail), "{stderr}");
}

#[test]
fn missing_secret_key_is_refused() {
    assert_refused(&[PRODUCTION, HOSTS, PROXY], "secret-key", "no secret key");
}

#[test]
fn known_example_keys_are_refused() {
    for example in [
        "your_secret_key",
        "supersecretkey",
        "my-super-secret-key",
        "development-key",
        "1234567890",
        "secret",
        "changeme",
        "replace-with-the-output-of-portcullis-keygen",
    ] {
        assert_refused(
            &[PRODUCTION, HOSTS, PROXY, ("PORTCULLIS_SECRET_KEY", example)],
            "secret-key",
            "well-known example",
        );
    }
}

#[test]
fn short_and_low_entropy_keys_are_refused() {
    assert_refused(
        &[
            PRODUCTION,
            HOSTS,
            PROXY,
            ("PORTCULLIS_SECRET_KEY", "Zm9vYmFyYmF6cXV4"),
        ],
        "secret-key",
        "bytes long",
    );
    assert_refused(
        &[
            PRODUCTION,
            HOSTS,
            PROXY,
            ("PORTCULLIS_SECRET_KEY", &"ab".repeat(40)),
        ],
        "secret-key",
        "pattern",
    );
    assert_refused(
        &[
            PRODUCTION,
            HOSTS,
            PROXY,
            (
                "PORTCULLIS_SECRET_KEY",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbbbbbbbb",
            ),
        ],
        "secret-key",
        "",
    );
}

#[test]
fn key_file_with_a_weak_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, "changeme\n").unwrap();
    assert_refused(
        &[
            PRODUCTION,
            HOSTS,
            PROXY,
            ("PORTCULLIS_SECRET_KEY_FILE", path.to_str().unwrap()),
        ],
        "secret-key",
        "well-known example",
    );
}

#[test]
fn weak_or_empty_fallback_key_is_refused() {
    assert_refused(
        &[
            PRODUCTION,
            HOSTS,
            PROXY,
            KEY,
            ("PORTCULLIS_SECRET_KEY_FALLBACKS", "supersecretkey"),
        ],
        "secret-key-fallbacks",
        "fallback 1",
    );
    assert_refused(
        &[
            PRODUCTION,
            HOSTS,
            PROXY,
            KEY,
            (
                "PORTCULLIS_SECRET_KEY_FALLBACKS",
                &format!("{STRONG_KEY},,"),
            ),
        ],
        "secret-key-fallbacks",
        "fallback 2 is empty",
    );
}

#[test]
fn cookies_without_secure_are_refused() {
    assert_refused(
        &[
            PRODUCTION,
            HOSTS,
            PROXY,
            KEY,
            ("PORTCULLIS_COOKIE_SECURE", "false"),
        ],
        "secure-cookies",
        "without Secure",
    );
}

#[test]
fn neither_tls_nor_trusted_proxy_is_refused() {
    assert_refused(
        &[PRODUCTION, HOSTS, KEY],
        "https",
        "neither built-in TLS nor a trusted proxy",
    );
}

#[test]
fn cors_wildcard_with_credentials_is_refused() {
    assert_refused(
        &[
            PRODUCTION,
            HOSTS,
            PROXY,
            KEY,
            ("PORTCULLIS_CORS_ORIGINS", "*"),
            ("PORTCULLIS_CORS_CREDENTIALS", "true"),
        ],
        "cors",
        "any origin (*) with credentials",
    );
}

#[test]
fn benchmark_rate_limits_are_refused() {
    assert_refused(
        &[
            PRODUCTION,
            HOSTS,
            PROXY,
            KEY,
            ("PORTCULLIS_RATE_LIMITS", "bench"),
        ],
        "rate-limits",
        "benchmark mode",
    );
}

#[test]
fn in_memory_state_with_several_instances_is_refused() {
    assert_refused(
        &[
            PRODUCTION,
            HOSTS,
            PROXY,
            KEY,
            ("PORTCULLIS_INSTANCES", "2"),
            ("DATABASE_URL", "postgres://127.0.0.1/app"),
        ],
        "shared-state",
        "kept in memory",
    );
}

#[test]
fn every_problem_gets_its_own_line() {
    let (code, stderr) = refuse(&[
        PRODUCTION,
        HOSTS,
        ("PORTCULLIS_COOKIE_SECURE", "false"),
        ("PORTCULLIS_RATE_LIMITS", "bench"),
    ]);
    assert_eq!(code, Some(2));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    for check in ["secret-key", "secure-cookies", "https", "rate-limits"] {
        assert!(
            lines.iter().any(|l| l.contains(&format!(": {check}: "))),
            "{check}: {stderr}"
        );
    }
}

#[test]
fn unreadable_configuration_is_refused_in_any_environment() {
    let (code, stderr) = refuse(&[("PORTCULLIS_TRUSTED_PROXIES", "not-a-network")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("PORTCULLIS_TRUSTED_PROXIES"), "{stderr}");
}

#[tokio::test]
async fn a_sound_production_configuration_starts_and_redirects_plain_http() {
    let demo = Demo::start(&[
        PRODUCTION,
        HOSTS,
        KEY,
        ("PORTCULLIS_TRUSTED_PROXIES", "127.0.0.1"),
    ]);
    let http = common::client();
    // The load balancer's health check stays reachable over plain HTTP.
    let health = http.get(demo.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // A browser on plain HTTP is sent to HTTPS, path and query kept.
    let plain = http
        .get(demo.url("/?page=2"))
        .header("host", "community.example")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 308);
    assert_eq!(
        plain.headers()["location"],
        "https://community.example/?page=2"
    );
    // Through the proxy, over HTTPS: served, with HSTS.
    let proxied = http
        .get(demo.url("/"))
        .header("host", "community.example")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200);
    assert_eq!(
        proxied.headers()["strict-transport-security"],
        "max-age=63072000; includeSubDomains"
    );
    assert!(!demo.log_text().contains("random key"));
}

#[test]
fn production_without_allowed_hosts_is_refused() {
    assert_refused(
        &[PRODUCTION, PROXY, KEY],
        "allowed-hosts",
        "no allowed host",
    );
}

#[test]
fn a_passphrase_as_secret_key_is_refused() {
    assert_refused(
        &[
            PRODUCTION,
            HOSTS,
            PROXY,
            (
                "PORTCULLIS_SECRET_KEY",
                "correct horse battery staple is great",
            ),
        ],
        "secret-key",
        "passphrase",
    );
}

#[test]
fn trusting_every_address_as_a_proxy_is_refused() {
    let (code, stderr) = refuse(&[
        PRODUCTION,
        HOSTS,
        KEY,
        ("PORTCULLIS_TRUSTED_PROXIES", "0.0.0.0/0"),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(": trusted-proxies: "), "{stderr}");
    // Nor does such a "proxy" count as the one that terminates TLS.
    assert!(stderr.contains(": https: "), "{stderr}");
}

#[test]
fn several_instances_without_a_shared_key_are_refused_even_in_development() {
    let (code, stderr) = refuse(&[("PORTCULLIS_INSTANCES", "2")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("PORTCULLIS_INSTANCES=2"), "{stderr}");
}

#[test]
fn development_on_a_public_address_is_refused() {
    let (code, stderr) = refuse(&[("PORTCULLIS_ADDR", "0.0.0.0:0")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not a loopback address"), "{stderr}");
}

#[tokio::test]
async fn hosts_outside_the_list_get_400_and_forwarded_hosts_do_not_steer_the_redirect() {
    let demo = Demo::start(&[
        PRODUCTION,
        HOSTS,
        KEY,
        ("PORTCULLIS_TRUSTED_PROXIES", "127.0.0.1"),
    ]);
    let http = common::client();
    // A DNS-rebinding or cache-poisoning attempt: the attacker's name in Host.
    for host in [
        "evil.example",
        "community.example.evil.example",
        "127.0.0.1",
    ] {
        let response = http
            .get(demo.url("/?page=2"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{host}");
        assert!(!response.headers().contains_key("location"), "{host}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
    // The trusted proxy passes the client's X-Forwarded-Host through: the redirect
    // still goes to the Host the proxy was asked for.
    let redirect = http
        .get(demo.url("/login"))
        .header("host", "community.example")
        .header("x-forwarded-host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(
        redirect.headers()["location"],
        "https://community.example/login"
    );
    // The health check answers by IP address.
    let health = http.get(demo.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(demo
        .log_text()
        .contains("refused a request for a host that is not allowed"));
}

#[tokio::test]
async fn development_answers_loopback_names_only() {
    let demo = Demo::start(&[]);
    let http = common::client();
    let rebound = http
        .get(demo.url("/"))
        .header("host", "attacker.example:8000")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 400);
    for host in ["localhost:8000", "127.0.0.1:8000", "[::1]:8000"] {
        let ok = http
            .get(demo.url("/"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200, "{host}");
    }
}
