//! Starts the real demo binary on 127.0.0.1:0 with a clean environment.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod pg;
pub mod webdriver;

pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis-demo");

/// A key that passes every strength check (generated once with `portcullis keygen`).
pub const STRONG_KEY: &str = "7KHIAi9gsOHMjhZMVNScQDHLYfcgZwyIFsa9Fx04Wqw";

/// A command for the demo with nothing inherited but `PATH`.
pub fn command(envs: &[(&str, &str)], data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORTCULLIS_ADDR", "127.0.0.1:0")
        .env("PORTCULLIS_DATA_DIR", data_dir)
        .env("PORTCULLIS_LOG", "info")
        // Any working directory must do: templates and static files are compiled in.
        .current_dir(data_dir);
    for (name, value) in envs {
        command.env(name, value);
    }
    command
}

/// A running demo; killed on drop.
pub struct Demo {
    child: Child,
    /// `http://127.0.0.1:PORT` or `https://…`.
    pub base: String,
    /// The plain port that only redirects, when TLS is on.
    pub redirect_base: Option<String>,
    /// Every log line so far.
    pub logs: Arc<Mutex<Vec<String>>>,
    pub data_dir: tempfile::TempDir,
}

impl Demo {
    pub fn start(envs: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        Self::start_in(envs, data_dir)
    }

    pub fn start_in(envs: &[(&str, &str)], data_dir: tempfile::TempDir) -> Self {
        let command = command(envs, data_dir.path());
        Self::spawn(command, data_dir)
    }

    /// Starts the demo allowed at most `files` open files (`RLIMIT_NOFILE`), through
    /// util-linux's `prlimit`, which sets the limit and then runs the demo itself.
    pub fn start_with_open_file_limit(envs: &[(&str, &str)], files: u64) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let plain = command(envs, data_dir.path());
        let mut limited = Command::new("prlimit");
        limited
            .arg(format!("--nofile={files}:{files}"))
            .arg(plain.get_program())
            .env_clear()
            .envs(plain.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .current_dir(data_dir.path());
        Self::spawn(limited, data_dir)
    }

    fn spawn(mut command: Command, data_dir: tempfile::TempDir) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let (base, redirect_base) = loop {
            {
                let lines = logs.lock().unwrap();
                if let Some(base) = lines
                    .iter()
                    .find_map(|l| l.split("listening on ").nth(1))
                    .map(|s| s.trim().to_owned())
                {
                    let redirect = lines
                        .iter()
                        .find(|l| l.contains("redirecting plain HTTP"))
                        .and_then(|l| l.split("addr=").nth(1))
                        .map(|a| format!("http://{}", a.split_whitespace().next().unwrap()));
                    break (base, redirect);
                }
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the demo exited with {status}: {:?}", logs.lock().unwrap());
            }
            assert!(Instant::now() < deadline, "the demo did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child,
            base,
            redirect_base,
            logs,
            data_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the app and hands back its data folder, to start another on the same data.
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let empty = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.data_dir, empty)
    }

