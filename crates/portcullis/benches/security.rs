//! What each protection costs on its own: `cargo bench -p portcullis`.
//!
//! Each figure is one operation on one core, through the public API as an application
//! reaches it: the header layer around a trivial service, CSRF minting and checking
//! (directly and through the session and CSRF layers), session records through the
//! `SessionStore` trait, JWT signing and verification, password hashing at the
//! default parameters, one rate-limit decision, and upload names, sniffing and
//! metadata stripping. `bench/run.sh` measures the same
//! protections together, over HTTP; BENCHMARKS.md holds both.

use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{header, Request, Response, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Router};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use futures_util::FutureExt as _;
use portcullis::client_ip::ClientInfoConfig;
use portcullis::csp::{ContentSecurityPolicy, CspNonce};
use portcullis::csrf::{CsrfConfig, CsrfMinter, CsrfToken};
use portcullis::headers::SecureHeadersConfig;
use portcullis::jwt::{Jwt, JwtConfig, JwtKeys, MemoryRevocationStore};
use portcullis::keys::{Keyring, SecretKey};
use portcullis::password::{PasswordConfig, Passwords};
use portcullis::ratelimit::{MemoryRateLimitStore, Quota, RateLimitStore, BENCH_FACTOR};
use portcullis::session::{
    MemorySessionStore, Session, SessionConfig, SessionRecord, SessionStore,
};
use portcullis::session::{SqliteSessionStore, COOKIE_NAME};
use portcullis::upload::{secure_filename, strip_metadata, FileKind, UploadPolicy};
use tower::{Layer as _, ServiceExt as _};

/// Runs a future that never waits: the in-memory stores and the header layer around
/// a ready service answer at once, so a runtime would only add its own cost.
fn ready<F: std::future::Future>(future: F) -> F::Output {
    future
        .now_or_never()
        .expect("the future completes without waiting")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

fn keyring() -> Keyring {
    Keyring::new(SecretKey::generate(), vec![])
}

fn get_request(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(path);
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    builder.body(Body::empty()).expect("a valid request")
}

/// The secure headers and a fresh CSP nonce per response.
fn headers(c: &mut Criterion) {
    let mut group = c.benchmark_group("headers");
    group.bench_function("csp_nonce_generate", |b| {
        b.iter(|| black_box(CspNonce::generate()))
    });
    let compiled = ContentSecurityPolicy::default()
        .compile()
        .expect("the default policy compiles");
    group.bench_function("csp_nonce_and_render", |b| {
        b.iter(|| black_box(compiled.render(&CspNonce::generate(), false)))
    });
    let layer = SecureHeadersConfig::default()
        .layer()
        .expect("the default headers are valid");
    let service = layer.layer(tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::from("ok")))
    }));
    let response = ready(service.clone().oneshot(get_request("/", None))).expect("infallible");
    assert!(response
        .headers()
        .contains_key(header::CONTENT_SECURITY_POLICY));
    // The baseline: the same trivial service with no layer.
    let bare = tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::from("ok")))
    });
    group.bench_function("bare_service", |b| {
        b.iter(|| black_box(ready(bare.oneshot(get_request("/", None)))))
    });
    group.bench_function("layer_per_response", |b| {
        b.iter(|| black_box(ready(service.clone().oneshot(get_request("/", None)))))
    });
    group.finish();
}

/// The handles a handler sees, kept to mint and check tokens without a request.
type Captured = Arc<Mutex<Option<(CsrfMinter, Session)>>>;

/// A router with the session and CSRF layers, as `SecureStack` installs them.
fn csrf_router(captured: Captured) -> Router {
    let keyring = keyring();
    let sessions = SessionConfig::default()
        .insecure_cookie_over_plain_http()
        .layer(&keyring, Arc::new(MemorySessionStore::default()));
    let csrf = CsrfConfig::default()
        .layer(&keyring)
        .expect("the default CSRF settings are valid");
    Router::new()
        .route("/plain", get(|| async { "ok" }))
        .route(
            "/form",
            get(|token: CsrfToken| async move { token.as_str().to_owned() }),
        )
        .route(
            "/capture",
            get(
                move |Extension(minter): Extension<CsrfMinter>, session: Session| async move {
                    *captured.lock().expect("not poisoned") = Some((minter, session));
                    "ok"
                },
            ),
        )
        .route("/submit", post(|| async { "ok" }))
        .layer(csrf)
        .layer(sessions)
        // CSRF compares origins with the client's address and scheme; outside a
        // server, the peer address is given as axum's tests give it.
        .layer(ClientInfoConfig::default().layer())
        .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))))
}

