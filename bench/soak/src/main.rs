//! The soak's load generator: mixed traffic at saturation against the reference app
//! (`portcullis-demo`), on loopback, for a bounded time, counting every answer by kind
//! and status and every write the app acknowledged.
//!
//! `bench/soak.sh` starts the app, runs this, samples the app's memory, descriptors
//! and tasks meanwhile, and afterwards looks for every acknowledged write in the
//! database. Settings come from the environment:
//!
//! | variable | default | what |
//! |---|---|---|
//! | `SOAK_BASE` | `http://127.0.0.1:18000` | the app; loopback only |
//! | `SOAK_SECONDS` | 600 | how long the traffic runs |
//! | `SOAK_WORKERS` | 32 | requests in flight at once (each worker sends its next when its last is answered) |
//! | `SOAK_USERS` | 8 | accounts, registered through the form at start; worker `i` is user `i % SOAK_USERS` |
//! | `SOAK_LOGINS` | 1 | sign-ins (Argon2id verifications) in flight at most |
//! | `SOAK_REPORT` | `soak-report.json` | where the counts go (JSON) |
//! | `SOAK_ACKS` | `soak-acks.tsv` | one line per write: `comment`, `upload` or `refused`, a tab, its marker |
//!
//! Sign-ins are bounded apart from the rest: the app runs at most one Argon2id
//! verification per core and answers 503 to a sign-in that waits too long for one
//! (load shedding, by design). Unbounded, a saturating load generator would measure
//! that shedding, and every core would be hashing passwords instead of serving the
//! rest of the mix. A worker whose turn to sign in is not free does something else.
//!
//! Every write carries a marker unique to this run (`soak-<run>-<kind><worker>-<n>`):
//! a comment in its body, an upload in its file name. Acknowledged writes (303 for the
//! comment form and uploads, 201 for the API) are listed as `comment`/`upload`, and
//! the bodies of comments that must be refused (a bad or missing CSRF token) as
//! `refused`, so that the script can prove both that every acknowledged write was
//! stored and that no refused one was.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::multipart::{Form, Part};
use reqwest::{Client, RequestBuilder};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

/// A real 16×16 RGB PNG (463 bytes): the app parses it and strips its metadata.
const PNG: &[u8] = include_bytes!("gradient.png");

/// A request slower than this is counted as slow (a hang ends in the client's timeout).
const SLOW: Duration = Duration::from_secs(10);

/// What one request is, and which answers to it are right.
#[derive(Debug, Clone, Copy)]
struct Kind {
    name: &'static str,
    /// The statuses this request should get; empty for a hostile request, which
    /// should get a 4xx.
    expected: &'static [u16],
}

impl Kind {
    const fn new(name: &'static str, expected: &'static [u16]) -> Self {
        Self { name, expected }
    }

    const fn hostile(name: &'static str) -> Self {
        Self {
            name,
            expected: &[],
        }
    }

    fn is_hostile(&self) -> bool {
        self.expected.is_empty()
    }

    fn expects(&self, status: u16) -> bool {
        if self.is_hostile() {
            (400..500).contains(&status)
        } else {
            self.expected.contains(&status)
        }
    }
}

