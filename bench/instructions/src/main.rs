//! Drives requests through a whole app in one process, with no sockets, so that
//! callgrind can count the instructions a request costs: the demo (every layer of
//! the stack), the peer (`bench/peer`: the stack assembled by hand from the popular
//! crates) or the floor (bare axum, the same application work).
//!
//! ```text
//! portcullis-bench-instructions <demo|peer|floor> <healthz|me|index> <requests>
//! ```
//!
//! Both runs prepare the same data first (a user registered through the form, a
//! token, 20 comments), then send `<requests>` requests of the scenario. Run it twice
//! under callgrind, with 0 and with N requests: the difference divided by N is the
//! cost of one request, preparation and start-up cancelled out (`bench/instructions.sh`
//! does exactly that). Everything runs on one thread (a current-thread runtime), apart
//! from what the app itself sends to threads of its own (SQLite's worker, the log
//! writer), which callgrind counts too.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

const USERNAME: &str = "bench";
const PASSWORD: &str = "lattice-harbor-quartz-91";

fn fail(what: &str) -> ! {
    eprintln!("portcullis-bench-instructions: {what}");
    std::process::exit(2);
}

/// One request through `app`, as if from 127.0.0.1: status, headers and the whole body.
async fn send(
    app: &Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut request = request;
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000))));
    let response = app
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|e| match e {});
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .unwrap_or_else(|_| fail("a body failed"))
        .to_bytes()
        .to_vec();
    (parts.status, parts.headers, bytes)
}

fn get(path: &str) -> axum::http::request::Builder {
    Request::get(path).header(header::HOST, "localhost:8000")
}

fn post(path: &str) -> axum::http::request::Builder {
    Request::post(path)
        .header(header::HOST, "localhost:8000")
        .header(header::ORIGIN, "http://localhost:8000")
}

/// The data `bench/run.sh` prepares, through the demo's own routes: a user registered
/// through the form, a token, 20 comments. Returns the access token.
async fn prepare(demo: &Router) -> String {
    let (_, headers, page) = send(demo, get("/register").body(Body::empty()).unwrap()).await;
    let cookie = headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| fail("no session cookie on /register"))
        .to_owned();
    let page = String::from_utf8_lossy(&page);
    let csrf = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| fail("no CSRF token on /register"))
        .to_owned();
    let form = format!("username={USERNAME}&password={PASSWORD}&csrf_token={csrf}");
    let (status, _, _) = send(
        demo,
        post("/register")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap(),
    )
    .await;
    if status != StatusCode::SEE_OTHER {
        fail(&format!("registration answered {status}"));
    }
    let token = access_token(demo).await;
    for i in 1..=20 {
        let body = serde_json::json!({
            "body": format!("Comment {i}: the portcullis drops <fast> & \"quietly\"; nothing here runs as a script.")
        })
        .to_string();
        let (status, _, _) = send(
            demo,
            post("/api/comments")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
        if status != StatusCode::CREATED {
            fail(&format!("a comment answered {status}"));
        }
    }
    token
}

fn scenario_request(scenario: &str, token: &str) -> Request<Body> {
    match scenario {
        "healthz" => get("/healthz").body(Body::empty()).unwrap(),
        "index" => get("/").body(Body::empty()).unwrap(),
        "me" => get("/api/me")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
        other => fail(&format!("unknown scenario {other:?} (healthz, me, index)")),
    }
}

/// An access token from `app`'s `/api/token` for the user `prepare` registered: the
/// demo's, or the peer's own (its signing key is drawn at its start).
async fn access_token(app: &Router) -> String {
    let login = serde_json::json!({ "username": USERNAME, "password": PASSWORD }).to_string();
    let (status, _, body) = send(
        app,
        post("/api/token")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(login))
            .unwrap(),
    )
    .await;
    if status != StatusCode::OK {
        fail(&format!("/api/token answered {status}"));
    }
    let answer: serde_json::Value =
        serde_json::from_slice(&body).unwrap_or_else(|_| fail("no token pair"));
    answer["access_token"]
        .as_str()
        .unwrap_or_else(|| fail("no access token"))
        .to_owned()
}

/// The measured requests: `bench/instructions.sh` collects the call graph inside this
/// function alone (`--toggle-collect`) for the annotation of where a request's
/// instructions go.
#[inline(never)]
fn drive_requests(
    runtime: &tokio::runtime::Runtime,
    app: &Router,
    scenario: &str,
    token: &str,
    requests: u64,
) {
    runtime.block_on(async {
        for _ in 0..requests {
            let (status, _, _) = send(app, scenario_request(scenario, token)).await;
            if status != StatusCode::OK {
                fail(&format!("{scenario} answered {status}"));
            }
        }
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, server, scenario, requests] = &args[..] else {
        fail(
            "usage: portcullis-bench-instructions <demo|peer|floor> <healthz|me|index> <requests>",
        );
    };
    let requests: u64 = requests
        .parse()
        .unwrap_or_else(|_| fail("requests: a number"));
    let data = std::env::temp_dir().join(format!("portcullis-instructions-{}", std::process::id()));
    let data_dir = data.display().to_string();
    // The demo as bench/run.sh starts it: development settings, bench limits, the
    // access log at info (written to standard error, which the script discards).
    let settings = portcullis::config::Settings::from_lookup(|name| match name {
        "PORTCULLIS_DATA_DIR" => Some(data_dir.clone()),
        "PORTCULLIS_RATE_LIMITS" => Some("bench".to_owned()),
        "PORTCULLIS_LOG" => Some("info".to_owned()),
        _ => None,
    })
    .unwrap_or_else(|_| fail("settings"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|_| fail("runtime"));
    // Each server logs as it does when served: the demo through Portcullis's logging,
    // the peer through tracing-subscriber and tracing-appender, the floor not at all.
    let logs = (server == "demo").then(|| portcullis::logging::init(&settings.log_filter));
    let peer_logs = (server == "peer").then(|| {
        portcullis_bench_peer::init_logging("info")
            .unwrap_or_else(|e| fail(&format!("peer log: {e}")))
    });
    let (app, token) = runtime.block_on(async {
        let demo = portcullis_demo::app(&settings)
            .await
            .unwrap_or_else(|e| fail(&format!("demo: {e}")));
        let token = prepare(&demo).await;
        let app = match server.as_str() {
            "demo" => demo,
            "floor" => portcullis_bench_floor::app(&settings)
                .await
                .unwrap_or_else(|e| fail(&e)),
            "peer" => portcullis_bench_peer::app(&settings, portcullis_bench_peer::Limits::Bench)
                .await
                .unwrap_or_else(|e| fail(&e)),
            other => fail(&format!("unknown server {other:?} (demo, peer, floor)")),
        };
        let token = if server == "peer" {
            access_token(&app).await
        } else {
            token
        };
        (app, token)
    });
    drive_requests(&runtime, &app, scenario, &token, requests);
    drop(logs);
    drop(peer_logs);
    let _ = std::fs::remove_dir_all(&data);
}
