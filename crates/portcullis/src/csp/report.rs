use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::policy::{CspError, DEFAULT_REPORT_PATH};
use crate::client_ip::ClientInfo;
use crate::error::Error;

/// Settings of the violation-report collector.
///
/// ```
/// use portcullis::csp::ReportCollectorConfig;
///
/// let config = ReportCollectorConfig::default();
/// assert_eq!(config.max_body_bytes, 16 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct ReportCollectorConfig {
    /// Where the collector listens.
    pub path: String,
    /// The largest report body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Reports accepted per client IP per minute; more get 429.
    pub per_client_per_minute: u32,
}

impl Default for ReportCollectorConfig {
    fn default() -> Self {
        Self {
            path: DEFAULT_REPORT_PATH.to_owned(),
            max_body_bytes: 16 * 1024,
            per_client_per_minute: 60,
        }
    }
}

struct CollectorState {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    max_body_bytes: usize,
}

/// The most violations of one request logged one by one; the rest are counted.
const MAX_REPORTS_LOGGED: usize = 3;

// Bounds the limiter's memory: past this many tracked clients, idle ones are dropped.
const COLLECTOR_MAX_TRACKED: usize = 10_000;

/// A router with the violation-report collector at `config.path`.
///
/// It accepts `application/csp-report` (`report-uri`) and `application/reports+json`
/// (`report-to`), caps the body, limits each client's rate (an IPv6 client by its
/// /64, as the rate limiter counts it) and logs the first three violations of each
/// request as structured `tracing` events (target `portcullis::csp`) and the number of
/// the others in one more, answering 204.
///
/// ```
/// use portcullis::csp::{report_collector, ReportCollectorConfig};
///
/// let collector = report_collector(ReportCollectorConfig::default()).unwrap();
/// let app: axum::Router = axum::Router::new().merge(collector);
///
/// // Settings that could only refuse every report are refused here.
/// let none = ReportCollectorConfig { per_client_per_minute: 0, ..Default::default() };
/// assert!(report_collector::<()>(none).is_err());
/// ```
pub fn report_collector<S: Clone + Send + Sync + 'static>(
    config: ReportCollectorConfig,
) -> Result<Router<S>, CspError> {
    let Some(per_minute) = NonZeroU32::new(config.per_client_per_minute) else {
        return Err(CspError::InvalidReportCollector(
            "per_client_per_minute is 0: every report would be refused",
        ));
    };
    if config.max_body_bytes == 0 {
        return Err(CspError::InvalidReportCollector(
            "max_body_bytes is 0: every report would be refused",
        ));
    }
    if !config.path.starts_with('/') {
        return Err(CspError::InvalidReportCollector(
            "the path must be absolute, such as /csp-report",
        ));
    }
    let state = Arc::new(CollectorState {
        limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
        max_body_bytes: config.max_body_bytes,
    });
    Ok(Router::new()
        .route(&config.path, post(collect))
        .with_state(state))
}