const REGISTER_PAGE: Kind = Kind::new("GET /register", &[200]);
const REGISTER: Kind = Kind::new("POST /register", &[303, 409]);
const LOGIN_PAGE: Kind = Kind::new("GET /login", &[200]);
const LOGIN_FORM: Kind = Kind::new("POST /login (right password)", &[303]);
const LOGIN_FORM_WRONG: Kind = Kind::new("POST /login (wrong password)", &[401]);
const LOGOUT: Kind = Kind::new("POST /logout", &[303]);
const INDEX: Kind = Kind::new("GET / (signed in)", &[200]);
const INDEX_ANONYMOUS: Kind = Kind::new("GET / (anonymous)", &[200]);
const FILES: Kind = Kind::new("GET /files", &[200]);
const HEALTHZ: Kind = Kind::new("GET /healthz", &[200]);
const STYLE: Kind = Kind::new("GET /static/style.css", &[200]);
const FORM_COMMENT: Kind = Kind::new("POST /comments (form)", &[303]);
const UPLOAD: Kind = Kind::new("POST /upload (PNG)", &[303]);
const TOKEN: Kind = Kind::new("POST /api/token (right password)", &[200]);
const TOKEN_WRONG: Kind = Kind::new("POST /api/token (wrong password)", &[401]);
const REFRESH: Kind = Kind::new("POST /api/token/refresh", &[200]);
const REVOKE: Kind = Kind::new("POST /api/token/revoke", &[204]);
const ME: Kind = Kind::new("GET /api/me", &[200]);
const LIST: Kind = Kind::new("GET /api/comments", &[200]);
const API_COMMENT: Kind = Kind::new("POST /api/comments", &[201]);
// The collector keeps its own per-client limit (one client here: loopback), so most
// reports of a saturating run are refused with 429, as they should be.
const CSP_REPORT: Kind = Kind::new("POST /csp-report", &[204, 429]);
const BAD_CSRF: Kind = Kind::hostile("hostile: comment, wrong CSRF token");
const NO_CSRF: Kind = Kind::hostile("hostile: comment, no CSRF token");
const BIG_JSON: Kind = Kind::hostile("hostile: 2 MiB JSON comment");
const BIG_UPLOAD: Kind = Kind::hostile("hostile: 6 MiB upload");
const FAKE_PNG: Kind = Kind::hostile("hostile: HTML named .png");
const BAD_TOKEN: Kind = Kind::hostile("hostile: forged or wrong token");
const REVOKED_TOKEN: Kind = Kind::hostile("hostile: a token revoked earlier");
const TRAVERSAL_PATH: Kind = Kind::hostile("hostile: traversal in the path");
const ODD_TYPE: Kind = Kind::hostile("hostile: odd content type");
// A traversal in an upload's name is made harmless, not refused: the file is stored
// under the secured name (the marker), so it is an acknowledged write.
const TRAVERSAL_NAME: Kind = Kind::new("POST /upload (../ in the name)", &[303]);

#[derive(Debug, Clone)]
struct Settings {
    base: String,
    seconds: u64,
    workers: usize,
    users: usize,
    logins: usize,
    password: String,
    report: PathBuf,
    acks: PathBuf,
}

fn setting<T: FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .map_err(|_| format!("{name}={value} does not parse")),
        Err(_) => Ok(default),
    }
}

impl Settings {
    fn from_env() -> Result<Self, String> {
        let base: String = setting("SOAK_BASE", "http://127.0.0.1:18000".to_owned())?;
        let base = base.trim_end_matches('/').to_owned();
        let host = base
            .strip_prefix("http://")
            .ok_or("SOAK_BASE must be http://…")?;
        if !(host.starts_with("127.")
            || host.starts_with("localhost:")
            || host.starts_with("[::1]"))
        {
            return Err(format!(
                "{base} is not on loopback; the soak stays on this machine"
            ));
        }
        let settings = Self {
            base,
            seconds: setting("SOAK_SECONDS", 600)?,
            workers: setting("SOAK_WORKERS", 32)?,
            users: setting("SOAK_USERS", 8)?,
            logins: setting("SOAK_LOGINS", 1)?,
            password: setting("SOAK_PASSWORD", "lattice-harbor-quartz-91".to_owned())?,
            report: setting("SOAK_REPORT", PathBuf::from("soak-report.json"))?,
            acks: setting("SOAK_ACKS", PathBuf::from("soak-acks.tsv"))?,
        };
        if settings.workers == 0 || settings.users == 0 || settings.logins == 0 {
            return Err("SOAK_WORKERS, SOAK_USERS and SOAK_LOGINS must be at least 1".to_owned());
        }
        Ok(settings)
    }
}

/// Everything counted, behind one lock (a few thousand updates a second).
#[derive(Debug, Default)]
struct Tally {
    /// Kind → status (or `error: …`) → count.
    answers: BTreeMap<&'static str, BTreeMap<String, u64>>,
    /// The same, only the answers the kind does not expect.
    unexpected: BTreeMap<&'static str, BTreeMap<String, u64>>,
    /// Unix second an answer arrived → status (or `error`) → count.
    per_second: BTreeMap<u64, BTreeMap<String, u64>>,
    /// Acknowledged writes by kind.
    acknowledged: BTreeMap<&'static str, u64>,
    /// `comment|upload|refused \t marker`, one per write.
    ack_lines: Vec<String>,
    slowest_ms: BTreeMap<&'static str, u64>,
    slow: u64,
    sessions_lost: u64,
    tokens_lost: u64,
    hostile_accepted: BTreeMap<&'static str, u64>,
}

