//! `/upload`, `/files` and `/files/{id}`: every decision is the library's upload
//! policy; this module streams the form, stores, records and serves.

use std::sync::Arc;

use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use portcullis::auth::{CurrentUser, MaybeUser};
use portcullis::error::Error;
use portcullis::templates::Page;
use portcullis::upload::{
    display_name, download_headers, is_valid_id, random_id, strip_metadata, FileKind, UploadError,
    UploadPolicy, UploadStorage,
};
use serde_json::json;

use crate::db::StoredFile;
use crate::AppState;

/// The upload routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/files", get(list))
        .route("/files/{id}", get(download))
        // The stack's upload route sets this route's body limit from the policy.
        .route("/upload", post(upload))
}

fn unavailable(error: impl std::fmt::Display) -> Error {
    tracing::error!(%error, "storage or database error");
    Error::service_unavailable(5)
}

async fn render_files(
    state: &AppState,
    page: &Page,
    user_id: i64,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, Error> {
    let files = state.db.files_of(user_id).await.map_err(unavailable)?;
    let username = state.db.username(user_id).await.map_err(unavailable)?;
    let html = state.templates.render(
        "files.html",
        page,
        json!({
            "user": { "id": user_id, "username": username },
            "files": files,
            "error": error,
        }),
    )?;
    Ok((status, html).into_response())
}

async fn list(
    State(state): State<AppState>,
    page: Page,
    user: MaybeUser,
) -> Result<Response, Error> {
    match user.0 {
        Some(id) => render_files(&state, &page, id, StatusCode::OK, None).await,
        None => Ok(Redirect::to("/login?next=/files").into_response()),
    }
}

/// Reads the multipart form, holding at most one file of at most the policy's limit:
/// a larger one is refused as soon as its bytes pass the limit.
async fn read_form(
    policy: &UploadPolicy,
    multipart: &mut Multipart,
) -> Result<(String, Vec<u8>), Result<UploadError, Error>> {
    let multipart_error = |e: axum::extract::multipart::MultipartError| {
        tracing::debug!(error = %e, "multipart body refused");
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Ok(policy.too_large())
        } else {
            Err(Error::bad_request("The upload form could not be read."))
        }
    };
    let mut file = None;
    let mut count = 0;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("file") => {
                count += 1;
                if count > policy.file_count_limit() {
                    return Err(Ok(UploadError::TooManyFiles(policy.file_count_limit())));
                }
                let name = field.file_name().unwrap_or_default().to_owned();
                let mut data = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    if (data.len() + chunk.len()) as u64 > policy.file_limit() {
                        return Err(Ok(policy.too_large()));
                    }
                    data.extend_from_slice(&chunk);
                }
                file = Some((name, data));
            }
            Some("csrf_token") => {}
            _ => {
                return Err(Err(Error::bad_request(
                    "The upload form has unexpected fields.",
                )))
            }
        }
    }
    file.ok_or(Err(Error::bad_request("Choose a file to upload.")))
}

async fn upload(
    State(state): State<AppState>,
    page: Page,
    user: CurrentUser,
    mut multipart: Multipart,
) -> Result<Response, Error> {
    let policy = &state.upload_policy;
    let refuse = |error: UploadError| {
        let state = state.clone();
        let page = page.clone();
        async move {
            render_files(
                &state,
                &page,
                user.id,
                error.status(),
                Some(error.to_string()),
            )
            .await
        }
    };
    let (name, data) = match read_form(policy, &mut multipart).await {
        Ok(file) => file,
        Err(Ok(refusal)) => return refuse(refusal).await,
        Err(Err(error)) => return Err(error),
    };
    let checked = display_name(&name, policy.name_limit()).and_then(|display| {
        let kind = policy.check(&name, &data)?;
        Ok((display, kind))
    });
    let (display, kind) = match checked {
        Ok(checked) => checked,
        Err(refusal) => return refuse(refusal).await,
    };
    // Stripping parses the image; keep that off the async workers.
    let cleaned = tokio::task::spawn_blocking(move || strip_metadata(kind, data))
        .await
        .map_err(unavailable)?;
    let data = match cleaned {
        Ok(data) => data,
        Err(refusal) => return refuse(refusal).await,
    };
    match store(&state, user.id, display, kind, data).await {
        Ok(true) => Ok(Redirect::to("/files").into_response()),
        Ok(false) => {
            refuse(UploadError::QuotaExceeded {
                quota_mib: policy.quota_mib(),
            })
            .await
        }
        Err(error) => Err(error),
    }
}

/// Stages the bytes, records the row and publishes the file in one transaction;
/// anything that fails leaves neither a row nor a file behind.
async fn store(
    state: &AppState,
    owner: i64,
    display: String,
    kind: FileKind,
    data: Vec<u8>,
) -> Result<bool, Error> {
    let storage: Arc<dyn UploadStorage> = state.uploads.clone();
    let size = i64::try_from(data.len()).unwrap_or(i64::MAX);
    let staged = tokio::task::spawn_blocking({
        let storage = storage.clone();
        move || storage.stage(&data)
    })
    .await
    .map_err(unavailable)?
    .map_err(unavailable)?;
    let record = StoredFile {
        id: random_id(),
        display_name: display,
        content_type: kind.mime().to_owned(),
        size,
        storage_name: staged.name.clone(),
        created_at: String::new(),
    };
    let quota = state.upload_policy.quota();
    let result = state
        .db
        .add_file(&record, owner, quota, || storage.commit(&staged))
        .await;
    match result {
        Ok(true) => Ok(true),
        Ok(false) => {
            let _ = storage.discard(&staged.name);
            Ok(false)
        }
        Err(error) => {
            let _ = storage.discard(&staged.name);
            Err(unavailable(error))
        }
    }
}

async fn download(
    State(state): State<AppState>,
    user: MaybeUser,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    // Anonymous, malformed, absent and someone else's: all the same 404.
    let (Some(owner), true) = (user.0, is_valid_id(&id)) else {
        return Err(Error::not_found());
    };
    let Some(file) = state.db.file_of(&id, owner).await.map_err(unavailable)? else {
        return Err(Error::not_found());
    };
    let kind = FileKind::from_mime(&file.content_type).ok_or_else(Error::not_found)?;
    let storage = state.uploads.clone();
    let name = file.storage_name.clone();
    let bytes = tokio::task::spawn_blocking(move || storage.read(&name))
        .await
        .map_err(unavailable)?
        .map_err(unavailable)?;
    Ok((download_headers(kind, &file.display_name), bytes).into_response())
}
