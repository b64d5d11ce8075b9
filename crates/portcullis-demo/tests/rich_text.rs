//! Rich text against a real browser: every vector of the XSS corpus
//! (`crates/portcullis/tests/data/xss_vectors.json`, each with where it comes from),
//! sanitised and loaded in Chromium on a page **without** a Content Security Policy,
//! so that only the sanitizer stands between the payload and the page; then posted as
//! a comment through the form and the API of the real app and checked on its page,
//! with its normal policy. Benign Markdown must still render as written.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use common::{browser_like, client, comment, register, webdriver, Demo, PASSWORD};
use portcullis::sanitize::Sanitizer;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
struct Vector {
    id: String,
    kind: String,
    payload: String,
}

fn corpus() -> Vec<Vector> {
    serde_json::from_str(include_str!("../../portcullis/tests/data/xss_vectors.json")).unwrap()
}

/// Names a payload may try to clobber on `document` or `window`.
const GLOBALS: &str = "['location','cookie','forms','body','alert','confirm','prompt','print',\
    'getElementById','querySelector','createElement','defaultView','domain','images','links',\
    'scripts','head','title','URL','referrer','write','x','__fired']";

/// Runs in the page: what the content did. `root` selects the sanitised content.
fn inspect(root: &str) -> String {
    format!(
        r#"
const roots = [...document.querySelectorAll({root:?})];
const allowed = new Set(['a','b','blockquote','br','code','dd','del','dl','dt','em','h1','h2',
  'h3','h4','h5','h6','hr','i','ins','kbd','li','ol','p','pre','s','strong','sub','sup','table',
  'tbody','td','tfoot','th','thead','tr','ul']);
const bad = [];
function check(root, id) {{
  for (const el of root.querySelectorAll('*')) {{
    if (el.namespaceURI !== 'http://www.w3.org/1999/xhtml' || !allowed.has(el.localName))
      bad.push(id + ': element ' + el.localName);
    for (const a of el.attributes) {{
      const ok = (el.localName === 'a' && a.name === 'href' && ['http:','https:','mailto:'].includes(el.protocol))
        || (el.localName === 'a' && a.name === 'rel' && a.value === 'nofollow noopener noreferrer ugc')
        || (el.localName === 'a' && a.name === 'title') || (el.localName === 'ol' && a.name === 'start');
      if (!ok) bad.push(id + ': attribute ' + el.localName + ' ' + a.name + '=' + a.value);
    }}
  }}
}}
for (const r of roots) check(r, r.dataset.id || 'page');
// Mutation XSS: serialise and parse the content again, as scripts on a page do.
for (const r of roots) {{ r.innerHTML = r.innerHTML; check(r, (r.dataset.id || 'page') + ' (reparsed)'); }}
const globals = {GLOBALS};
const now = globals.map(n => n + ':' + typeof document[n] + ':' + typeof window[n]);
return {{ bad, globals: now, href: location.href, fired: window.__fired || [] }};
"#
    )
}

#[derive(Clone, Default)]
struct Seen {
    pages: Arc<Vec<String>>,
    other_requests: Arc<Mutex<Vec<String>>>,
}

async fn page(State(seen): State<Seen>, Path(n): Path<usize>) -> Html<String> {
    Html(seen.pages[n].clone())
}

async fn anything_else(State(seen): State<Seen>, uri: Uri) -> &'static str {
    if uri.path() != "/favicon.ico" {
        seen.other_requests.lock().unwrap().push(uri.to_string());
    }
    ""
}

