//! The peer of the Portcullis benchmarks: the reference app's routes behind the
//! security stack a Rust user would assemble by hand from the popular crates instead
//! of Portcullis.
//!
//! The application work is the floor's (`bench/floor`): the same template from the
//! same SQLite rows through `portcullis_demo::db`, each comment's Markdown rendered to
//! sanitised HTML. Around it, each protection comes from the crate one would pick:
//!
//! - tower-http: static security headers (`SetResponseHeaderLayer`), `x-request-id`
//!   (set and propagated), a `TraceLayer` logging one INFO line per request through
//!   tracing-subscriber and tracing-appender's writer thread, `Authorization` and
//!   `Cookie` marked sensitive, a 30 s timeout, a 1 MiB body limit, `CatchPanicLayer`,
//!   and on the page routes its `CsrfLayer` (`Sec-Fetch-Site` and `Origin`, no token).
//! - tower-sessions with its `MemoryStore` on the page routes.
//! - tower_governor: per peer IP, the demo's quotas (600 a minute everywhere, 10 a
//!   minute on `POST /api/token`), or those ×1,000,000 in bench mode, as the demo's
//!   `PORTCULLIS_RATE_LIMITS=bench`.
//! - jsonwebtoken: HS256 access tokens of 15 minutes, signed with a random key drawn
//!   at start-up, checked on `/api/me` and `/api/comments`.
//! - argon2: `POST /api/token` verifies the password against the Argon2id hash the
//!   demo stored at registration (unknown users against a dummy hash, so both cost the
//!   same), at most one verification per core at a time.
//!
//! Routes: `GET /healthz`, `GET /` (the anonymous page), `POST /api/token` (JSON
//! `{"username","password"}`, answers `{"access_token","token_type","expires_in"}`),
//! `GET /api/me`, `GET /api/comments?limit=N`, `POST /api/comments` (JSON `{"body"}`).
//!
//! What it does not do, that the demo does: no per-response CSP nonce (the policy is
//! static), HSTS on every response (the demo sends it on HTTPS only), no refresh
//! tokens, revocation or key rotation, no per-username login limit, no client address
//! from a trusted proxy, no account lockout or security events, no legacy-hash
//! upgrades, no error pages.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::body::Body;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, Request, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use portcullis::csp::CspNonce;
use portcullis::sanitize::Sanitizer;
use portcullis::templates::{Page, Templates};
use portcullis_demo::comments::{CommentRenderer, RenderedComment};
use portcullis_demo::db::Database;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::GovernorLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::csrf::CsrfLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_sessions::{MemoryStore, Session, SessionManagerLayer};

/// How long an access token lives: the demo's access-token lifetime.
const ACCESS_TOKEN_SECS: u64 = 15 * 60;
/// The `iss` of the peer's tokens, required on the way back in.
const ISSUER: &str = "portcullis-bench-peer";
/// The session key a sign-in would set.
const USER_ID: &str = "user_id";
/// The largest request body: the demo's default.
const BODY_LIMIT: usize = 1024 * 1024;
/// How long a request may take: the demo's default.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The headers the demo sends on every plain-HTTP response, as fixed values: the
/// demo's CSP carries a fresh nonce (and a report endpoint), a static policy allows
/// the app's own scripts by origin instead. Plus HSTS, which a stack that does not
/// know the scheme the client used sends on every response (the demo sends it on
/// HTTPS only).
const SECURITY_HEADERS: [(&str, &str); 11] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; object-src 'none'; \
         base-uri 'none'; frame-ancestors 'none'; form-action 'self'; img-src 'self'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    (
        "permissions-policy",
        "accelerometer=(), autoplay=(), browsing-topics=(), camera=(), display-capture=(), \
         geolocation=(), gyroscope=(), interest-cohort=(), magnetometer=(), microphone=(), \
         midi=(), payment=(), publickey-credentials-get=(), screen-wake-lock=(), serial=(), \
         usb=(), xr-spatial-tracking=()",
    ),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("x-xss-protection", "0"),
    ("x-permitted-cross-domain-policies", "none"),
    ("origin-agent-cluster", "?1"),
    (
        "strict-transport-security",
        "max-age=63072000; includeSubDomains",
    ),
];

/// Which rate limits apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Limits {
    /// The demo's default quotas: 600 requests a minute per IP, 10 logins a minute.
    #[default]
    Normal,
    /// The same quotas ×1,000,000, as the demo's bench mode: still counted and
    /// decided on every request, never reached by a load test.
    Bench,
}

impl Limits {
    fn factor(self) -> u32 {
        match self {
            Limits::Normal => 1,
            Limits::Bench => 1_000_000,
        }
    }
}