/// A request's answer, read to the end so that its connection can be reused.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The session cookie and whatever else the app sets, as a browser keeps them.
#[derive(Debug, Default, Clone)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn update(&mut self, answer: &Answer) {
        for value in answer.headers.get_all(SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let mut parts = value.split(';');
            let Some((name, cookie)) = parts.next().and_then(|pair| pair.split_once('=')) else {
                continue;
            };
            let expired = parts.any(|attribute| {
                let attribute = attribute.trim().to_ascii_lowercase();
                attribute == "max-age=0" || attribute.starts_with("max-age=-")
            });
            if expired || cookie.is_empty() {
                self.0.remove(name.trim());
            } else {
                self.0
                    .insert(name.trim().to_owned(), cookie.trim().to_owned());
            }
        }
    }

    fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// The token in a page's `csrf_field()`.
fn csrf_token(page: &str) -> Option<String> {
    const FIELD: &str = "name=\"csrf_token\" value=\"";
    let start = page.find(FIELD)? + FIELD.len();
    let end = page[start..].find('"')?;
    Some(page[start..start + end].to_owned())
}

/// A signed-in browser: its cookies and the CSRF token of its session.
#[derive(Debug, Clone)]
struct Browser {
    jar: Jar,
    csrf: String,
}

/// An API client's token pair.
#[derive(Debug, Clone)]
struct Tokens {
    access: String,
    refresh: String,
}

struct Load {
    settings: Settings,
    client: Client,
    run: u64,
    logins: Semaphore,
    tally: Mutex<Tally>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn error_name(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else if error.is_request() {
        "request"
    } else {
        "other"
    };
    format!("error: {what}")
}

impl Load {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.base)
    }

    fn user(&self, index: usize) -> String {
        format!("soak{}_{index}", self.run)
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        // A panic while counting cannot leave the counts half-written in a way that
        // matters more than losing them: keep going with what is there.
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `request`, reads the whole answer and counts it under `kind`.
    async fn call(&self, kind: Kind, request: RequestBuilder) -> Option<Answer> {
        let started = Instant::now();
        let result = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.bytes().await?.to_vec();
            Ok::<_, reqwest::Error>(Answer {
                status,
                headers,
                body,
            })
        }
        .await;
        let elapsed = started.elapsed();
        let (outcome, expected, status) = match &result {
            Ok(answer) => (
                answer.status.to_string(),
                kind.expects(answer.status),
                Some(answer.status),
            ),
            Err(error) => (error_name(error), false, None),
        };
        let mut tally = self.tally();
        *tally
            .answers
            .entry(kind.name)
            .or_default()
            .entry(outcome.clone())
            .or_default() += 1;
        let second = if status.is_some() {
            outcome.clone()
        } else {
            "error".to_owned()
        };
        *tally
            .per_second
            .entry(unix_now())
            .or_default()
            .entry(second)
            .or_default() += 1;
        if !expected {
            *tally
                .unexpected
                .entry(kind.name)
                .or_default()
                .entry(outcome)
                .or_default() += 1;
            if kind.is_hostile() && status.is_some_and(|s| s < 400) {
                *tally.hostile_accepted.entry(kind.name).or_default() += 1;
            }
        }
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let slowest = tally.slowest_ms.entry(kind.name).or_default();
        *slowest = (*slowest).max(ms);
        if elapsed > SLOW {
            tally.slow += 1;
        }
        result.ok()
    }

    fn acknowledge(&self, kind: Kind, what: &str, marker: &str) {
        let mut tally = self.tally();
        *tally.acknowledged.entry(kind.name).or_default() += 1;
        tally.ack_lines.push(format!("{what}\t{marker}"));
    }

    fn refused_write(&self, marker: &str) {
        self.tally().ack_lines.push(format!("refused\t{marker}"));
    }

    fn get(&self, path: &str, jar: Option<&Jar>) -> RequestBuilder {
        let request = self.client.get(self.url(path));
        with_cookies(request, jar)
    }

    fn post(&self, path: &str, jar: Option<&Jar>) -> RequestBuilder {
        let request = self.client.post(self.url(path));
        with_cookies(request, jar)
    }

    /// Registers user `index` through the form (409 when a previous start did).
    async fn register(&self, index: usize) -> Result<(), String> {
        let mut jar = Jar::default();
        let page = self
            .call(REGISTER_PAGE, self.get("/register", None))
            .await
            .ok_or("GET /register failed")?;
        jar.update(&page);
        let csrf = csrf_token(&page.text()).ok_or("no CSRF token on /register")?;
        let username = self.user(index);
        let form = [
            ("username", username.as_str()),
            ("password", self.settings.password.as_str()),
            ("csrf_token", csrf.as_str()),
        ];
        let _turn = self.logins.acquire().await.map_err(|e| e.to_string())?;
        let answer = self
            .call(REGISTER, self.post("/register", Some(&jar)).form(&form))
            .await
            .ok_or("POST /register failed")?;
        match answer.status {
            303 | 409 => Ok(()),
            other => Err(format!("registering {username} answered {other}")),
        }
    }

    /// Signs user `index` in through the form: the login page, the form, then the
    /// home page for the new session's CSRF token. The caller holds a sign-in turn.
    async fn sign_in(&self, index: usize) -> Option<Browser> {
        let mut jar = Jar::default();
        let page = self.call(LOGIN_PAGE, self.get("/login", None)).await?;
        jar.update(&page);
        let csrf = csrf_token(&page.text())?;
        let username = self.user(index);
        let form = [
            ("username", username.as_str()),
            ("password", self.settings.password.as_str()),
            ("csrf_token", csrf.as_str()),
        ];
        let answer = self
            .call(LOGIN_FORM, self.post("/login", Some(&jar)).form(&form))
            .await?;
        if answer.status != 303 {
            return None;
        }
        jar.update(&answer);
        let home = self.call(INDEX, self.get("/", Some(&jar))).await?;
        jar.update(&home);
        let csrf = csrf_token(&home.text())?;
        Some(Browser { jar, csrf })
    }

    /// A token pair for user `index`. The caller holds a sign-in turn.
    async fn token(&self, index: usize) -> Option<Tokens> {
        let body = json!({ "username": self.user(index), "password": self.settings.password });
        let answer = self
            .call(TOKEN, self.post("/api/token", None).json_body(&body))
            .await?;
        tokens_of(&answer)
    }
}