/// A page with no CSP: a trap for the dialogs, the globals as they were before the
/// content, and each sanitised vector in its own container.
fn no_csp_page(batch: &[(String, String)]) -> String {
    let mut body = String::new();
    for (id, html) in batch {
        body.push_str(&format!("<div class=\"v\" data-id=\"{id}\">{html}</div>\n"));
    }
    format!(
        "<!doctype html><html><head><meta charset=utf-8><title>corpus</title><script>\
         window.__fired = [];\
         for (const f of ['alert','confirm','prompt','print']) window[f] = function () {{ window.__fired.push(f); }};\
         window.__baseline = {GLOBALS}.map(n => n + ':' + typeof document[n] + ':' + typeof window[n]);\
         </script></head><body>{body}</body></html>"
    )
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

#[tokio::test(flavor = "multi_thread")]
async fn sanitised_vectors_run_nothing_in_a_page_without_csp() {
    let Some(browser) = webdriver::start().await else {
        return;
    };
    let sanitizer = Sanitizer::default();
    let corpus = corpus();
    let outputs: Vec<(String, String)> = corpus
        .iter()
        .filter_map(|v| {
            let html = match v.kind.as_str() {
                "markdown" => sanitizer.markdown(&v.payload),
                _ => sanitizer.clean(&v.payload),
            };
            // A refusal shows nothing; the library's corpus test bounds how many.
            html.ok().map(|html| (v.id.clone(), html.into_string()))
        })
        .collect();
    assert!(outputs.len() >= 200, "{}", outputs.len());
    let batches: Vec<&[(String, String)]> = outputs.chunks(10).collect();
    let (problems, requests) = load_in_chromium(&browser, &batches).await;
    browser.quit().await;
    assert!(
        requests.is_empty(),
        "the content made requests: {requests:?}"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The check above, given markup that was not sanitised: it must see every effect.
#[tokio::test(flavor = "multi_thread")]
async fn the_browser_check_sees_what_unsanitised_markup_does() {
    let Some(browser) = webdriver::start().await else {
        return;
    };
    let raw = [(
        "raw".to_owned(),
        "<img src=/beacon onerror=alert(1)><a id=cookie name=cookie>x</a><svg></svg>".to_owned(),
    )];
    let (problems, requests) = load_in_chromium(&browser, &[&raw[..]]).await;
    browser.quit().await;
    let problems = problems.join("\n");
    assert!(requests.iter().any(|r| r == "/beacon"), "{requests:?}");
    for effect in [
        "ran script",
        "clobbered globals",
        "element img",
        "attribute img onerror",
        "element svg",
    ] {
        assert!(problems.contains(effect), "missed {effect}: {problems}");
    }
}

/// Loads each batch in Chromium on a page without CSP; what the content did, and the
/// requests it made.
async fn load_in_chromium(
    browser: &webdriver::Driver,
    batches: &[&[(String, String)]],
) -> (Vec<String>, Vec<String>) {
    let seen = Seen {
        pages: Arc::new(batches.iter().map(|b| no_csp_page(b)).collect()),
        other_requests: Arc::default(),
    };
    let address = serve(
        Router::new()
            .route("/corpus/{n}", get(page))
            .fallback(anything_else)
            .with_state(seen.clone()),
    )
    .await;
    let mut problems = Vec::new();
    for n in 0..batches.len() {
        let url = format!("http://{address}/corpus/{n}");
        browser.goto(&url).await;
        // Time for anything scheduled by the content (timers, failed loads).
        tokio::time::sleep(Duration::from_millis(60)).await;
        let result = browser.run(&inspect(".v")).await;
        let baseline = browser.run("return window.__baseline").await;
        if result["href"] != url.as_str() {
            problems.push(format!("batch {n} navigated to {}", result["href"]));
        }
        if result["fired"] != json!([]) {
            problems.push(format!("batch {n} ran script: {}", result["fired"]));
        }
        if result["globals"] != baseline {
            problems.push(format!(
                "batch {n} clobbered globals: {} vs {baseline}",
                result["globals"]
            ));
        }
        for bad in result["bad"].as_array().unwrap() {
            problems.push(format!("batch {n}: {bad}"));
        }
    }
    let requests = seen.other_requests.lock().unwrap().clone();
    (problems, requests)
}

async fn api_token(demo: &Demo, username: &str) -> String {
    let response: Value = client()
        .post(demo.url("/api/token"))
        .json(&json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["access_token"].as_str().unwrap().to_owned()
}

/// Loads the home page (the twenty newest comments) and checks it.
async fn check_home(
    browser: &webdriver::Driver,
    demo: &Demo,
    after: &str,
    problems: &mut Vec<String>,
) {
    let url = demo.url("/");
    browser.goto(&url).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    // An alert the content opened would fail this command ("unexpected alert open").
    let result = browser.run(&inspect(".comment-body")).await;
    if result["href"] != url.as_str() {
        problems.push(format!("after {after}: navigated to {}", result["href"]));
    }
    for bad in result["bad"].as_array().unwrap() {
        problems.push(format!("after {after}: {bad}"));
    }
    let nonce_scripts = browser
        .run("return [...document.scripts].filter(s => !s.nonce).length")
        .await;
    if nonce_scripts != json!(0) {
        problems.push(format!(
            "after {after}: {nonce_scripts} scripts without a nonce"
        ));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_vector_posted_as_a_comment_is_inert_on_the_real_page() {
    let Some(browser) = webdriver::start().await else {
        return;
    };
    // A thousand posts from one address within a minute.
    let demo = Demo::start(&[("PORTCULLIS_RATE_LIMITS", "bench")]);
    let http = browser_like();
    assert_eq!(
        register(&http, &demo, "mallory", PASSWORD).await.status(),
        303
    );
    let access = api_token(&demo, "mallory").await;
    let mut problems = Vec::new();
    let mut shown = 0;
    for (n, vector) in corpus().iter().enumerate() {
        let form = comment(&http, &demo, &vector.payload).await.status();
        let api = client()
            .post(demo.url("/api/comments"))
            .bearer_auth(&access)
            .json(&json!({ "body": vector.payload }))
            .send()
            .await
            .unwrap();
        let api_status = api.status();
        // Refused input gets a clear 4xx, never a 500.
        assert!(form == 303 || form == 400, "{}: form {form}", vector.id);
        assert!(
            api_status == 201 || api_status == 400,
            "{}: api {api_status}",
            vector.id
        );
        if api_status == 201 {
            let created: Value = api.json().await.unwrap();
            // The source as the input rules keep it (trimmed, newlines normalised).
            assert!(created["body"].is_string(), "{}", vector.id);
            assert!(created["body_html"].is_string(), "{}", vector.id);
            shown += 1;
        }
        // The page shows the twenty newest: two per vector.
        if n % 10 == 9 {
            check_home(&browser, &demo, &vector.id, &mut problems).await;
        }
    }
    check_home(&browser, &demo, "the last", &mut problems).await;
    browser.quit().await;
    assert!(shown >= 200, "{shown} vectors shown");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn benign_markdown_renders_as_written() {
    let Some(browser) = webdriver::start().await else {
        return;
    };
    let demo = Demo::start(&[]);
    let http = browser_like();
    assert_eq!(
        register(&http, &demo, "writer", PASSWORD).await.status(),
        303
    );
    let markdown = "## Release notes\n\nThis is *emphasis*, **strong** and ~~gone~~, with \
                    `inline code` and [the docs](https://docs.example/start).\n\n\
                    - first\n- second\n\n1. one\n2. two\n\n> quoted\n\n\
                    ```\nfn main() {}\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n";
    assert_eq!(comment(&http, &demo, markdown).await.status(), 303);
    browser.goto(&demo.url("/")).await;
    let dom = browser
        .run(
            "const c = document.querySelector('.comment-body');
             const link = c.querySelector('a');
             return {
               h2: c.querySelector('h2').textContent,
               em: c.querySelector('em').textContent,
               strong: c.querySelector('strong').textContent,
               del: c.querySelector('del').textContent,
               code: c.querySelector('p code').textContent,
               href: link.href, rel: link.rel, text: link.textContent,
               ul: [...c.querySelectorAll('ul li')].map(li => li.textContent),
               ol: [...c.querySelectorAll('ol li')].map(li => li.textContent),
               quote: c.querySelector('blockquote').textContent.trim(),
               pre: c.querySelector('pre code').textContent,
               cells: [...c.querySelectorAll('table th, table td')].map(x => x.textContent),
             };",
        )
        .await;
    browser.quit().await;
    assert_eq!(
        dom,
        json!({
            "h2": "Release notes", "em": "emphasis", "strong": "strong", "del": "gone",
            "code": "inline code", "href": "https://docs.example/start",
            "rel": "nofollow noopener noreferrer ugc", "text": "the docs",
            "ul": ["first", "second"], "ol": ["one", "two"], "quote": "quoted",
            "pre": "fn main() {}\n", "cells": ["a", "b", "1", "2"],
        })
    );
}