/// The token service: the signing key and how tokens are checked.
struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// An Argon2id hash of a random password: an unknown username is verified
    /// against it, so that it costs what a wrong password costs.
    dummy_hash: String,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens").finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    iat: u64,
    exp: u64,
}

#[derive(Debug, Clone)]
struct Peer {
    db: Database,
    templates: Templates,
    rich_text: CommentRenderer,
    tokens: Arc<Tokens>,
    /// One Argon2 verification per core at a time: more only queue on the same cores
    /// with 19 MiB of working memory each.
    logins: Arc<Semaphore>,
}

// Failures answer a bare 500, as on the floor: the peer has no error pages, and a
// benchmark that sees non-2xx answers reports them.
fn failed<E>(_: E) -> StatusCode {
    StatusCode::INTERNAL_SERVER_ERROR
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
    )
        .into_response()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// A request with a valid access token: its user's id.
#[derive(Debug)]
struct Bearer {
    user_id: i64,
}

impl FromRequestParts<Peer> for Bearer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, peer: &Peer) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(unauthorized)?;
        let data =
            jsonwebtoken::decode::<Claims>(token, &peer.tokens.decoding, &peer.tokens.validation)
                .map_err(|_| unauthorized())?;
        let user_id = data.claims.sub.parse().map_err(|_| unauthorized())?;
        Ok(Bearer { user_id })
    }
}

async fn healthz() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok")
}

async fn index(State(peer): State<Peer>, session: Session) -> Result<Html<String>, StatusCode> {
    // What a page handler of such a stack asks first. No route of the peer signs
    // anyone in, so the answer is always "nobody" and the page is the anonymous one,
    // the page the benchmark loads on every server; without a session cookie
    // tower-sessions answers without asking the store.
    let _signed_in: Option<i64> = session.get(USER_ID).await.map_err(failed)?;
    let comments = peer.db.newest_comments(20).await.map_err(failed)?;
    let comments = peer.rich_text.render_all(comments);
    // The templates call `csp_nonce()`, so a page needs a nonce even though the
    // peer's policy is static and does not name it.
    let page = Page::new(CspNonce::generate());
    peer.templates
        .render(
            "index.html",
            &page,
            minijinja::context! { comments, user => (), body => "", error => () },
        )
        .map_err(failed)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Debug, Serialize)]
struct IssuedToken {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
}

async fn token(
    State(peer): State<Peer>,
    Json(credentials): Json<Credentials>,
) -> Result<Json<IssuedToken>, Response> {
    let found = peer
        .db
        .credentials(&credentials.username)
        .await
        .map_err(|e| failed(e).into_response())?;
    let (user_id, stored) = match found {
        Some((id, hash)) => (Some(id), hash),
        None => (None, peer.tokens.dummy_hash.clone()),
    };
    let permit = Arc::clone(&peer.logins)
        .acquire_owned()
        .await
        .map_err(|e| failed(e).into_response())?;
    // Argon2 is 15 ms of CPU: off the async workers.
    let verified = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        PasswordHash::new(&stored).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(credentials.password.as_bytes(), &hash)
                .is_ok()
        })
    })
    .await
    .map_err(|e| failed(e).into_response())?;
    let Some(user_id) = user_id.filter(|_| verified) else {
        return Err(unauthorized());
    };
    let iat = now_secs();
    let claims = Claims {
        sub: user_id.to_string(),
        iss: ISSUER.to_owned(),
        iat,
        exp: iat + ACCESS_TOKEN_SECS,
    };
    let access_token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &peer.tokens.encoding,
    )
    .map_err(|e| failed(e).into_response())?;
    Ok(Json(IssuedToken {
        access_token,
        token_type: "Bearer",
        expires_in: ACCESS_TOKEN_SECS,
    }))
}