async fn collect(
    State(state): State<Arc<CollectorState>>,
    client: ClientInfo,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    if state.limiter.len() > COLLECTOR_MAX_TRACKED {
        state.limiter.retain_recent();
    }
    // Keyed like the rate limiter: one IPv6 host owns a /64, and must not get a
    // bucket per address in it.
    if state
        .limiter
        .check_key(&crate::client_ip::client_block(client.ip))
        .is_err()
    {
        return Error::too_many_requests(60).into_response();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if !matches!(
        content_type.as_str(),
        "application/csp-report" | "application/reports+json" | "application/json"
    ) {
        return Error::unsupported_media_type(
            "CSP reports must be application/csp-report or application/reports+json",
        )
        .into_response();
    }
    let bytes: Bytes = match crate::body::read_body(body, state.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused,
    };
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(_) => return Error::bad_request("the report is not valid JSON").into_response(),
    };
    let reports: Vec<&serde_json::Value> = match &value {
        // report-to: an array of reports, each with a `body`.
        serde_json::Value::Array(items) => items
            .iter()
            .filter(|r| r.get("type").and_then(|t| t.as_str()) == Some("csp-violation"))
            .filter_map(|r| r.get("body"))
            .collect(),
        // report-uri: one object under `csp-report`.
        serde_json::Value::Object(_) => value.get("csp-report").into_iter().collect(),
        _ => Vec::new(),
    };
    if reports.is_empty() {
        return Error::bad_request("no CSP violation in the report").into_response();
    }
    // One request, a few lines: a 16 KiB array of tiny reports would otherwise write
    // hundreds, enough to bury other events or fill the log queue.
    let not_logged = reports.len().saturating_sub(MAX_REPORTS_LOGGED);
    for report in reports.into_iter().take(MAX_REPORTS_LOGGED) {
        let field = |names: &[&str]| -> String {
            names
                .iter()
                .find_map(|n| report.get(*n))
                .map(|v| match v {
                    serde_json::Value::String(s) => s.chars().take(512).collect(),
                    other => other.to_string().chars().take(512).collect(),
                })
                .unwrap_or_default()
        };
        // `?`: quoted, so a value cannot pass for another field; the log formatter
        // escapes control characters in every value whatever the sigil.
        tracing::warn!(
            target: "portcullis::csp",
            client_ip = %client.ip,
            document_uri = ?field(&["document-uri", "documentURL"]),
            directive = ?field(&["effective-directive", "effectiveDirective", "violated-directive"]),
            blocked_uri = ?field(&["blocked-uri", "blockedURL"]),
            source_file = ?field(&["source-file", "sourceFile"]),
            line = ?field(&["line-number", "lineNumber"]),
            disposition = ?field(&["disposition"]),
            "CSP violation"
        );
    }
    if not_logged > 0 {
        tracing::warn!(
            target: "portcullis::csp",
            client_ip = %client.ip,
            not_logged,
            "more CSP violations in the same report were not logged"
        );
    }
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::CapturedLog;

    /// The collector behind the client-info layer, as the stack serves it.
    fn collector(per_minute: u32) -> Router {
        report_collector::<()>(ReportCollectorConfig {
            per_client_per_minute: per_minute,
            ..ReportCollectorConfig::default()
        })
        .unwrap()
        .layer(crate::client_ip::ClientInfoConfig::default().layer())
    }

    /// Serves `app` on loopback and posts `body` as a CSP report over a raw socket,
    /// with the log lines written meanwhile: the server runs on this thread (a
    /// current-thread runtime), where the capturing subscriber is the default.
    async fn post_report(app: Router, body: &str) -> (String, String) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let captured = CapturedLog::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(crate::logging::redacting_fields())
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap();
        });
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "POST /csp-report HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\
             content-type: application/csp-report\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let logs = captured.text();
        (response, logs)
    }

    #[tokio::test]
    async fn a_report_cannot_forge_log_lines() {
        let report = serde_json::json!({"csp-report": {
            "document-uri": "https://app.example/\n2026-12-01T00:00:00.000000Z  WARN \
                             portcullis::security: event=\"login\" user=admin\r\u{1b}[2K",
            "violated-directive": "script-src\u{1b}[31m",
            "blocked-uri": "inline\u{2028}forged\u{202e}",
        }})
        .to_string();
        let (response, logs) = post_report(collector(60), &report).await;
        assert!(response.starts_with("HTTP/1.1 204"), "{response}");
        assert_eq!(logs.lines().count(), 1, "{logs}");
        assert!(logs.contains("CSP violation"), "{logs}");
        assert!(logs.contains("\\n2026-12-01T00:00:00.000000Z"), "{logs}");
        assert!(logs.contains("\\u{1b}[31m"), "{logs}");
        let line = logs.trim_end_matches('\n');
        assert!(
            !line
                .chars()
                .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{202e}')),
            "{logs:?}"
        );
    }

    #[tokio::test]
    async fn a_16_kib_report_array_writes_a_few_lines() {
        let one = r#"{"type":"csp-violation","body":{"blockedURL":"x"}}"#;
        let count = 16 * 1024 / (one.len() + 1) - 1;
        let body = format!("[{}]", vec![one; count].join(","));
        assert!(body.len() <= 16 * 1024 && count > 300);
        let (response, logs) = post_report(collector(60), &body).await;
        assert!(response.starts_with("HTTP/1.1 204"), "{response}");
        assert_eq!(logs.lines().count(), MAX_REPORTS_LOGGED + 1, "{logs}");
        assert!(
            logs.contains(&format!("not_logged={}", count - MAX_REPORTS_LOGGED)),
            "{logs}"
        );
    }

    #[tokio::test]
    async fn ipv6_addresses_in_one_64_share_the_collectors_bucket() {
        use tower::ServiceExt as _;
        let app = collector(1);
        let report = r#"{"csp-report":{"blocked-uri":"inline"}}"#;
        let from = |ip: &str| {
            let peer = std::net::SocketAddr::new(ip.parse().unwrap(), 4000);
            let mut request = axum::http::Request::post(DEFAULT_REPORT_PATH)
                .header(header::CONTENT_TYPE, "application/csp-report")
                .body(axum::body::Body::from(report))
                .unwrap();
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            app.clone().oneshot(request)
        };
        let status = |r: Result<Response, std::convert::Infallible>| r.unwrap().status();
        assert_eq!(
            status(from("2001:db8:1:2::1").await),
            StatusCode::NO_CONTENT
        );
        // Another address of the same host's /64: the same, spent, bucket.
        assert_eq!(
            status(from("2001:db8:1:2:ffff:ffff:ffff:fffe").await),
            StatusCode::TOO_MANY_REQUESTS
        );
        // The next /64 is someone else.
        assert_eq!(
            status(from("2001:db8:1:3::1").await),
            StatusCode::NO_CONTENT
        );
    }
}
