//! Safe upload and download of images: the type is decided by the bytes and must agree
//! with the name, metadata (EXIF GPS included) is stripped, files are stored under
//! random names outside anything served, and downloads are attachments no browser
//! renders.
//!
//!     cargo run -p example-uploads
//!     curl -F file=@photo.jpg http://127.0.0.1:3000/upload

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use portcullis::error::Error;
use portcullis::serve::ServeConfig;
use portcullis::stack::SecureStack;
use portcullis::upload::{
    display_name, download_headers, is_valid_id, strip_metadata, FileKind, LocalStorage,
    UploadPolicy, UploadStorage,
};

const MAX_FILE: u64 = 2 * 1024 * 1024;

#[derive(Clone)]
struct AppState {
    policy: UploadPolicy,
    storage: Arc<LocalStorage>,
    /// Storage name to display name and verified kind (a real app keeps a table).
    files: Arc<Mutex<HashMap<String, (String, FileKind)>>>,
}

async fn form() -> Html<&'static str> {
    Html(
        "<form method=post action=/upload enctype=multipart/form-data>\
         <input type=file name=file accept=image/*><button>Upload</button></form>",
    )
}

async fn upload(
    State(state): State<AppState>,
    mut multipart: Multipart,
) -> Result<Response, Error> {
    let unreadable = |e: axum::extract::multipart::MultipartError| Error::for_status(e.status());
    let Some(field) = multipart.next_field().await.map_err(unreadable)? else {
        return Err(Error::bad_request("Choose a file to upload."));
    };
    let name = field.file_name().unwrap_or_default().to_owned();
    let bytes = field.bytes().await.map_err(unreadable)?;
    // The name is display metadata only (length-capped, no path, no device names).
    let display = display_name(&name, state.policy.name_limit())?;
    // Magic bytes and extension must agree: `evil.html` renamed `cat.png` is a 415.
    let kind = state.policy.check(&name, &bytes)?;
    // Parsing images is CPU work: off the async workers.
    let storage = state.storage.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let clean = strip_metadata(kind, bytes.to_vec())?;
        let staged = storage.stage(&clean).map_err(|_| Error::internal())?;
        storage.commit(&staged).map_err(|_| Error::internal())?;
        Ok::<_, Error>(staged.name)
    })
    .await
    .map_err(|_| Error::internal())??;
    state
        .files
        .lock()
        .unwrap()
        .insert(stored.clone(), (display, kind));
    let url = format!("/files/{stored}");
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "url": url }))).into_response())
}

async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    // Only ids of the shape the storage makes are looked up.
    let found = is_valid_id(&id).then(|| state.files.lock().unwrap().get(&id).cloned());
    let Some((display, kind)) = found.flatten() else {
        return Err(Error::not_found());
    };
    let storage = state.storage.clone();
    let bytes = tokio::task::spawn_blocking(move || storage.read(&id))
        .await
        .map_err(|_| Error::internal())?
        .map_err(|_| Error::not_found())?;
    // The verified type, `Content-Disposition: attachment`, `nosniff`, a sandbox CSP.
    Ok((download_headers(kind, &display), bytes).into_response())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _logs = portcullis::logging::init("info");
    let policy = UploadPolicy::default()
        .allow([FileKind::Png, FileKind::Jpeg, FileKind::Gif, FileKind::Webp])
        .max_file_bytes(MAX_FILE);
    // Never a folder the app serves; files get random 128-bit names.
    let folder = std::env::var("UPLOAD_DIR")
        .map(Into::into)
        .unwrap_or_else(|_| std::env::temp_dir().join("portcullis-example-uploads"));
    let state = AppState {
        policy,
        storage: Arc::new(LocalStorage::new(folder)?),
        files: Arc::default(),
    };

    // One file plus the form around it.
    let request_limit = MAX_FILE as usize + 64 * 1024;
    let router = Router::new()
        .route("/", get(form))
        // axum's own 2 MB default would cut in first; the stack's limit below governs.
        .route("/upload", post(upload).layer(DefaultBodyLimit::disable()))
        .route("/files/{id}", get(download))
        .with_state(state);
    let app = SecureStack::default()
        .without_https_redirect() // development only: plain HTTP on loopback
        // Every other route keeps the 1 MiB default; larger gets 413.
        .route_body_limit("/upload", request_limit)
        .apply(router)?;

    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://127.0.0.1:{port}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    portcullis::serve::serve(listener, app, ServeConfig::default(), shutdown).await?;
    Ok(())
}
