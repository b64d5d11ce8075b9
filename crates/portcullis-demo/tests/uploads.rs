//! Uploads on the real app: round trips, hostile names, hostile types, limits and
//! quotas, metadata removal, access control, and a browser that must not render a
//! stored file.

mod common;

use base64::Engine as _;
use common::{browser_like, client, csrf_token, database, register, Demo, PASSWORD};
use reqwest::multipart::{Form, Part};

const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
// 2×2 images written by Pillow.
const JPEG: &str = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsjHBYWICwgIyYnKSopGR8tMC0oMCUoKSj/2wBDAQcHBwoIChMKChMoGhYaKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCj/wAARCAACAAIDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDgKKKK+eP2E//Z";
const GIF: &str = "R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==";
const WEBP: &str =
    "UklGRjgAAABXRUJQVlA4ICwAAADQAQCdASoCAAIAAUAmJaACdLoB+AADsAD+8MQL/xZyMR2eb/52DYl2vWAAAA==";

fn decode(b64: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn pdf(size: usize) -> Vec<u8> {
    let mut doc = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%".to_vec();
    doc.resize(size.saturating_sub(6), b'x');
    doc.extend_from_slice(b"\n%%EOF");
    doc
}

struct User {
    http: reqwest::Client,
}

impl User {
    async fn new(demo: &Demo, name: &str) -> Self {
        let http = browser_like();
        assert_eq!(register(&http, demo, name, PASSWORD).await.status(), 303);
        Self { http }
    }

    async fn token(&self, demo: &Demo) -> String {
        let page = self.http.get(demo.url("/files")).send().await.unwrap();
        csrf_token(&page.text().await.unwrap())
    }

    async fn upload(&self, demo: &Demo, name: &str, bytes: Vec<u8>) -> reqwest::Response {
        let token = self.token(demo).await;
        let form = Form::new()
            .text("csrf_token", token)
            .part("file", Part::bytes(bytes).file_name(name.to_owned()));
        self.http
            .post(demo.url("/upload"))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// The ids and display names on `/files`.
    async fn files(&self, demo: &Demo) -> Vec<(String, String)> {
        let page = self
            .http
            .get(demo.url("/files"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        page.split("<a href=\"/files/")
            .skip(1)
            .map(|rest| {
                let (id, rest) = rest.split_once("\">").unwrap();
                let name = rest.split("</a>").next().unwrap();
                (id.to_owned(), name.to_owned())
            })
            .collect()
    }
}

async fn stored_rows(demo: &Demo) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM files")
        .fetch_one(&mut database(demo).await)
        .await
        .unwrap()
}

fn stored_files(demo: &Demo) -> Vec<String> {
    let dir = demo.data_dir.path().join("uploads");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".staging")
        .collect();
    names.sort();
    // Each instance stages in a folder of its own under `.staging`.
    let staging: usize = std::fs::read_dir(dir.join(".staging"))
        .unwrap()
        .flatten()
        .map(|instance| std::fs::read_dir(instance.path()).unwrap().count())
        .sum();
    assert_eq!(staging, 0, "a staged file was left behind");
    names
}

#[tokio::test]
async fn images_and_pdfs_go_up_and_come_back_as_attachments() {
    let demo = Demo::start(&[]);
    let alice = User::new(&demo, "alice").await;
    for (name, bytes, mime) in [
        ("dot.png", decode(PNG), "image/png"),
        ("dot.jpg", decode(JPEG), "image/jpeg"),
        ("dot.gif", decode(GIF), "image/gif"),
        ("dot.webp", decode(WEBP), "image/webp"),
        ("doc.pdf", pdf(2000), "application/pdf"),
    ] {
        let response = alice.upload(&demo, name, bytes.clone()).await;
        assert_eq!(response.status(), 303, "{name}");
        assert_eq!(response.headers()["location"], "/files");
        let (id, shown) = alice.files(&demo).await.into_iter().next().unwrap();
        assert_eq!(shown, name);
        assert_eq!(id.len(), 32, "ids are 128-bit random hex");
        let download = alice
            .http
            .get(demo.url(&format!("/files/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(download.status(), 200);
        let headers = download.headers().clone();
        assert_eq!(headers["content-type"], mime);
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(
            headers["content-security-policy"],
            "sandbox; default-src 'none'"
        );
        let disposition = headers["content-disposition"].to_str().unwrap();
        assert!(disposition.starts_with("attachment; "), "{disposition}");
        assert!(disposition.contains("filename*=UTF-8''"), "{disposition}");
        assert_eq!(download.bytes().await.unwrap().len(), bytes.len(), "{name}");
    }
    assert_eq!(stored_rows(&demo).await, 5);
    let files = stored_files(&demo);
    assert_eq!(files.len(), 5);
    assert!(files
        .iter()
        .all(|f| f.len() == 32 && f.bytes().all(|b| b.is_ascii_hexdigit())));
}

#[tokio::test]
async fn hostile_names_never_escape_the_folder_or_the_markup() {
    let demo = Demo::start(&[]);
    let mallory = User::new(&demo, "mallory").await;
    let names = [
        "../../etc/passwd.png",
        "..\\..\\..\\windows\\system32\\evil.png",
        "/etc/cron.d/job.png",
        "C:\\Windows\\evil.png",
        "\u{202E}gnp.exe.png",
        "<script>alert(1)</script>.png",
        "\"><img src=x onerror=alert(1)>.png",
        "CON.png",
    ];
    let long = format!("{}.png", "x".repeat(300));
    for name in names.iter().copied().chain([long.as_str()]) {
        let response = mallory.upload(&demo, name, decode(PNG)).await;
        assert_eq!(response.status(), 303, "{name:?}");
    }
    let listed = mallory.files(&demo).await;
    assert_eq!(listed.len(), names.len() + 1);
    let page = mallory
        .http
        .get(demo.url("/files"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("<img src=x"), "{page}");
    for (id, shown) in &listed {
        assert!(shown.len() <= 100, "{shown}");
        assert!(
            shown
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
            "{shown}"
        );
        let download = mallory
            .http
            .get(demo.url(&format!("/files/{id}")))
            .send()
            .await
            .unwrap();
        let disposition = download.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(!disposition.contains(".."), "{disposition}");
        assert!(
            !disposition.contains('/') && !disposition.contains('\\'),
            "{disposition}"
        );
    }
    // The ASCII fallback name keeps the guard too: Windows would open the device.
    let (con, _) = listed.iter().find(|(_, n)| n == "_CON.png").unwrap();
    let download = mallory
        .http
        .get(demo.url(&format!("/files/{con}")))
        .send()
        .await
        .unwrap();
    let disposition = download.headers()["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"_CON.png\";"),
        "{disposition}"
    );
    // A NUL in the name is refused by the form parser itself, or secured: never stored raw.
    let nul = mallory
        .upload(&demo, "a\0b.png", decode(PNG))
        .await
        .status()
        .as_u16();
    assert!(nul == 303 || nul == 400, "{nul}");
    assert!(listed.iter().any(|(_, n)| n == "etc_passwd.png"));
    // Only random names in the folder, nothing outside it.
    assert!(stored_files(&demo).iter().all(|f| f.len() == 32));
    assert!(!demo.data_dir.path().join("etc").exists());

    for empty in ["...", "..", "\u{202E}\u{202E}", "日本"] {
        let response = mallory.upload(&demo, empty, decode(PNG)).await;
        assert_eq!(response.status(), 400, "{empty:?}");
        let page = response.text().await.unwrap();
        assert!(page.contains("no usable characters"), "{page}");
    }
    // What is left of a hostile name is harmless text.
    assert!(
        listed.iter().any(|(_, n)| n == "scriptalert1_script.png"),
        "{listed:?}"
    );
}

#[tokio::test]
async fn dangerous_types_are_refused_with_a_clear_message() {
    let demo = Demo::start(&[]);
    let eve = User::new(&demo, "eve").await;
    let mut polyglot = decode(GIF);
    polyglot.extend_from_slice(b"<script>fetch('/api/me')</script>");
    let mut zip_as_pdf = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
    zip_as_pdf.extend_from_slice(&[0u8; 64]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "shell.php",
            b"<?php system($_GET['c']); ?>".to_vec(),
            "Text formats",
        ),
        (
            "page.html",
            b"<!doctype html><script>alert(1)</script>".to_vec(),
            "Text formats",
        ),
        (
            "logo.svg",
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>".to_vec(),
            "Text formats",
        ),
        (
            "setup.exe",
            b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff".to_vec(),
            ".exe",
        ),
        (
            "cat.png",
            b"<html><body><script>alert(1)</script></body></html>".to_vec(),
            "Text formats",
        ),
        ("cat.gif", polyglot, "markup or script"),
        ("report.pdf", zip_as_pdf, "not an accepted type"),
        ("photo.jpg", decode(PNG), "does not match"),
        ("empty.png", Vec::new(), "empty"),
    ];
    for (name, bytes, message) in cases {
        let response = eve.upload(&demo, name, bytes).await;
        let status = response.status().as_u16();
        assert!((400..500).contains(&status), "{name}: {status}");
        let page = response.text().await.unwrap();
        assert!(page.contains(message), "{name}: {page}");
    }
    assert_eq!(stored_rows(&demo).await, 0);
    assert!(stored_files(&demo).is_empty());
}

fn rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS:")
}

/// The most resident memory the process has had: catches a buffer freed again.
fn peak_rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM:")
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn oversized_uploads_get_413_and_leave_nothing_behind() {
    let demo = Demo::start(&[]);
    let bob = User::new(&demo, "bob").await;
    let limit = 5 * 1024 * 1024;
    let exact = bob.upload(&demo, "max.pdf", pdf(limit)).await;
    assert_eq!(exact.status(), 303, "exactly 5 MiB is allowed");
    let over = bob.upload(&demo, "over.pdf", pdf(limit + 1)).await;
    assert_eq!(over.status(), 413);
    assert!(over.text().await.unwrap().contains("larger than 5 MiB"));
    assert_eq!(stored_rows(&demo).await, 1);
    assert_eq!(stored_files(&demo).len(), 1);

    // A 40 MiB body streamed without a length: refused without the server holding it.
    let before = rss_kib(demo.pid());
    let token = bob.token(&demo).await;
    let chunks = futures_util::stream::iter((0..640).map(move |i| {
        let chunk = if i == 0 {
            let mut head = b"--X\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n".to_vec();
            head.extend_from_slice(token.as_bytes());
            head.extend_from_slice(
                b"\r\n--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4\n",
            );
            head
        } else {
            vec![b'x'; 64 * 1024]
        };
        Ok::<_, std::io::Error>(chunk)
    }));
    let response = bob
        .http
        .post(demo.url("/upload"))
        .header("content-type", "multipart/form-data; boundary=X")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    if let Ok(response) = response {
        assert_eq!(response.status(), 413);
    }
    let after = rss_kib(demo.pid());
    assert!(
        after < before + 20 * 1024,
        "memory grew by {} KiB for a 40 MiB body",
        after.saturating_sub(before)
    );
    assert_eq!(stored_rows(&demo).await, 1);
    assert_eq!(stored_files(&demo).len(), 1);
}

#[tokio::test]
async fn the_quota_is_enforced() {
    let demo = Demo::start(&[]);
    let carol = User::new(&demo, "carol").await;
    // Ten files of 5 MiB fill the 50 MiB quota exactly.
    for n in 0..10 {
        let response = carol
            .upload(&demo, &format!("part{n}.pdf"), pdf(5 * 1024 * 1024))
            .await;
        assert_eq!(response.status(), 303, "file {n}");
    }
    let over = carol.upload(&demo, "one-more.pdf", pdf(1000)).await;
    assert_eq!(over.status(), 413);
    assert!(over.text().await.unwrap().contains("quota"));
    assert_eq!(stored_rows(&demo).await, 10);
    assert_eq!(stored_files(&demo).len(), 10);
    // Another user's quota is their own.
    let dave = User::new(&demo, "dave").await;
    assert_eq!(
        dave.upload(&demo, "mine.pdf", pdf(1000)).await.status(),
        303
    );
}

/// A JPEG whose EXIF holds a GPS position.
fn jpeg_with_gps() -> Vec<u8> {
    // TIFF, little endian: IFD0 with one entry (GPSInfo → offset 26), then the GPS IFD
    // with GPSLatitudeRef = "N" and GPSLongitudeRef = "E".
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend_from_slice(&[1, 0]); // one entry
    tiff.extend_from_slice(&[0x25, 0x88, 4, 0, 1, 0, 0, 0, 26, 0, 0, 0]); // GPSInfo, LONG
    tiff.extend_from_slice(&[0, 0, 0, 0]); // no next IFD
    tiff.extend_from_slice(&[2, 0]); // GPS IFD: two entries
    tiff.extend_from_slice(&[1, 0, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]);
    tiff.extend_from_slice(&[3, 0, 2, 0, 2, 0, 0, 0, b'E', 0, 0, 0]);
    tiff.extend_from_slice(&[0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let jpeg = decode(JPEG);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&u16::try_from(app1.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn gps_tags(jpeg: &[u8]) -> usize {
    let Ok(exif) = exif::Reader::new().read_from_container(&mut std::io::Cursor::new(jpeg)) else {
        return 0;
    };
    exif.fields()
        .filter(|f| f.ifd_num == exif::In::PRIMARY && f.tag.context() == exif::Context::Gps)
        .count()
}

#[tokio::test]
async fn gps_metadata_is_removed_from_photos() {
    let photo = jpeg_with_gps();
    assert_eq!(gps_tags(&photo), 2, "the test photo carries a position");
    let demo = Demo::start(&[]);
    let frank = User::new(&demo, "frank").await;
    assert_eq!(
        frank
            .upload(&demo, "holiday.jpg", photo.clone())
            .await
            .status(),
        303
    );
    let (id, _) = frank.files(&demo).await.remove(0);
    let stored = frank
        .http
        .get(demo.url(&format!("/files/{id}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(gps_tags(&stored), 0, "the position survived the upload");
    assert!(!stored.windows(6).any(|w| w == b"Exif\0\0"));
    assert!(stored.starts_with(&[0xFF, 0xD8]), "still a JPEG");
    assert!(stored.len() < photo.len());
}

#[tokio::test]
async fn files_are_private_and_uploads_need_the_token() {
    let demo = Demo::start(&[]);
    let owner = User::new(&demo, "owner").await;
    assert_eq!(
        owner
            .upload(&demo, "secret.png", decode(PNG))
            .await
            .status(),
        303
    );
    let (id, _) = owner.files(&demo).await.remove(0);
    let stranger = User::new(&demo, "stranger").await;
    let theirs = stranger
        .http
        .get(demo.url(&format!("/files/{id}")))
        .send()
        .await
        .unwrap();
    let absent = stranger
        .http
        .get(demo.url(&format!("/files/{}", "0".repeat(32))))
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 404);
    assert_eq!(absent.status(), 404);
    let (theirs, absent) = (theirs.text().await.unwrap(), absent.text().await.unwrap());
    let strip = |page: &str| page.split("nonce=\"").next().unwrap().to_owned();
    assert_eq!(strip(&theirs), strip(&absent), "existence must not show");
    for path in [
        format!("/files/{id}"),
        "/files/1".into(),
        "/files/../../etc/passwd".into(),
    ] {
        let anonymous = client().get(demo.url(&path)).send().await.unwrap();
        assert_eq!(anonymous.status(), 404, "{path}");
    }
    let list = client().get(demo.url("/files")).send().await.unwrap();
    assert_eq!(list.status(), 303);
    assert_eq!(list.headers()["location"], "/login?next=/files");

    let no_token = owner
        .http
        .post(demo.url("/upload"))
        .multipart(Form::new().part("file", Part::bytes(decode(PNG)).file_name("a.png")))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 403);
    let anonymous = client()
        .post(demo.url("/upload"))
        .multipart(Form::new().part("file", Part::bytes(decode(PNG)).file_name("a.png")))
        .send()
        .await
        .unwrap();
    assert!(anonymous.status().is_client_error());
    assert_eq!(stored_rows(&demo).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_does_not_render_a_stored_file() {
    let Some(browser) = common::webdriver::start().await else {
        return;
    };
    // A beacon that any script run from the file would call.
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let beacon = {
        let hits = hits.clone();
        let app = axum::Router::new().fallback(move || {
            hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { "seen" }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    };
    let demo = Demo::start(&[]);
    browser.goto(&demo.url("/register")).await;
    browser.fill("#username", "viewer").await;
    browser.fill("#password", PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_text("Signed in as viewer").await;

    // Store a genuine image, then replace its bytes on disk with HTML, as if a type
    // check had been fooled: the serving side alone must keep it inert.
    let http = browser_like();
    common::login(&http, &demo, "viewer", PASSWORD).await;
    let viewer = User { http };
    assert_eq!(
        viewer.upload(&demo, "pic.png", decode(PNG)).await.status(),
        303
    );
    let (id, _) = viewer.files(&demo).await.remove(0);
    let stored = stored_files(&demo).remove(0);
    std::fs::write(
        demo.data_dir.path().join("uploads").join(stored),
        format!(
            "<html><head><title>rendered</title></head><body>\
             <script>fetch('http://{beacon}/script-ran')</script>\
             <img src=\"http://{beacon}/image-loaded\"></body></html>"
        ),
    )
    .unwrap();

    browser.goto(&demo.url("/files")).await;
    browser.goto(&demo.url(&format!("/files/{id}"))).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let title = browser.run("return document.title").await;
    assert_ne!(title, "rendered", "the stored file was rendered as a page");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the stored file ran script or loaded content"
    );
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_cannot_pass_the_quota_on_sqlite() {
    let demo = Demo::start(&[]);
    let accepted = common::race_the_quota(&demo, "racer").await;
    let bytes: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(size), 0) FROM files")
        .fetch_one(&mut database(&demo).await)
        .await
        .unwrap();
    assert_eq!(accepted, 1, "exactly one of the eight fits");
    assert_eq!(stored_rows(&demo).await, 10);
    assert!(bytes <= 50 * 1024 * 1024, "{bytes} bytes stored");
    assert_eq!(
        stored_files(&demo).len(),
        10,
        "refused uploads leave no file"
    );
}

/// EXIF (GPS included) anywhere a JPEG starts inside `bytes`: the photo itself or
/// one appended after it.
fn gps_tags_anywhere(bytes: &[u8]) -> usize {
    (0..bytes.len().saturating_sub(2))
        .filter(|&i| bytes[i..].starts_with(&[0xFF, 0xD8, 0xFF]))
        .map(|i| gps_tags(&bytes[i..]))
        .sum()
}

async fn upload_and_fetch(user: &User, demo: &Demo, name: &str, bytes: Vec<u8>) -> Vec<u8> {
    let response = user.upload(demo, name, bytes).await;
    assert_eq!(response.status(), 303, "{name}");
    let (id, _) = user.files(demo).await.remove(0);
    user.http
        .get(demo.url(&format!("/files/{id}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

#[tokio::test]
async fn images_and_videos_hidden_after_a_photo_are_not_stored() {
    let demo = Demo::start(&[]);
    let grace = User::new(&demo, "grace").await;
    // A multi-picture file: the photo, then a second JPEG with its own position.
    let photo = jpeg_with_gps();
    let mut multi = photo.clone();
    multi.extend_from_slice(&photo);
    assert_eq!(gps_tags_anywhere(&multi), 4);
    let stored = upload_and_fetch(&grace, &demo, "multi.jpg", multi).await;
    assert_eq!(gps_tags_anywhere(&stored), 0, "a position survived");
    assert!(stored.len() < photo.len(), "the second image survived");
    assert!(stored.ends_with(&[0xFF, 0xD9]));

    // A Motion Photo: the still, then a video of the place.
    let mut motion = decode(JPEG);
    motion.extend_from_slice(b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom\0\0\0\x10mdatVIDEO-FRAMES");
    let stored = upload_and_fetch(&grace, &demo, "motion.jpg", motion).await;
    assert!(
        !stored.windows(4).any(|w| w == b"ftyp"),
        "the video survived"
    );
    assert_eq!(stored.len(), decode(JPEG).len());

    // A GIF with a comment and an XMP packet.
    let gif = decode(GIF);
    let mut tagged = gif[..gif.len() - 1].to_vec();
    tagged.extend_from_slice(b"\x21\xfe\x0bGPS 48.85 N\0");
    tagged.extend_from_slice(b"\x21\xff\x0bXMP DataXMP\x0d<x:xmpmeta/>\x01\0;");
    let stored = upload_and_fetch(&grace, &demo, "tagged.gif", tagged).await;
    assert_eq!(stored, gif, "exactly the image, without comment or XMP");
}

#[tokio::test]
async fn active_pdfs_and_pdf_bombs_are_refused_with_bounded_memory() {
    let wrap = |body: &[u8]| {
        let mut doc = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n".to_vec();
        doc.extend_from_slice(body);
        doc.extend_from_slice(b"\n%%EOF\n");
        doc
    };
    let object_stream = |objects: &[u8], level: u8| {
        let compressed = miniz_oxide::deflate::compress_to_vec_zlib(objects, level);
        let mut out = format!(
            "3 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length {} >>\nstream\n",
            compressed.len()
        )
        .into_bytes();
        out.extend_from_slice(&compressed);
        out.extend_from_slice(b"\nendstream\nendobj");
        out
    };
    // 512 MiB of object stream in well under the 5 MiB upload limit. Built before the
    // first request: compressing takes seconds, and a client whose runtime is blocked
    // that long cannot notice that the server closed its idle kept-alive connection.
    let bomb = wrap(&object_stream(&vec![b' '; 512 << 20], 1));
    let bomb_len = bomb.len();
    assert!(bomb_len < 5 << 20, "{bomb_len} bytes");
    let demo = Demo::start(&[]);
    let heidi = User::new(&demo, "heidi").await;
    for (name, body, feature) in [
        (
            "escaped.pdf",
            b"2 0 obj\n<< /S /J#61vaScript >>\nendobj".to_vec(),
            "/JavaScript",
        ),
        (
            "newline.pdf",
            b"2 0 obj\n<< /JS\n(app.alert(1)) >>\nendobj".to_vec(),
            "/JS",
        ),
        (
            "aa.pdf",
            b"2 0 obj\n<< /AA << /O 4 0 R >> >>\nendobj".to_vec(),
            "/AA",
        ),
        (
            "launch.pdf",
            b"2 0 obj\n<< /S /Launch /F (cmd.exe) >>\nendobj".to_vec(),
            "/Launch",
        ),
        (
            "submit.pdf",
            b"2 0 obj\n<< /S /SubmitForm >>\nendobj".to_vec(),
            "/SubmitForm",
        ),
        (
            "attached.pdf",
            b"2 0 obj\n<< /Type /EmbeddedFile >>\nendobj".to_vec(),
            "/EmbeddedFile",
        ),
        (
            "compressed.pdf",
            object_stream(b"4 0 << /S /JavaScript /JS (app.alert(1)) >>", 6),
            "/JavaScript",
        ),
    ] {
        let response = heidi.upload(&demo, name, wrap(&body)).await;
        assert_eq!(response.status(), 415, "{name}");
        let page = response.text().await.unwrap();
        assert!(
            page.contains(&common::escaped(&format!(
                "PDFs with active content ({feature})"
            ))),
            "{name}: {page}"
        );
    }
    let before = rss_kib(demo.pid());
    let response = heidi.upload(&demo, "bomb.pdf", bomb).await;
    assert_eq!(response.status(), 415);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("could not be inspected"));
    // The peak, not what is left afterwards: the inflated buffer is freed again.
    let peak = peak_rss_kib(demo.pid());
    eprintln!(
        "peak resident memory {} KiB above the level before a {} KiB PDF inflating to 512 MiB",
        peak.saturating_sub(before),
        bomb_len / 1024
    );
    assert!(
        peak < before + 64 * 1024,
        "memory peaked {} KiB higher for a 512 MiB bomb",
        peak.saturating_sub(before)
    );
    assert_eq!(stored_rows(&demo).await, 0);
    assert!(stored_files(&demo).is_empty());
}
