//! What a real browser does with the demo's headers: headless Chromium (Debian's
//! `chromium`) loads pages and `--dump-dom` prints the DOM after their scripts ran, so
//! each assertion is about what a script did, not about what the server sent.
//!
//! Without Chromium these tests say so and pass, unless `PORTCULLIS_REQUIRE_BROWSER`
//! is set (as `.ci/run` does), in which case its absence is a failure.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use common::Demo;
use portcullis::csp::CspNonce;
use portcullis::headers::{RouteHeaders, SecureHeadersConfig};
use portcullis::stack::SecureStack;

fn chromium() -> Option<PathBuf> {
    let path = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if path.is_none() {
        assert!(
            std::env::var_os("PORTCULLIS_REQUIRE_BROWSER").is_none(),
            "PORTCULLIS_REQUIRE_BROWSER is set but Chromium is not installed (apt-get install chromium)"
        );
        eprintln!("SKIPPED: Chromium is not installed (apt-get install chromium); browser tests did not run");
    }
    path
}

/// The DOM of `url` after its scripts (and those of its frames) have run.
fn dump_dom(chromium: &PathBuf, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium)
        .args(common::webdriver::CHROMIUM_FLAGS)
        .arg("--virtual-time-budget=5000")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("Chromium did not finish loading {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

async fn dump(chromium: PathBuf, url: String) -> String {
    tokio::task::spawn_blocking(move || dump_dom(&chromium, &url))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn nonced_script_runs_on_the_home_page() {
    let Some(chromium) = chromium() else { return };
    let demo = Demo::start(&[]);
    let dom = dump(chromium, demo.url("/")).await;
    assert!(dom.contains("data-js=\"ready\""), "{dom}");
}

/// Serves the demo's pages through a second origin, with the demo's own headers,
/// after injecting markup into `/` as an escaping mistake would: the policy the demo
/// sent must stop it.
async fn inject(State(upstream): State<String>, uri: Uri) -> Response {
    let response = reqwest::get(format!("{upstream}{uri}")).await.unwrap();
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let mut headers = HeaderMap::new();
    for (name, value) in response.headers() {
        if name != "content-length" {
            headers.insert(name.clone(), value.clone());
        }
    }
    let mut body = response.text().await.unwrap();
    if uri.path() == "/" {
        let injected = concat!(
            "<script>document.documentElement.dataset.injected = 'ran';</script>",
            "<img src=\"/nonexistent.png\" onerror=\"document.documentElement.dataset.onerror = 'ran'\">",
            "<script src=\"data:text/javascript,document.documentElement.dataset.datasrc='ran'\"></script>",
        );
        body = body.replace("<main>", &format!("<main>{injected}"));
        assert!(body.contains("dataset.injected"));
    }
    (status, headers, body).into_response()
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_scripts_do_not_run_while_the_nonced_one_does() {
    let Some(chromium) = chromium() else { return };
    let demo = Demo::start(&[]);
    let proxy = serve(
        Router::new()
            .fallback(get(inject))
            .with_state(demo.base.clone()),
    )
    .await;
    let dom = dump(chromium.clone(), format!("http://{proxy}/")).await;
    assert!(
        dom.contains("data-js=\"ready\""),
        "the nonced script did not run: {dom}"
    );
    assert!(
        dom.contains("dataset.injected"),
        "the injection is in the page: {dom}"
    );
    assert!(
        !dom.contains("data-injected"),
        "an injected inline script ran: {dom}"
    );
    assert!(
        !dom.contains("data-onerror"),
        "an injected handler ran: {dom}"
    );
    assert!(
        !dom.contains("data-datasrc"),
        "an injected data: script ran: {dom}"
    );

    // The same injection without the policy does run: the check above can fail.
    let unprotected = serve(
        Router::new()
            .fallback(get(|State(upstream): State<String>, uri: Uri| async move {
                let mut response = inject(State(upstream), uri).await;
                response.headers_mut().remove("content-security-policy");
                response
            }))
            .with_state(demo.base.clone()),
    )
    .await;
    let dom = dump(chromium, format!("http://{unprotected}/")).await;
    assert!(dom.contains("data-injected=\"ran\""), "{dom}");
}

#[derive(serde::Deserialize)]
struct Target {
    url: String,
}

/// The attacker's page, on another loopback port: it frames `url` and records any
/// message the framed page posts.
async fn attacker_page(Query(target): Query<Target>) -> Html<String> {
    Html(format!(
        "<!doctype html><body><iframe src=\"{}\"></iframe><script>\
         window.addEventListener('message', function (e) {{ document.body.dataset.framed = e.data; }});\
         </script></body>",
        target.url
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn another_origin_cannot_frame_the_app() {
    let Some(chromium) = chromium() else { return };
    let demo = Demo::start(&[]);
    let attacker = serve(Router::new().route("/", get(attacker_page))).await;
    let dom = dump(
        chromium,
        format!("http://{attacker}/?url={}", demo.url("/")),
    )
    .await;
    assert!(dom.contains("<iframe"), "{dom}");
    // The browser asked for the page but refused to render it inside the frame: the
    // page's own script, which any rendering fetches, was never requested.
    let logs = demo.log_text();
    assert!(
        logs.contains("path=/}") || logs.contains("path=/ "),
        "the browser never requested the framed page: {logs}"
    );
    assert!(
        !logs.contains("path=/static/app.js"),
        "the framed page was rendered: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn framing_is_refused_by_default_and_allowed_only_for_the_named_origin() {
    let Some(chromium) = chromium() else { return };
    let attacker = serve(Router::new().route("/", get(attacker_page))).await;

    let announce = |name: &'static str| {
        move |nonce: CspNonce| async move {
            Html(format!(
                "<script nonce=\"{nonce}\">parent.postMessage('{name}', '*');</script>"
            ))
        }
    };
    let app = SecureStack::default()
        .without_https_redirect()
        .headers(SecureHeadersConfig::default().route(
            "/embed",
            RouteHeaders::default().allow_framing_by(format!("http://{attacker}")),
        ))
        .apply(
            Router::new()
                .route("/embed", get(announce("embed")))
                .route("/page", get(announce("page"))),
        )
        .unwrap();
    let app = serve(app).await;

    let allowed = dump(
        chromium.clone(),
        format!("http://{attacker}/?url=http://{app}/embed"),
    )
    .await;
    assert!(allowed.contains("data-framed=\"embed\""), "{allowed}");
    let refused = dump(
        chromium,
        format!("http://{attacker}/?url=http://{app}/page"),
    )
    .await;
    assert!(refused.contains("<iframe"), "{refused}");
    assert!(!refused.contains("data-framed"), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_registers_posts_and_logs_out_in_a_browser() {
    let Some(browser) = common::webdriver::start().await else {
        return;
    };
    let demo = Demo::start(&[]);
    browser.goto(&demo.url("/register")).await;
    browser.fill("#username", "browser-user").await;
    browser.fill("#password", common::PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_text("Signed in as browser-user").await;

    // A script payload in a Markdown comment, typed into the form like any comment:
    // the formatting shows, the markup that could run is gone.
    let payload = "Hello **world** <script>document.documentElement.dataset.xss='script'</script>\
                   <img src=x onerror=\"document.documentElement.dataset.xss='img'\">";
    browser.fill("#body", payload).await;
    browser.click("form.card button[type=submit]").await;
    browser.wait_for_text("Hello world").await;
    let strong = browser
        .run("return document.querySelector('.comment-body strong').textContent")
        .await;
    assert_eq!(strong, "world", "the Markdown is rendered");
    let active = browser
        .run("return document.querySelectorAll('.comment-body script, .comment-body img').length")
        .await;
    assert_eq!(active, 0, "the script and the image are removed");
    let ran = browser
        .run("return document.documentElement.dataset.xss || null")
        .await;
    assert!(ran.is_null(), "the stored payload ran: {ran}");
    let nonced = browser
        .run("return document.documentElement.dataset.js")
        .await;
    assert_eq!(nonced, "ready", "the page's own script did not run");

    browser.click("nav button").await;
    let text = browser.wait_for_text("Log in").await;
    assert!(!text.contains("Signed in as"), "{text}");
    browser.quit().await;
}

/// The attacker's page: a form that posts to the app as soon as it loads.
async fn auto_submit(Query(target): Query<Target>) -> Html<String> {
    Html(format!(
        "<!doctype html><body><form method=\"post\" action=\"{}\">\
         <input name=\"body\" value=\"forged-by-another-origin\">\
         <input name=\"csrf_token\" value=\"guessed\"></form>\
         <script>document.forms[0].submit()</script></body>",
        target.url
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_form_on_another_origin_cannot_post_with_the_victims_cookie() {
    let Some(browser) = common::webdriver::start().await else {
        return;
    };
    let demo = Demo::start(&[]);
    browser.goto(&demo.url("/register")).await;
    browser.fill("#username", "victim").await;
    browser.fill("#password", common::PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_text("Signed in as victim").await;

    let attacker = serve(Router::new().route("/", get(auto_submit))).await;
    browser
        .goto(&format!("http://{attacker}/?url={}", demo.url("/comments")))
        .await;
    let text = browser.wait_for_text("another site").await;
    assert!(text.contains("refused"), "{text}");
    let logs = demo.log_text();
    assert!(logs.contains("reason=\"csrf_origin\""), "{logs}");

    browser.goto(&demo.url("/")).await;
    let text = browser.wait_for_text("Signed in as victim").await;
    assert!(!text.contains("forged-by-another-origin"), "{text}");
    browser.quit().await;
}

/// A page on another loopback origin that signs in to the demo's API and posts a
/// comment with the Bearer token, as a single-page app on an allowed origin would.
fn api_caller_page(demo: &str) -> String {
    format!(
        r#"<!doctype html><html><body data-result="pending"><script>
const demo = {demo:?};
fetch(demo + "/api/token", {{
  method: "POST",
  headers: {{ "Content-Type": "application/json" }},
  body: JSON.stringify({{ username: "cors-user", password: {password:?} }}),
}})
  .then((r) => r.json())
  .then((pair) => fetch(demo + "/api/comments", {{
    method: "POST",
    headers: {{ "Content-Type": "application/json", "Authorization": "Bearer " + pair.access_token }},
    body: JSON.stringify({{ body: "posted from " + location.origin }}),
  }}))
  .then((r) => {{ document.body.dataset.result = "status " + r.status; }})
  .catch((e) => {{ document.body.dataset.result = "blocked " + e.name; }});
</script></body></html>"#,
        password = common::PASSWORD,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_origin_calls_the_api_with_a_bearer_token_and_another_cannot() {
    let Some(chromium) = chromium() else { return };
    // Two origins on loopback besides the demo's own: one CORS allows, one it does not.
    let allowed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let allowed_origin = format!("http://127.0.0.1:{}", allowed.local_addr().unwrap().port());
    let other_origin = format!("http://127.0.0.1:{}", other.local_addr().unwrap().port());
    let demo = Demo::start(&[("PORTCULLIS_CORS_ORIGINS", allowed_origin.as_str())]);
    common::register(
        &common::browser_like(),
        &demo,
        "cors-user",
        common::PASSWORD,
    )
    .await;
    for listener in [allowed, other] {
        let page = api_caller_page(&demo.base);
        let app = Router::new().route("/", get(move || async move { Html(page) }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    }

    let dom = dump(chromium.clone(), format!("{allowed_origin}/")).await;
    assert!(dom.contains("data-result=\"status 201\""), "{dom}");
    let dom = dump(chromium, format!("{other_origin}/")).await;
    assert!(dom.contains("data-result=\"blocked"), "{dom}");

    let pair: serde_json::Value = common::client()
        .post(demo.url("/api/token"))
        .json(&serde_json::json!({ "username": "cors-user", "password": common::PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let comments: serde_json::Value = common::client()
        .get(demo.url("/api/comments"))
        .bearer_auth(pair["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bodies: Vec<&str> = comments
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["body"].as_str())
        .collect();
    assert!(
        bodies.contains(&format!("posted from {allowed_origin}").as_str()),
        "{bodies:?}"
    );
    assert!(
        !bodies.iter().any(|b| b.contains(&other_origin)),
        "{bodies:?}"
    );
}

/// Two-factor sign-in as a person sets it up: in Chromium, the QR code shows under
/// the page's policy, the code computed from the key shown turns it on, ten recovery
/// codes appear once, and the next sign-in stops at the code step until a fresh code
/// is typed.
#[tokio::test]
async fn two_factor_sign_in_is_set_up_and_used_in_chromium() {
    use portcullis::totp::{unix_now, Totp, TotpSecret};

    let Some(browser) = common::webdriver::start().await else {
        return;
    };
    let demo = Demo::start(&[]);
    browser.goto(&demo.url("/register")).await;
    browser.fill("#username", "phone-owner").await;
    browser.fill("#password", common::PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_text("Signed in as phone-owner").await;

    browser.goto(&demo.url("/account")).await;
    browser.click("#totp-start").await;
    browser.wait_for_text("Scan this code").await;
    // The QR code is an image of this site: the policy lets it load and it decodes
    // as SVG (an image that failed would have no natural width).
    let mut width = serde_json::Value::Null;
    for _ in 0..50 {
        width = browser
            .run("const i = document.getElementById('totp-qr'); return i.complete ? i.naturalWidth : 0")
            .await;
        if width.as_u64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        width.as_u64().unwrap_or(0) >= 200,
        "the QR code did not load: {width}"
    );
    let key = browser
        .run("return document.getElementById('totp-secret').textContent")
        .await;
    let secret = TotpSecret::from_base32(key.as_str().unwrap()).unwrap();
    let totp = Totp::default();
    let setup_code = totp.code_at(&secret, unix_now());
    browser.fill("#totp-code", &setup_code).await;
    browser
        .click("form[action='/account/totp/confirm'] button")
        .await;
    browser.wait_for_text("Two-factor sign-in is on").await;
    let codes = browser
        .run("return document.querySelectorAll('#recovery-codes li').length")
        .await;
    assert_eq!(codes, 10);

    browser.click("form[action='/logout'] button").await;
    // The logout's own navigation first, then the sign-in page.
    browser.wait_for_text("Log in").await;
    browser.goto(&demo.url("/login")).await;
    browser.wait_for_text("Forgot your password").await;
    browser.fill("#username", "phone-owner").await;
    browser.fill("#password", common::PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_text("Two-factor sign-in").await;
    // The code already used at set-up is refused.
    browser.fill("#code", &setup_code).await;
    browser.click("form button[type=submit]").await;
    browser
        .wait_for_text("wrong, expired or already used")
        .await;
    browser
        .fill("#code", &totp.code_at(&secret, unix_now() + 30))
        .await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_text("Signed in as phone-owner").await;
    browser.goto(&demo.url("/account")).await;
    let text = browser.wait_for_text("Recent activity").await;
    for event in ["totp_enabled", "otp_failed", "login_succeeded"] {
        assert!(text.contains(event), "{event} missing: {text}");
    }
    browser.quit().await;
}
