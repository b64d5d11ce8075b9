//! Bodies posted to the CSP violation-report collector.
//!
//! The first line of the input is the `Content-Type` (`application/csp-report`,
//! `application/reports+json` or anything), the rest the body.
//!
//! Properties: nothing panics; the collector never answers 5xx.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request};
use axum::Router;
use libfuzzer_sys::fuzz_target;
use portcullis::client_ip::ClientInfoConfig;
use portcullis::csp::{report_collector, ReportCollectorConfig};
use portcullis_fuzz::send;

fn app() -> &'static (Router, String) {
    static APP: OnceLock<(Router, String)> = OnceLock::new();
    APP.get_or_init(|| {
        let config = ReportCollectorConfig {
            // The fuzzer is one client sending thousands of reports a second.
            per_client_per_minute: u32::MAX,
            ..ReportCollectorConfig::default()
        };
        let path = config.path.clone();
        let app = Router::new()
            .merge(report_collector(config).unwrap())
            .layer(ClientInfoConfig::default().layer());
        (app, path)
    })
}

fuzz_target!(|data: &[u8]| {
    let (app, path) = app();
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let Ok(content_type) = HeaderValue::from_bytes(&data[..split]) else {
        return;
    };
    let body = data.get(split + 1..).unwrap_or_default().to_vec();
    let reply = send(
        app,
        Request::post(path.as_str())
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap(),
    );
    assert!(
        !reply.status.is_server_error(),
        "status {}: {}",
        reply.status,
        reply.text()
    );
});