fn tokens_of(answer: &Answer) -> Option<Tokens> {
    if answer.status != 200 {
        return None;
    }
    let value = answer.json()?;
    Some(Tokens {
        access: value.get("access_token")?.as_str()?.to_owned(),
        refresh: value.get("refresh_token")?.as_str()?.to_owned(),
    })
}

fn with_cookies(request: RequestBuilder, jar: Option<&Jar>) -> RequestBuilder {
    match jar.and_then(Jar::header) {
        Some(cookies) => request.header(COOKIE, cookies),
        None => request,
    }
}

/// JSON bodies without reqwest's `json` feature: serde_json is here anyway.
trait JsonBody {
    fn json_body(self, value: &Value) -> Self;
}

impl JsonBody for RequestBuilder {
    fn json_body(self, value: &Value) -> Self {
        self.header(CONTENT_TYPE, "application/json")
            .body(value.to_string())
    }
}

/// A small, fast, seeded generator: which action comes next needs no cryptography.
#[derive(Debug)]
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// What a worker does next, with its weight in a thousand.
#[derive(Debug, Clone, Copy)]
enum Action {
    Index,
    IndexAnonymous,
    LoginPage,
    Files,
    Healthz,
    Style,
    Me,
    List,
    FormComment,
    ApiComment,
    Upload,
    Refresh,
    CspReport,
    WrongPassword,
    SignInAndOut,
    TokenAndRevoke,
    Hostile,
}

const MIX: &[(u64, Action)] = &[
    (170, Action::Index),
    (70, Action::IndexAnonymous),
    (30, Action::LoginPage),
    (40, Action::Files),
    (40, Action::Healthz),
    (30, Action::Style),
    (110, Action::Me),
    (110, Action::List),
    (100, Action::FormComment),
    (100, Action::ApiComment),
    (40, Action::Upload),
    (40, Action::Refresh),
    (30, Action::CspReport),
    (30, Action::WrongPassword),
    (15, Action::SignInAndOut),
    (15, Action::TokenAndRevoke),
    (30, Action::Hostile),
];

fn pick(dice: &mut Dice) -> Action {
    let total: u64 = MIX.iter().map(|(weight, _)| weight).sum();
    let mut roll = dice.below(total);
    for &(weight, action) in MIX {
        if roll < weight {
            return action;
        }
        roll -= weight;
    }
    Action::Healthz
}

/// One worker: a signed-in browser and a token pair of one user, and a loop that
/// sends the mix back to back until the deadline.
struct Worker {
    load: Arc<Load>,
    id: usize,
    user: usize,
    browser: Option<Browser>,
    tokens: Option<Tokens>,
    dice: Dice,
    writes: u64,
    /// Access tokens this worker revoked, the newest last: each must stay refused
    /// for as long as it would otherwise be valid, whatever happened meanwhile.
    revoked: Vec<String>,
}

impl Worker {
    fn marker(&mut self, kind: char) -> String {
        self.writes += 1;
        format!("soak-{}-{kind}{}-{}", self.load.run, self.id, self.writes)
    }

