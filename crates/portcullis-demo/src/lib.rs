//! The Portcullis reference app: a small community site that exercises every
//! protection of the library. It holds routes and templates; every security decision
//! is the library's.
//!
//! ```no_run
//! # async fn run() -> Result<(), portcullis_demo::DemoError> {
//! let settings = portcullis::config::Settings::from_env().unwrap();
//! portcullis_demo::serve(settings, std::future::pending()).await
//! # }
//! ```

pub mod account;
pub mod api;
pub mod comments;
pub mod db;
pub mod files;
mod mail;
pub mod routes;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use portcullis::account::{MemoryThrottleStore, SecurityLog, ThrottleStore};
use portcullis::config::Settings;
use portcullis::csp::{ContentSecurityPolicy, Directive, ReportCollectorConfig, Source};
use portcullis::csrf::CsrfConfig;
use portcullis::error::ErrorPagesConfig;
use portcullis::jwt::{Jwt, JwtConfig, JwtKeys, MemoryRevocationStore, RevocationStore};
use portcullis::keys::Keyring;
use portcullis::mail::Mailer;
use portcullis::password::{PasswordConfig, PasswordPolicy, Passwords};
use portcullis::ratelimit::MemoryRateLimitStore;
use portcullis::ratelimit::RateLimitStore;
use portcullis::redis::RedisConnection;
use portcullis::sanitize::Sanitizer;
use portcullis::serve::ServeConfig;
use portcullis::session::MemorySessionStore;
use portcullis::session::{SessionStore, UserSessions};
use portcullis::stack::StackError;
use portcullis::templates::{Page, Templates};
use portcullis::upload::{LocalStorage, UploadPolicy, UploadStorage};

