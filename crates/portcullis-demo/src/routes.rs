//! The routes of the reference app.

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use portcullis::csp::CspNonce;
use portcullis::error::Error;

use crate::AppState;

/// Every route of the app.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/", get(index))
        .route("/static/style.css", get(style))
        .route("/static/app.js", get(script))
}

async fn healthz() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok")
}

async fn index(State(state): State<AppState>, nonce: CspNonce) -> Result<Html<String>, Error> {
    let comments = state.db.newest_comments(20).await.map_err(|e| {
        tracing::error!(error = %e, "cannot read comments");
        Error::service_unavailable(5)
    })?;
    state.templates.render(
        "index.html",
        &nonce,
        serde_json::json!({ "comments": comments }),
    )
}

const CACHE: &str = "public, max-age=3600";

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        include_str!("../static/style.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        include_str!("../static/app.js"),
    )
}