    async fn run(mut self, deadline: Instant) {
        while Instant::now() < deadline {
            // A missing credential comes first, when a sign-in turn is free; otherwise
            // the worker does something that needs none.
            if self.browser.is_none() || self.tokens.is_none() {
                if let Ok(_turn) = self.load.logins.try_acquire() {
                    if self.browser.is_none() {
                        self.browser = self.load.sign_in(self.user).await;
                    } else {
                        self.tokens = self.load.token(self.user).await;
                    }
                    continue;
                }
            }
            let action = pick(&mut self.dice);
            self.act(action).await;
        }
    }

    async fn act(&mut self, action: Action) {
        let load = Arc::clone(&self.load);
        let load = load.as_ref();
        match action {
            Action::Index => match self.browser.clone() {
                Some(mut browser) => {
                    if let Some(page) = load.call(INDEX, load.get("/", Some(&browser.jar))).await {
                        browser.jar.update(&page);
                        if let Some(csrf) = csrf_token(&page.text()) {
                            browser.csrf = csrf;
                        }
                        self.browser = Some(browser);
                    }
                }
                None => self.anonymous().await,
            },
            Action::IndexAnonymous => self.anonymous().await,
            Action::LoginPage => {
                load.call(LOGIN_PAGE, load.get("/login", None)).await;
            }
            Action::Files => match &self.browser {
                Some(browser) => {
                    let answer = load
                        .call(FILES, load.get("/files", Some(&browser.jar)))
                        .await;
                    if answer.is_some_and(|a| a.status == 303) {
                        self.session_lost();
                    }
                }
                None => self.anonymous().await,
            },
            Action::Healthz => {
                load.call(HEALTHZ, load.get("/healthz", None)).await;
            }
            Action::Style => {
                load.call(STYLE, load.get("/static/style.css", None)).await;
            }
            Action::Me | Action::List => {
                let Some(tokens) = &self.tokens else {
                    return self.anonymous().await;
                };
                let (kind, path) = match action {
                    Action::Me => (ME, "/api/me"),
                    _ => (LIST, "/api/comments?limit=20"),
                };
                let request = load
                    .get(path, None)
                    .header(AUTHORIZATION, format!("Bearer {}", tokens.access));
                if load
                    .call(kind, request)
                    .await
                    .is_some_and(|a| a.status == 401)
                {
                    self.token_lost();
                }
            }
            Action::FormComment => self.form_comment().await,
            Action::ApiComment => self.api_comment().await,
            Action::Upload => {
                let marker = self.marker('u');
                self.upload(
                    UPLOAD,
                    &format!("{marker}.png"),
                    &format!("{marker}.png"),
                    PNG.to_vec(),
                )
                .await;
            }
            Action::Refresh => {
                let Some(tokens) = &self.tokens else {
                    return self.anonymous().await;
                };
                let body = json!({ "refresh_token": tokens.refresh });
                let answer = load
                    .call(
                        REFRESH,
                        load.post("/api/token/refresh", None).json_body(&body),
                    )
                    .await;
                match answer {
                    Some(answer) if answer.status == 200 => self.tokens = tokens_of(&answer),
                    Some(answer) if answer.status == 401 => self.token_lost(),
                    _ => {}
                }
            }
            Action::CspReport => {
                let report = json!({ "csp-report": {
                    "document-uri": format!("{}/", load.settings.base),
                    "violated-directive": "script-src-elem",
                    "effective-directive": "script-src-elem",
                    "blocked-uri": "inline",
                    "original-policy": "default-src 'self'",
                    "disposition": "enforce",
                }});
                let request = load
                    .post("/csp-report", None)
                    .header(CONTENT_TYPE, "application/csp-report")
                    .body(report.to_string());
                load.call(CSP_REPORT, request).await;
            }
            Action::WrongPassword => {
                let Ok(_turn) = load.logins.try_acquire() else {
                    return self.anonymous().await;
                };
                if self.dice.below(2) == 0 {
                    let body = json!({ "username": load.user(self.user), "password": "not-the-password-at-all" });
                    load.call(TOKEN_WRONG, load.post("/api/token", None).json_body(&body))
                        .await;
                } else {
                    let mut jar = Jar::default();
                    let Some(page) = load.call(LOGIN_PAGE, load.get("/login", None)).await else {
                        return;
                    };
                    jar.update(&page);
                    let Some(csrf) = csrf_token(&page.text()) else {
                        return;
                    };
                    let username = load.user(self.user);
                    let form = [
                        ("username", username.as_str()),
                        ("password", "not-the-password-at-all"),
                        ("csrf_token", csrf.as_str()),
                    ];
                    load.call(
                        LOGIN_FORM_WRONG,
                        load.post("/login", Some(&jar)).form(&form),
                    )
                    .await;
                }
            }
            Action::SignInAndOut => {
                let Ok(_turn) = load.logins.try_acquire() else {
                    return self.anonymous().await;
                };
                // A second browser of the same user: signed in, then out, its session
                // destroyed server-side.
                if let Some(browser) = load.sign_in(self.user).await {
                    let form = [("csrf_token", browser.csrf.as_str())];
                    load.call(LOGOUT, load.post("/logout", Some(&browser.jar)).form(&form))
                        .await;
                }
            }
            Action::TokenAndRevoke => {
                let Ok(_turn) = load.logins.try_acquire() else {
                    return self.anonymous().await;
                };
                if let Some(extra) = load.token(self.user).await {
                    let request = load
                        .post("/api/token/revoke", None)
                        .header(AUTHORIZATION, format!("Bearer {}", extra.access));
                    if load
                        .call(REVOKE, request)
                        .await
                        .is_some_and(|a| a.status == 204)
                    {
                        // The revoked token must not work any more, now or later.
                        let request = load
                            .get("/api/me", None)
                            .header(AUTHORIZATION, format!("Bearer {}", extra.access));
                        load.call(REVOKED_TOKEN, request).await;
                        if self.revoked.len() == 8 {
                            self.revoked.remove(0);
                        }
                        self.revoked.push(extra.access);
                    }
                }
            }
            Action::Hostile => self.hostile().await,
        }
    }