/// Why the app could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Database(#[from] db::DbError),
    /// The security stack's configuration is invalid (any of its parts').
    #[error("configuration: {0}")]
    Stack(#[from] StackError),
    /// A template does not compile.
    #[error("templates: {0}")]
    Templates(#[from] portcullis::templates::TemplateError),
    /// Listening or serving failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    /// A listener could not be served (its limits are invalid).
    #[error("{0}")]
    Serve(#[from] portcullis::serve::ServeError),
    /// TLS could not be set up.
    #[error("tls: {0}")]
    Tls(#[from] portcullis::https::TlsError),
    /// Redis, named by `REDIS_URL`, cannot be reached.
    #[error("redis: {0}")]
    Redis(String),
    /// The password hasher's parameters are invalid.
    #[error("passwords: {0}")]
    Passwords(#[from] portcullis::password::PasswordError),
    /// The mail settings are invalid.
    #[error("mail: {0}")]
    Mail(String),
}

/// What every handler can reach. axum clones the state for every request that
/// extracts it, so it is one reference count; the parts are in [`AppResources`].
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppResources>);

impl std::ops::Deref for AppState {
    type Target = AppResources;

    fn deref(&self) -> &AppResources {
        &self.0
    }
}

/// The database, keys, hashers and policies the handlers share, behind [`AppState`].
#[derive(Debug)]
pub struct AppResources {
    /// The database.
    pub db: db::Database,
    /// The compiled-in templates.
    pub templates: Templates,
    /// The keyring (sessions, CSRF and tokens sign with it).
    pub keyring: Keyring,
    /// Password hashing and verification.
    pub passwords: Passwords,
    /// What a new password must satisfy.
    pub policy: PasswordPolicy,
    /// API tokens.
    pub jwt: Jwt,
    /// Where uploaded bytes live.
    pub uploads: Arc<dyn UploadStorage>,
    /// What uploads may be.
    pub upload_policy: UploadPolicy,
    /// The shared Redis, when `REDIS_URL` is set (for `/healthz`).
    pub redis: Option<RedisConnection>,
    /// Comment Markdown to sanitised HTML.
    pub rich_text: comments::CommentRenderer,
    /// Two-factor sign-in, links, delays and the security events.
    pub account: account::AccountSecurity,
    /// Every user's sessions, for "your sessions" and for ending them.
    pub sessions: UserSessions,
    /// Outgoing mail.
    pub mailer: Mailer,
}

/// Where sessions, rate limits, revocations and per-account failure counts live: in
/// memory for one instance, in Redis (one client for all four) when `REDIS_URL` says several instances share them.
struct SharedState {
    redis: Option<RedisConnection>,
    sessions: Arc<dyn SessionStore>,
    rate_limits: Arc<dyn RateLimitStore>,
    revocations: Arc<dyn RevocationStore>,
    throttles: Arc<dyn ThrottleStore>,
}

impl SharedState {
    async fn connect(settings: &Settings) -> Result<Self, DemoError> {
        match &settings.redis_url {
            Some(url) => {
                let redis = RedisConnection::connect(url, &settings.redis_prefix)
                    .await
                    .map_err(|e| DemoError::Redis(e.to_string()))?;
                Ok(Self {
                    sessions: Arc::new(redis.sessions()),
                    rate_limits: Arc::new(redis.rate_limits()),
                    revocations: Arc::new(redis.revocations()),
                    throttles: Arc::new(redis.account_throttles()),
                    redis: Some(redis),
                })
            }
            None => Ok(Self {
                redis: None,
                sessions: Arc::new(MemorySessionStore::default()),
                rate_limits: Arc::new(MemoryRateLimitStore::new()),
                revocations: Arc::new(MemoryRevocationStore::default()),
                throttles: Arc::new(MemoryThrottleStore::new(100_000)),
            }),
        }
    }
}

/// The page script, as served at `/static/app.js`.
///
/// ```
/// assert!(portcullis_demo::APP_JS.contains("dataset.js"));
/// ```
pub const APP_JS: &str = include_str!("../static/app.js");

/// The Subresource Integrity value of [`APP_JS`] (`sha384-…`), which every page's
/// `<script>` carries: a script altered on the way, or by a cache, does not run.
///
/// ```
/// assert!(portcullis_demo::app_js_integrity().starts_with("sha384-"));
/// ```
pub fn app_js_integrity() -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha384::digest(APP_JS.as_bytes());
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The policy of every page: nothing by default (`default-src 'none'`), then each
/// kind of content the pages use, named; violations reported to the collector.
///
/// ```
/// use portcullis::csp::{Directive, Source};
///
/// let policy = portcullis_demo::content_security_policy();
/// assert_eq!(policy.get(Directive::DefaultSrc), Some(&[Source::None][..]));
/// assert!(policy.compile().is_ok());
/// ```
pub fn content_security_policy() -> ContentSecurityPolicy {
    ContentSecurityPolicy::default()
        .directive(Directive::DefaultSrc, [Source::None])
        // The two-factor QR code is an image of this site.
        .directive(Directive::ImgSrc, [Source::SelfOrigin])
        .report_to(portcullis::csp::DEFAULT_REPORT_PATH)
}

/// The templates, compiled into the binary so that it runs from any directory. The
/// page script's integrity digest is written into the base template here, from the
/// very bytes `/static/app.js` serves.
pub fn templates() -> Result<Templates, portcullis::templates::TemplateError> {
    let base =
        include_str!("../templates/base.html").replace("sha384-APP_JS_SHA384", &app_js_integrity());
    Templates::from_sources([
        ("base.html", base.as_str()),
        ("index.html", include_str!("../templates/index.html")),
        ("error.html", include_str!("../templates/error.html")),
        ("files.html", include_str!("../templates/files.html")),
        ("login.html", include_str!("../templates/login.html")),
        ("register.html", include_str!("../templates/register.html")),
        ("account.html", include_str!("../templates/account.html")),
        ("otp.html", include_str!("../templates/otp.html")),
        ("reauth.html", include_str!("../templates/reauth.html")),
        ("message.html", include_str!("../templates/message.html")),
        (
            "reset_request.html",
            include_str!("../templates/reset_request.html"),
        ),
        ("reset.html", include_str!("../templates/reset.html")),
        (
            "confirm_email.html",
            include_str!("../templates/confirm_email.html"),
        ),
        (
            "recovery_codes.html",
            include_str!("../templates/recovery_codes.html"),
        ),
    ])
}

/// The whole app for `settings`, with the security stack applied.
pub async fn app(settings: &Settings) -> Result<Router, DemoError> {
    let db = db::Database::open(settings).await?;
    // The security events live in the same database, in their own table.
    let security_log = SecurityLog::new(Arc::new(db.clone()));
    let templates = templates()?;
    let keyring = settings.keyring();
    let upload_policy = UploadPolicy::default();
    let passwords = Passwords::new(PasswordConfig::default())?;
    let shared = SharedState::connect(settings).await?;
    let jwt = Jwt::new(
        JwtConfig::default(),
        JwtKeys::from_keyring(&keyring),
        shared.revocations.clone(),
    );
    let state = AppState(Arc::new(AppResources {
        db,
        templates: templates.clone(),
        keyring: keyring.clone(),
        passwords,
        policy: PasswordPolicy::default(),
        rich_text: comments::CommentRenderer::new(Sanitizer::default()),
        jwt: jwt.clone(),
        uploads: Arc::new(LocalStorage::new(&settings.upload_dir)?),
        upload_policy: upload_policy.clone(),
        redis: shared.redis.clone(),
        account: account::AccountSecurity::new(
            &keyring,
            security_log.clone(),
            shared.throttles.clone(),
        ),
        sessions: UserSessions::new(shared.sessions.clone()),
        mailer: settings
            .mailer()
            .map_err(|e| DemoError::Mail(e.to_string()))?,
    }));
    let error_templates = templates;
    let error_pages = ErrorPagesConfig::default().html_renderer(Arc::new(move |error, nonce| {
        let status = error.status();
        let context = serde_json::json!({
            "status": status.as_u16(),
            "title": status.canonical_reason().unwrap_or("Error"),
            "message": error.message(),
        });
        error_templates
            .render_string("error.html", &Page::new(*nonce), context)
            .unwrap_or_else(|_| format!("<!doctype html><title>{}</title>", status.as_u16()))
    }));
    let stack = settings
        .secure_stack()
        .upload_route("/upload", &upload_policy);
    let headers = stack
        .headers_config()
        .clone()
        .csp(content_security_policy());
    let router = routes::router()
        .merge(api::router(jwt.clone()))
        .merge(account::api::router().layer(axum::Extension(jwt)))
        .merge(account::pages::router())
        .merge(files::router())
        .with_state(state)
        .merge(
            portcullis::csp::report_collector(ReportCollectorConfig::default())
                .map_err(StackError::from)?,
        );
    let sessions = settings
        .session_config()
        .layer(&keyring, shared.sessions.clone());
    // Exemptions, each because no cookie authenticates the request: browsers post
    // violation reports without a token (the collector only logs them), and the token
    // endpoints authenticate by the JSON body and answer in the body, so a forged
    // request can neither use a victim's session nor plant one.
    // Pages at the origins CORS allows call the API with a Bearer token and no cookie.
    let csrf = settings
        .cors_origins
        .iter()
        .fold(CsrfConfig::default(), |csrf, origin| {
            csrf.api_origin(origin)
        })
        .exempt(portcullis::csp::DEFAULT_REPORT_PATH)
        .exempt("/api/token")
        .exempt("/api/token/refresh")
        .layer(&keyring)
        .map_err(StackError::from)?;
    let rate_limit = settings
        .rate_limit_config()
        .layer(shared.rate_limits.clone())
        .map_err(StackError::from)?;
    let mut stack = stack
        .headers(headers)
        .error_pages(error_pages)
        .sessions(sessions)
        .csrf(csrf)
        .rate_limit(rate_limit)
        .security_log(&security_log);
    // No origins configured: no CORS layer at all, so that preflights are refused
    // like any unknown OPTIONS request rather than answered.
    if !settings.cors_origins.is_empty() {
        stack = stack.cors(settings.cors_config().layer().map_err(StackError::from)?);
    }
    Ok(stack.apply(router)?)
}

/// Serves the app until `shutdown` completes: HTTPS when TLS is configured (with an
/// optional plain port that only redirects), plain HTTP otherwise; every listener
/// through [`portcullis::serve`], with its default limits on slow and idle clients.
pub async fn serve(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    let app = app(&settings).await?;
    let listener = tokio::net::TcpListener::bind(settings.addr).await?;
    let local = listener.local_addr()?;
    let shutdown = futures_shared(shutdown);
    let limits = ServeConfig::default();
    match &settings.tls {
        Some(tls) => {
            let config = portcullis::https::load_tls(&tls.cert, &tls.key).await?;
            if let Some(http_addr) = settings.http_redirect_addr {
                let plain = tokio::net::TcpListener::bind(http_addr).await?;
                tracing::info!(addr = %plain.local_addr()?, "redirecting plain HTTP to HTTPS");
                tokio::spawn(portcullis::https::serve_redirect(
                    plain,
                    local.port(),
                    settings.served_hosts(),
                    limits.clone(),
                    shutdown.clone(),
                ));
            }
            tracing::info!("listening on https://{local}");
            portcullis::serve::serve_tls(listener, config, app, limits, shutdown).await?;
        }
        None => {
            tracing::info!("listening on http://{local}");
            portcullis::serve::serve(listener, app, limits, shutdown).await?;
        }
    }
    Ok(())
}

fn futures_shared(
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> futures_util::future::Shared<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>> {
    use futures_util::FutureExt as _;
    let boxed: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(shutdown);
    boxed.shared()
}