/// CSRF tokens: minted on a render, checked on an unsafe request.
fn csrf(c: &mut Criterion) {
    let rt = runtime();
    let captured: Captured = Arc::default();
    let router = csrf_router(captured.clone());
    // A first visit mints a token, which creates the session and sets its cookie.
    let (cookie, token) = rt.block_on(async {
        let response = router
            .clone()
            .oneshot(get_request("/form", None))
            .await
            .expect("infallible");
        let cookie = response.headers()[header::SET_COOKIE]
            .to_str()
            .expect("ASCII")
            .split(';')
            .next()
            .expect("a name=value pair")
            .to_owned();
        assert!(cookie.starts_with(COOKIE_NAME));
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        let token = String::from_utf8(body.to_vec()).expect("UTF-8");
        (cookie, token)
    });
    let submit = || {
        Request::post("/submit")
            .header(header::COOKIE, &cookie)
            .header(portcullis::csrf::HEADER, &token)
            .body(Body::empty())
            .expect("a valid request")
    };
    let status = rt
        .block_on(router.clone().oneshot(submit()))
        .map(|r| r.status());
    assert_eq!(status, Ok(StatusCode::OK), "the token must verify");

    let mut group = c.benchmark_group("csrf");
    // Session lookup and cookie verification, no token: what the two layers cost a
    // request that neither renders nor posts a form.
    group.bench_function("layers_get_no_token", |b| {
        b.to_async(&rt)
            .iter(|| router.clone().oneshot(get_request("/plain", Some(&cookie))))
    });
    group.bench_function("layers_get_mint", |b| {
        b.to_async(&rt)
            .iter(|| router.clone().oneshot(get_request("/form", Some(&cookie))))
    });
    group.bench_function("layers_post_verify", |b| {
        b.to_async(&rt).iter(|| router.clone().oneshot(submit()))
    });

    // The token operations alone, on the handles a handler receives.
    rt.block_on(
        router
            .clone()
            .oneshot(get_request("/capture", Some(&cookie))),
    )
    .expect("infallible");
    let (minter, session) = captured
        .lock()
        .expect("not poisoned")
        .take()
        .expect("the handler ran");
    let token = minter.mint(&session);
    let max_age = Duration::from_secs(3600);
    assert_eq!(minter.check(&session, &token, max_age), Ok(()));
    group.bench_function("mint", |b| b.iter(|| black_box(minter.mint(&session))));
    group.bench_function("verify", |b| {
        b.iter(|| black_box(minter.check(&session, &token, max_age)))
    });
    group.finish();
}

/// A multipart body that never decides: its first part is the token field, whose
/// value is never closed by the boundary, so the CSRF layer reads all it may
/// (16 KiB) looking for the end of the value, and refuses the request.
fn undecided_multipart() -> Vec<u8> {
    let mut body =
        b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n".to_vec();
    body.resize(16 * 1024, b'a');
    body
}