    async fn anonymous(&mut self) {
        self.load
            .call(INDEX_ANONYMOUS, self.load.get("/", None))
            .await;
    }

    fn session_lost(&mut self) {
        self.browser = None;
        self.load.tally().sessions_lost += 1;
    }

    fn token_lost(&mut self) {
        self.tokens = None;
        self.load.tally().tokens_lost += 1;
    }

    async fn form_comment(&mut self) {
        let Some(browser) = self.browser.clone() else {
            return self.anonymous().await;
        };
        let marker = self.marker('f');
        let body = format!("A comment from the form, {marker}: *still* here after the soak.");
        let form = [
            ("body", body.as_str()),
            ("csrf_token", browser.csrf.as_str()),
        ];
        let load = Arc::clone(&self.load);
        let answer = load
            .call(
                FORM_COMMENT,
                load.post("/comments", Some(&browser.jar)).form(&form),
            )
            .await;
        match answer {
            Some(answer) if answer.status == 303 && answer.location() == "/" => {
                load.acknowledge(FORM_COMMENT, "comment", &marker);
            }
            // The session is gone (a Redis that restarted empty): sign in again.
            Some(answer) if matches!(answer.status, 303 | 401 | 403) => self.session_lost(),
            _ => {}
        }
    }

    async fn api_comment(&mut self) {
        let Some(tokens) = self.tokens.clone() else {
            return self.anonymous().await;
        };
        let marker = self.marker('a');
        let body = json!({ "body": format!("A comment through the API, {marker}: `still` here after the soak.") });
        let load = Arc::clone(&self.load);
        let request = load
            .post("/api/comments", None)
            .header(AUTHORIZATION, format!("Bearer {}", tokens.access))
            .json_body(&body);
        match load.call(API_COMMENT, request).await {
            Some(answer) if answer.status == 201 => {
                load.acknowledge(API_COMMENT, "comment", &marker);
            }
            Some(answer) if answer.status == 401 => self.token_lost(),
            _ => {}
        }
    }

    /// Uploads `data` as `name`; `stored` is the name the app should keep.
    async fn upload(&mut self, kind: Kind, name: &str, stored: &str, data: Vec<u8>) {
        let Some(browser) = self.browser.clone() else {
            return self.anonymous().await;
        };
        let load = Arc::clone(&self.load);
        let Ok(part) = Part::bytes(data)
            .file_name(name.to_owned())
            .mime_str("image/png")
        else {
            return;
        };
        // The token first, as a browser sends a form with the hidden field first.
        let form = Form::new()
            .text("csrf_token", browser.csrf.clone())
            .part("file", part);
        let answer = load
            .call(
                kind,
                load.post("/upload", Some(&browser.jar)).multipart(form),
            )
            .await;
        // A hostile upload's answer is judged by `call` alone.
        let Some(answer) = answer.filter(|_| !kind.is_hostile()) else {
            return;
        };
        if answer.status == 303 && answer.location() == "/files" {
            load.acknowledge(kind, "upload", stored);
        } else if matches!(answer.status, 303 | 401 | 403) {
            self.session_lost();
        }
    }