    /// The process id, to read its memory use.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the demo expecting it to refuse to start; returns its exit code and stderr.
pub fn refuse(envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let data_dir = tempfile::tempdir().unwrap();
    let mut child = command(envs, data_dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo started although it should have refused: {envs:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A client that keeps cookies, as a browser does.
pub fn browser_like() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// The CSRF token of the first form in `html`.
pub fn csrf_token(html: &str) -> String {
    html.split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token in {html}"))
        .to_owned()
}

/// Fetches `path` and returns the CSRF token of its form.
pub async fn token_from(client: &reqwest::Client, demo: &Demo, path: &str) -> String {
    let html = client
        .get(demo.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    csrf_token(&html)
}

/// Submits the form at `path` (`/register` or `/login`) as a person would: fetch it
/// for its token, then post the credentials.
async fn submit_credentials(
    client: &reqwest::Client,
    demo: &Demo,
    path: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let token = token_from(client, demo, path).await;
    client
        .post(demo.url(path))
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap()
}

/// Registers `username` (and so logs in) through the real form.
pub async fn register(
    client: &reqwest::Client,
    demo: &Demo,
    username: &str,
    password: &str,
) -> reqwest::Response {
    submit_credentials(client, demo, "/register", username, password).await
}

/// Logs in through the real form.
pub async fn login(
    client: &reqwest::Client,
    demo: &Demo,
    username: &str,
    password: &str,
) -> reqwest::Response {
    submit_credentials(client, demo, "/login", username, password).await
}

/// The page at `path` as seen with the session cookie `value` (and nothing else).
pub async fn page_with_session(demo: &Demo, path: &str, value: &str) -> String {
    client()
        .get(demo.url(path))
        .header("cookie", format!("session={value}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `text` as the templates escape it.
pub fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

/// `text` as sanitised Markdown shows it: only `&`, `<` and `>` escaped.
pub fn html_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The comments section of the home page.
pub fn comments_section(page: &str) -> &str {
    let start = page
        .find("<section class=\"comments\"")
        .expect("the page lists comments");
    let end = page[start..].find("</section>").expect("the section ends") + start;
    &page[start..end]
}

/// Fails if `html` holds an element that can run script, load anything or clobber a
/// global, or any event-handler attribute or script URL.
pub fn assert_no_active_markup(html: &str, payload: &str) {
    let lower = html.to_ascii_lowercase();
    for element in [
        "<script",
        "<iframe",
        "<svg",
        "<math",
        "<object",
        "<embed",
        "<meta",
        "<style",
        "<link",
        "<base",
        "<form",
        "<input",
        "<button",
        "<img",
        "<body",
        "<video",
        "<audio",
        "<frame",
        "<template",
        "<noscript",
    ] {
        assert!(
            !lower.contains(element),
            "{element} from {payload:?}: {html}"
        );
    }
    // Every tag's attributes: no handler, style, id or name; no script URL.
    for tag in lower
        .split('<')
        .skip(1)
        .map(|t| t.split('>').next().unwrap_or(""))
    {
        for attribute in tag.split_whitespace().skip(1) {
            let name = attribute.split('=').next().unwrap_or("");
            assert!(
                !(name.starts_with("on") || ["style", "id", "name", "srcset"].contains(&name)),
                "attribute {name} from {payload:?}: {html}"
            );
        }
        for scheme in ["javascript:", "data:", "vbscript:"] {
            assert!(!tag.contains(scheme), "{scheme} from {payload:?}: {html}");
        }
    }
}

/// Posts a comment through the form on `/`.
pub async fn comment(client: &reqwest::Client, demo: &Demo, body: &str) -> reqwest::Response {
    let token = token_from(client, demo, "/").await;
    client
        .post(demo.url("/comments"))
        .form(&[("body", body), ("csrf_token", &token)])
        .send()
        .await
        .unwrap()
}

/// A strong password for test accounts.
pub const PASSWORD: &str = "correct horse battery staple 42";

/// An open connection to the demo's SQLite database.
pub async fn database(demo: &Demo) -> sqlx::SqliteConnection {
    use sqlx::Connection as _;
    let path = demo.data_dir.path().join("portcullis.db");
    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

/// Registers `alice`, then tries `Alice` and ` ALICE `: a name is one account whatever
/// its case, so both are refused (409) and logging in as `ALICE` is logging in as
/// `alice`. Checks every engine alike.
pub async fn usernames_differing_in_case_are_one_account(demo: &Demo) {
    assert_eq!(
        register(&browser_like(), demo, "alice", PASSWORD)
            .await
            .status(),
        303
    );
    for other in ["Alice", " ALICE "] {
        assert_eq!(
            register(&browser_like(), demo, other, PASSWORD)
                .await
                .status(),
            409,
            "{other:?} registered beside alice"
        );
    }
    assert_eq!(
        login(&browser_like(), demo, "ALICE", PASSWORD)
            .await
            .status(),
        303
    );
}

/// A PDF of exactly `size` bytes with nothing active in it.
pub fn plain_pdf(size: usize) -> Vec<u8> {
    let mut doc = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%".to_vec();
    doc.resize(size.saturating_sub(6), b'x');
    doc.extend_from_slice(b"\n%%EOF");
    doc
}

/// Uploads `bytes` as `name` through the real form of the logged-in `client`.
pub async fn upload_file(
    client: &reqwest::Client,
    demo: &Demo,
    name: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    let token = token_from(client, demo, "/files").await;
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", token)
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
    client
        .post(demo.url("/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// Registers `username`, fills 45 MiB of the 50 MiB quota with nine 5 MiB files,
/// then sends eight more 5 MiB uploads at once, each on a connection of its own.
/// Returns how many of the eight were accepted; every other one must be a 413.
pub async fn race_the_quota(demo: &Demo, username: &str) -> usize {
    const FIVE_MIB: usize = 5 * 1024 * 1024;
    let http = browser_like();
    assert_eq!(
        register(&http, demo, username, PASSWORD).await.status(),
        303
    );
    for n in 0..9 {
        let response = upload_file(&http, demo, &format!("fill{n}.pdf"), plain_pdf(FIVE_MIB)).await;
        assert_eq!(response.status(), 303, "file {n}");
    }
    // Tokens first, so that the eight requests leave together.
    let mut racers = Vec::new();
    for n in 0..8 {
        let token = token_from(&http, demo, "/files").await;
        let form = reqwest::multipart::Form::new()
            .text("csrf_token", token)
            .part(
                "file",
                reqwest::multipart::Part::bytes(plain_pdf(FIVE_MIB))
                    .file_name(format!("race{n}.pdf")),
            );
        let request = http.post(demo.url("/upload")).multipart(form);
        racers.push(async move { request.send().await.unwrap().status().as_u16() });
    }
    let statuses = futures_util::future::join_all(racers).await;
    for status in &statuses {
        assert!(*status == 303 || *status == 413, "{statuses:?}");
    }
    statuses.iter().filter(|s| **s == 303).count()
}