/// The CSRF layer looking for the token in a multipart body, and in a urlencoded
/// form: 16 KiB in one frame, and the same 16 KiB as 16,384 one-byte frames (what
/// hyper makes of a body sent as one-byte chunks). The scan must cost the same per
/// byte in both.
fn csrf_multipart_scan(c: &mut Criterion) {
    let rt = runtime();
    let router = csrf_router(Arc::default());
    let cookie = rt.block_on(async {
        let response = router
            .clone()
            .oneshot(get_request("/form", None))
            .await
            .expect("infallible");
        response.headers()[header::SET_COOKIE]
            .to_str()
            .expect("ASCII")
            .split(';')
            .next()
            .expect("a name=value pair")
            .to_owned()
    });
    let body = undecided_multipart();
    let post = |body: Body| {
        Request::post("/submit")
            .header(header::COOKIE, &cookie)
            .header(
                header::CONTENT_TYPE,
                "multipart/form-data; boundary=BOUNDARY",
            )
            .body(body)
            .expect("a valid request")
    };
    let one_frame = |body: &[u8]| Body::from(body.to_vec());
    let one_byte_frames = |body: &[u8]| {
        let frames: Vec<Result<axum::body::Bytes, Infallible>> = body
            .iter()
            .map(|b| Ok(axum::body::Bytes::copy_from_slice(&[*b])))
            .collect();
        Body::from_stream(futures_util::stream::iter(frames))
    };
    for make in [one_frame(&body), one_byte_frames(&body)] {
        let status = rt
            .block_on(router.clone().oneshot(post(make)))
            .map(|r| r.status());
        assert_eq!(status, Ok(StatusCode::FORBIDDEN), "no token: refused");
    }
    // A urlencoded form is read whole (the handler reads it next); the token is not
    // in it.
    let mut form = b"comment=".to_vec();
    form.resize(16 * 1024, b'a');
    let post_form = |body: Body| {
        Request::post("/submit")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .expect("a valid request")
    };

    let mut group = c.benchmark_group("csrf_multipart_scan");
    // Few samples: before the scan was made linear, one-byte frames took ~1 s each.
    group.sample_size(10);
    group.throughput(criterion::Throughput::Bytes(body.len() as u64));
    group.bench_function("16kib_one_frame", |b| {
        b.to_async(&rt).iter_batched(
            || post(one_frame(&body)),
            |req| router.clone().oneshot(req),
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("16kib_one_byte_frames", |b| {
        b.to_async(&rt).iter_batched(
            || post(one_byte_frames(&body)),
            |req| router.clone().oneshot(req),
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("form_16kib_one_frame", |b| {
        b.to_async(&rt).iter_batched(
            || post_form(one_frame(&form)),
            |req| router.clone().oneshot(req),
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("form_16kib_one_byte_frames", |b| {
        b.to_async(&rt).iter_batched(
            || post_form(one_byte_frames(&form)),
            |req| router.clone().oneshot(req),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn record() -> SessionRecord {
    let now = chrono::Utc::now().timestamp_millis();
    // The record's secret is private to the library; a stored record is JSON, so the
    // benchmark makes one the way a store reads one back.
    serde_json::from_value(serde_json::json!({
        "user_id": 1,
        "csrf_secret": "q2vV3l0JdQ2s0b3o6mD8rQ0m8m0yq2vV3l0JdQ2s0b0",
        "created_at": now,
        "last_seen": now,
        "data": {},
    }))
    .expect("a valid record")
}

/// One session record saved and loaded through the `SessionStore` trait.
fn sessions(c: &mut Criterion) {
    let record = record();
    let expires_at = record.last_seen + 30 * 60 * 1000;
    // A SHA-256 digest in base64url, like the keys the session layer uses.
    let key = "Yx3l8g0oVb1pQy7s2N4mJk9aWc5tRz6uEh0dLf1iGq8";

    let mut group = c.benchmark_group("session");
    let memory = MemorySessionStore::default();
    ready(memory.save(key, &record, expires_at)).expect("saved");
    group.bench_function("memory_save", |b| {
        b.iter(|| black_box(ready(memory.save(key, &record, expires_at))))
    });
    group.bench_function("memory_load", |b| {
        b.iter(|| black_box(ready(memory.load(key))))
    });

    let rt = runtime();
    let dir = tempfile::tempdir().expect("a temporary folder");
    // The options the demo opens its database with: WAL, default synchronous.
    let sqlite = rt.block_on(async {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str("sqlite://")
            .expect("a valid URL")
            .filename(dir.path().join("sessions.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .expect("the database opens");
        let store = SqliteSessionStore::new(pool);
        store.migrate().await.expect("migrated");
        store.save(key, &record, expires_at).await.expect("saved");
        store
    });
    group.bench_function("sqlite_save", |b| {
        b.to_async(&rt)
            .iter(|| sqlite.save(key, &record, expires_at))
    });
    group.bench_function("sqlite_load", |b| b.to_async(&rt).iter(|| sqlite.load(key)));
    group.finish();
}

/// API tokens: HS256 with the keyring's `jwt` subkey.
fn jwt(c: &mut Criterion) {
    let jwt = Jwt::new(
        JwtConfig::default(),
        JwtKeys::from_keyring(&keyring()),
        Arc::new(MemoryRevocationStore::default()),
    );
    let pair = ready(jwt.issue(1)).expect("signed");
    let claims = jwt.decode(&pair.access_token).expect("valid");

    let mut group = c.benchmark_group("jwt");
    group.bench_function("sign_access", |b| {
        b.iter(|| black_box(jwt.sign_claims(&claims)))
    });
    group.bench_function("issue_pair", |b| b.iter(|| black_box(ready(jwt.issue(1)))));
    group.bench_function("verify_signature_and_claims", |b| {
        b.iter(|| black_box(jwt.decode(&pair.access_token)))
    });
    // What `BearerUser` does on every API request: the above, then the revocation
    // lookups.
    group.bench_function("verify_access_with_revocations", |b| {
        b.iter(|| black_box(ready(jwt.verify_access(&pair.access_token))))
    });
    group.finish();
}

/// A werkzeug `scrypt:32768:8:1` hash from the known-answer vectors.
fn werkzeug_vector() -> (String, String) {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../tests/fixtures/password_vectors.json"))
            .expect("the fixture is JSON");
    let vector = vectors
        .as_array()
        .expect("a list")
        .iter()
        .find(|v| {
            v["hash"]
                .as_str()
                .is_some_and(|h| h.starts_with("scrypt:32768:8:1$"))
        })
        .expect("a werkzeug default scrypt vector");
    (
        vector["password"].as_str().expect("text").to_owned(),
        vector["hash"].as_str().expect("text").to_owned(),
    )
}

/// Password hashing at the default parameters: tens of milliseconds each, so few
/// samples of one iteration each.
fn passwords(c: &mut Criterion) {
    let passwords = Passwords::new(PasswordConfig::default()).expect("the defaults are valid");
    let password = "correct horse battery staple";
    let stored = passwords.hash_blocking(password).expect("hashed");
    let (legacy_password, legacy) = werkzeug_vector();
    assert_eq!(
        passwords.verify_blocking(&legacy_password, &legacy),
        Ok(true)
    );

    let mut group = c.benchmark_group("password");
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("argon2id_hash", |b| {
        b.iter(|| black_box(passwords.hash_blocking(password)))
    });
    group.bench_function("argon2id_verify", |b| {
        b.iter(|| black_box(passwords.verify_blocking(password, &stored)))
    });
    group.bench_function("werkzeug_scrypt_verify", |b| {
        b.iter(|| black_box(passwords.verify_blocking(&legacy_password, &legacy)))
    });
    group.finish();
}

/// One decision of the in-memory GCRA store.
fn rate_limit(c: &mut Criterion) {
    let store = MemoryRateLimitStore::new();
    // The default per-client quota as `PORTCULLIS_RATE_LIMITS=bench` scales it: the
    // decision is made and always allows.
    let bench = Quota::per_minute(600 * BENCH_FACTOR);
    // The login quota, used up: every decision refuses.
    let login = Quota::per_minute(10);
    let refused_key = "auth:ip:127.0.0.2";
    while ready(store.check(refused_key, &login))
        .expect("valid quota")
        .allowed
    {}

    let mut group = c.benchmark_group("ratelimit");
    group.bench_function("check_allowed", |b| {
        b.iter(|| black_box(ready(store.check("default:ip:127.0.0.1", &bench))))
    });
    group.bench_function("check_refused", |b| {
        b.iter(|| black_box(ready(store.check(refused_key, &login))))
    });
    group.finish();
}

/// A 1x1 baseline JPEG.
const JPEG: &str = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsjHBYWICwgIyYnKSopGR8tMC0oMCUoKSj/2wBDAQcHBwoIChMKChMoGhYaKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCj/wAARCAACAAIDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDgKKKK+eP2E//Z";

/// A photo of about 1 MiB: the small JPEG with sixteen 64 KiB APP15 segments of
/// pseudo-random bytes (never `<`, so no markup marker appears by chance), the kind
/// of metadata an upload has stripped.
fn large_jpeg() -> Vec<u8> {
    use base64::Engine as _;
    let small = base64::engine::general_purpose::STANDARD
        .decode(JPEG)
        .expect("valid base64");
    let mut out = small[..2].to_vec();
    let mut state: u32 = 0x2545_f491;
    for _ in 0..16 {
        let len: u16 = 65_533;
        out.extend_from_slice(&[0xFF, 0xEF]);
        out.extend_from_slice(&len.to_be_bytes());
        for _ in 0..len - 2 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            out.push(((state >> 24) as u8) | 0x40);
        }
    }
    out.extend_from_slice(&small[2..]);
    out
}

/// Upload handling: names made safe, content sniffed and checked against the name,
/// metadata stripped.
fn uploads(c: &mut Criterion) {
    let policy = UploadPolicy::default();
    let photo = large_jpeg();
    assert_eq!(policy.check("photo.jpg", &photo), Ok(FileKind::Jpeg));
    let hostile = "../../etc/ｐａｓｓｗｄ <script>.jpg\\..\\CON";

    let mut group = c.benchmark_group("upload");
    group.bench_function("secure_filename", |b| {
        b.iter(|| black_box(secure_filename(black_box(hostile))))
    });
    group.bench_function("check_1mib_jpeg", |b| {
        b.iter(|| black_box(policy.check("photo.jpg", black_box(&photo))))
    });
    group.bench_function("strip_metadata_1mib_jpeg", |b| {
        b.iter_batched(
            || photo.clone(),
            |bytes| black_box(strip_metadata(FileKind::Jpeg, bytes)),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// The sanitizer: a typical Markdown comment, and hostile inputs from 16 KiB to 1 MiB
/// (limits raised so that the large ones are parsed, not refused at the door). Each
/// is either rendered or refused within bounds; time per byte should stay flat.
fn sanitize(c: &mut Criterion) {
    use portcullis::sanitize::Sanitizer;

    let comment = "## Notes\n\nThis is *emphasis*, **strong**, `code` and \
                   [a link](https://docs.example/start).\n\n- one\n- two\n\n> quoted\n\n\
                   ```\nfn main() {}\n```\n\n<b>html</b> <img src=x onerror=alert(1)>\n"
        .repeat(4);
    let default = Sanitizer::default();
    c.bench_function("sanitize/markdown_comment_1kib", |b| {
        b.iter(|| default.markdown(black_box(&comment)))
    });
    let large = Sanitizer::builder()
        .max_input_bytes(1 << 20)
        .max_output_bytes(4 << 20)
        .build()
        .expect("valid limits");
    let mut group = c.benchmark_group("sanitize_hostile");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2));
    for size in [16usize << 10, 64 << 10, 256 << 10, 1 << 20] {
        let kib = size >> 10;
        let inputs: [(&str, String, bool); 6] = [
            ("html_lt", "<".repeat(size), false),
            ("html_nested_div", "<div>".repeat(size / 5), false),
            ("html_links", "<a>".repeat(size / 3), false),
            ("markdown_stars", "*".repeat(size), true),
            ("markdown_nested_quotes", ">".repeat(size), true),
            ("markdown_emphasis", "*a **b ".repeat(size / 7), true),
        ];
        for (name, input, markdown) in inputs {
            group.throughput(criterion::Throughput::Bytes(input.len() as u64));
            group.bench_function(format!("{name}/{kib}kib"), |b| {
                b.iter(|| {
                    if markdown {
                        large.markdown(black_box(&input)).map(|h| h.as_str().len())
                    } else {
                        large.clean(black_box(&input)).map(|h| h.as_str().len())
                    }
                })
            });
        }
    }
    group.finish();
}

/// The benchmark groups. criterion_group! defines public functions that cannot carry
/// documentation, so they live in a private module that allows that.
#[allow(missing_docs, unreachable_pub)]
mod groups {
    use super::*;

    criterion_group! {
        name = fast;
        config = Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        targets = headers, csrf, csrf_multipart_scan, sessions, jwt, rate_limit, uploads, sanitize
    }
    criterion_group! {
        name = hashing;
        config = Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .sample_size(20);
        targets = passwords
    }
}

criterion_main!(groups::fast, groups::hashing);