    async fn hostile(&mut self) {
        let load = Arc::clone(&self.load);
        let load = load.as_ref();
        match self.dice.below(11) {
            0 | 1 => {
                // A comment with a wrong token, then one with none: each must be
                // refused and never stored.
                let Some(browser) = self.browser.clone() else {
                    return self.anonymous().await;
                };
                let marker = self.marker('x');
                load.refused_write(&marker);
                let body = format!("A forged comment, {marker}");
                let (kind, form) = if self.dice.below(2) == 0 {
                    let mut wrong = browser.csrf.clone();
                    let last = if wrong.ends_with('A') { 'B' } else { 'A' };
                    wrong.pop();
                    wrong.push(last);
                    (BAD_CSRF, vec![("body", body), ("csrf_token", wrong)])
                } else {
                    (NO_CSRF, vec![("body", body)])
                };
                load.call(kind, load.post("/comments", Some(&browser.jar)).form(&form))
                    .await;
            }
            2 => {
                // Twice the body limit, through the API.
                let Some(tokens) = self.tokens.clone() else {
                    return self.anonymous().await;
                };
                let marker = self.marker('x');
                load.refused_write(&marker);
                let body = json!({ "body": format!("{marker} {}", "a".repeat(2 * 1024 * 1024)) });
                let request = load
                    .post("/api/comments", None)
                    .header(AUTHORIZATION, format!("Bearer {}", tokens.access))
                    .json_body(&body);
                load.call(BIG_JSON, request).await;
            }
            3 => {
                // Over the upload limit (5 MiB): a PNG header and 6 MiB after it.
                let marker = self.marker('x');
                let mut data = PNG.to_vec();
                data.resize(6 * 1024 * 1024, 0);
                self.upload(BIG_UPLOAD, &format!("{marker}.png"), "", data)
                    .await;
            }
            4 => {
                // An HTML page named .png: refused on its bytes, whatever its name.
                let marker = self.marker('x');
                let data = b"<!doctype html><script>alert(document.cookie)</script>".to_vec();
                self.upload(FAKE_PNG, &format!("{marker}.png"), "", data)
                    .await;
            }
            5 => {
                // A traversal in the name: stored under the secured name.
                let marker = self.marker('u');
                let stored = format!("{marker}.png");
                self.upload(
                    TRAVERSAL_NAME,
                    &format!("../../{stored}"),
                    &stored,
                    PNG.to_vec(),
                )
                .await;
            }
            6 => {
                // Forged and misused tokens.
                let forged = match (&self.tokens, self.dice.below(3)) {
                    (Some(tokens), 0) => {
                        let mut forged = tokens.access.clone();
                        let last = if forged.ends_with('A') { 'B' } else { 'A' };
                        forged.pop();
                        forged.push(last);
                        forged
                    }
                    // A refresh token is not an access token.
                    (Some(tokens), 1) => tokens.refresh.clone(),
                    _ => "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.".to_owned(),
                };
                let request = load
                    .get("/api/me", None)
                    .header(AUTHORIZATION, format!("Bearer {forged}"));
                load.call(BAD_TOKEN, request).await;
            }
            7 => {
                // Encoded traversals: the router sees one segment, never a path.
                let path = match self.dice.below(3) {
                    0 => "/files/..%2F..%2F..%2Fetc%2Fpasswd",
                    1 => "/static/..%2F..%2FCargo.toml",
                    _ => "/files/%2e%2e%2fportcullis.db",
                };
                let jar = self.browser.as_ref().map(|b| &b.jar);
                load.call(TRAVERSAL_PATH, load.get(path, jar)).await;
            }
            8 => {
                // A token revoked a while ago (before a backend restart, perhaps).
                let Some(token) = self.revoked.first().cloned() else {
                    return self.anonymous().await;
                };
                let request = load
                    .get("/api/me", None)
                    .header(AUTHORIZATION, format!("Bearer {token}"));
                load.call(REVOKED_TOKEN, request).await;
            }
            _ => {
                // Bodies of the wrong type for their route.
                let request = match (self.dice.below(3), &self.tokens) {
                    (0, Some(tokens)) => load
                        .post("/api/comments", None)
                        .header(AUTHORIZATION, format!("Bearer {}", tokens.access))
                        .header(CONTENT_TYPE, "text/plain")
                        .body("{\"body\":\"plain text pretending\"}"),
                    (1, _) => load
                        .post("/api/token", None)
                        .header(CONTENT_TYPE, "application/xml")
                        .body("<login><username>x</username></login>"),
                    _ => load
                        .post("/csp-report", None)
                        .header(CONTENT_TYPE, "text/html")
                        .body("<p>not a report</p>"),
                };
                load.call(ODD_TYPE, request).await;
            }
        }
    }
}