async fn me(State(peer): State<Peer>, user: Bearer) -> Result<Response, StatusCode> {
    // The demo's profile lookup: its in-memory cache, then SQLite.
    match peer.db.api_user(user.user_id).await.map_err(failed)? {
        Some(profile) => Ok(Json(profile).into_response()),
        // A valid token for a user who no longer exists.
        None => Ok(unauthorized()),
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<i64>,
}

async fn list_comments(
    State(peer): State<Peer>,
    _user: Bearer,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<RenderedComment>>, StatusCode> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(StatusCode::BAD_REQUEST);
    }
    let comments = peer.db.newest_comments(limit).await.map_err(failed)?;
    Ok(Json(peer.rich_text.render_all(comments)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewComment {
    body: String,
}

async fn add_comment(
    State(peer): State<Peer>,
    user: Bearer,
    Json(comment): Json<NewComment>,
) -> Result<(StatusCode, Json<RenderedComment>), StatusCode> {
    // The demo's bounds on a comment: 1 to 2,000 characters once trimmed.
    let body = comment.body.trim();
    if body.is_empty() || body.chars().count() > 2000 {
        return Err(StatusCode::BAD_REQUEST);
    }
    let id = peer
        .db
        .add_comment(user.user_id, body)
        .await
        .map_err(failed)?;
    match peer.db.comment(id).await.map_err(failed)? {
        Some(stored) => Ok((StatusCode::CREATED, Json(peer.rich_text.render(stored)))),
        None => Err(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// One of [`SECURITY_HEADERS`], set on every response that lacks it.
fn security_header(index: usize) -> SetResponseHeaderLayer<HeaderValue> {
    let (name, value) = SECURITY_HEADERS[index];
    SetResponseHeaderLayer::if_not_present(
        HeaderName::from_static(name),
        HeaderValue::from_static(value),
    )
}

/// Logs as a tracing user would: tracing-subscriber's `fmt` lines, filtered by
/// `filter` (an `EnvFilter` directive such as `info`), written to standard error by
/// tracing-appender's thread rather than on the serving threads. Keep the guard: it
/// writes what is still queued when it is dropped.
pub fn init_logging(filter: &str) -> Result<tracing_appender::non_blocking::WorkerGuard, String> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).map_err(|e| e.to_string())?;
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        // Colours only for a person watching: a log file gets plain lines.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init()
        .map_err(|e| e.to_string())?;
    Ok(guard)
}

/// The peer's app over the demo's data in `settings.data_dir`, with `limits`.
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()`: the rate
/// limiter keys by the peer address and refuses a request without one.
pub async fn app(
    settings: &portcullis::config::Settings,
    limits: Limits,
) -> Result<Router, String> {
    let db = Database::open(settings)
        .await
        .map_err(|e| format!("database: {e}"))?;
    let templates = portcullis_demo::templates().map_err(|e| format!("templates: {e}"))?;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| format!("signing key: {e}"))?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| format!("salt: {e}"))?;
    let dummy_hash = Argon2::default()
        .hash_password(&key, &salt)
        .map_err(|e| format!("dummy hash: {e}"))?
        .to_string();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    let tokens = Tokens {
        encoding: EncodingKey::from_secret(&key),
        decoding: DecodingKey::from_secret(&key),
        validation,
        dummy_hash,
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let peer = Peer {
        db,
        templates,
        rich_text: CommentRenderer::new(Sanitizer::default()),
        tokens: Arc::new(tokens),
        logins: Arc::new(Semaphore::new(cores)),
    };

    // A per-IP limiter of `per_minute` requests a minute (bursts of as many), scaled
    // by the mode, whose idle entries a background task drops every minute.
    let per_ip_limit = |per_minute: u32| {
        let burst = per_minute.saturating_mul(limits.factor());
        let period_ns = 60_000_000_000 / u64::from(burst.max(1));
        let config = GovernorConfigBuilder::default()
            .per_nanosecond(period_ns.max(1))
            .burst_size(burst)
            // `x-ratelimit-limit` and `x-ratelimit-remaining` on every answer, as
            // the demo's `ratelimit-*`.
            .use_headers()
            .finish()
            .ok_or("rate limit: a quota of zero")?;
        let limiter = Arc::clone(config.limiter());
        tokio::spawn(async move {
            let mut every_minute = tokio::time::interval(Duration::from_secs(60));
            loop {
                every_minute.tick().await;
                limiter.retain_recent();
            }
        });
        Ok::<_, String>(GovernorLayer::new(config))
    };

    let pages = Router::new().route("/", get(index)).layer(
        ServiceBuilder::new()
            // Pages are per visitor: no cache keeps them, as the demo's.
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            ))
            .layer(SessionManagerLayer::new(MemoryStore::default()))
            .layer(CsrfLayer::new()),
    );
    let login = Router::new()
        .route("/api/token", post(token))
        .layer(per_ip_limit(10)?);
    let api = Router::new()
        .route("/api/me", get(me))
        .route("/api/comments", get(list_comments).post(add_comment));
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .merge(pages)
        .merge(login)
        .merge(api)
        .with_state(peer);

    let stack = ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<Body>| {
                    let id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %request.method(), uri = %request.uri(), id)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(CatchPanicLayer::new())
        .layer(security_header(0))
        .layer(security_header(1))
        .layer(security_header(2))
        .layer(security_header(3))
        .layer(security_header(4))
        .layer(security_header(5))
        .layer(security_header(6))
        .layer(security_header(7))
        .layer(security_header(8))
        .layer(security_header(9))
        .layer(security_header(10))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(per_ip_limit(600)?);
    Ok(routes.layer(stack))
}