fn counts(map: &BTreeMap<String, u64>) -> Value {
    Value::Object(map.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

fn nested(map: &BTreeMap<&'static str, BTreeMap<String, u64>>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| ((*k).to_owned(), counts(v)))
            .collect(),
    )
}

fn flat(map: &BTreeMap<&'static str, u64>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect(),
    )
}

async fn soak(settings: Settings) -> Result<(), String> {
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(settings.workers)
        .build()
        .map_err(|e| e.to_string())?;
    let run = unix_now();
    let load = Arc::new(Load {
        logins: Semaphore::new(settings.logins),
        settings: settings.clone(),
        client,
        run,
        tally: Mutex::new(Tally::default()),
    });
    eprintln!(
        "soak: {} users, {} workers, {} s against {}",
        settings.users, settings.workers, settings.seconds, settings.base
    );
    for index in 0..settings.users {
        load.register(index).await?;
    }
    let started = Instant::now();
    let started_unix = unix_now();
    let deadline = started + Duration::from_secs(settings.seconds);
    let mut workers = Vec::new();
    for id in 0..settings.workers {
        let worker = Worker {
            load: Arc::clone(&load),
            id,
            user: id % settings.users,
            browser: None,
            tokens: None,
            dice: Dice(0x9E37_79B9_7F4A_7C15 ^ ((id as u64 + 1) * 0x1000_0000_01B3) ^ run),
            writes: 0,
            revoked: Vec::new(),
        };
        workers.push(tokio::spawn(worker.run(deadline)));
    }
    let progress = {
        let load = Arc::clone(&load);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.tick().await;
            loop {
                tick.tick().await;
                let tally = load.tally();
                let total: u64 = tally.per_second.values().flat_map(|m| m.values()).sum();
                let failed: u64 = tally
                    .per_second
                    .values()
                    .flat_map(|m| m.iter())
                    .filter(|(status, _)| status.starts_with('5') || status.as_str() == "error")
                    .map(|(_, n)| n)
                    .sum();
                eprintln!(
                    "soak: {:>4} s, {total} answers, {failed} 5xx or errors",
                    started.elapsed().as_secs()
                );
            }
        })
    };
    for worker in workers {
        worker.await.map_err(|e| format!("a worker failed: {e}"))?;
    }
    progress.abort();
    let elapsed = started.elapsed().as_secs_f64();
    let tally = load.tally();
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for statuses in tally.answers.values() {
        for (status, n) in statuses {
            *by_status.entry(status.clone()).or_default() += n;
        }
    }
    let total: u64 = by_status.values().sum();
    let per_second: Vec<Value> = tally
        .per_second
        .iter()
        .map(|(second, statuses)| json!([second, counts(statuses)]))
        .collect();
    let report = json!({
        "base": settings.base,
        "run": run,
        "started_unix": started_unix,
        "seconds": elapsed,
        "workers": settings.workers,
        "users": settings.users,
        "logins_in_flight": settings.logins,
        "requests": total,
        "requests_per_second": total as f64 / elapsed,
        "by_status": counts(&by_status),
        "by_kind": nested(&tally.answers),
        "unexpected": nested(&tally.unexpected),
        "acknowledged": flat(&tally.acknowledged),
        "hostile_accepted": flat(&tally.hostile_accepted),
        "slowest_ms": flat(&tally.slowest_ms),
        "slow_over_10s": tally.slow,
        "sessions_lost": tally.sessions_lost,
        "tokens_lost": tally.tokens_lost,
        "per_second": per_second,
    });
    let mut acks = tally.ack_lines.join("\n");
    acks.push('\n');
    std::fs::write(&settings.acks, acks)
        .map_err(|e| format!("{}: {e}", settings.acks.display()))?;
    std::fs::write(&settings.report, report.to_string())
        .map_err(|e| format!("{}: {e}", settings.report.display()))?;
    Ok(())
}

#[tokio::main]
async fn main() {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("soak: {error}");
            std::process::exit(2);
        }
    };
    if let Err(error) = soak(settings).await {
        eprintln!("soak: {error}");
        std::process::exit(1);
    }
}
