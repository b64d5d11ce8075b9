//! The floor of the Portcullis benchmarks: what the reference app's routes cost on
//! bare axum, with no security layer at all.
//!
//! It serves the routes that `bench/run.sh` loads, doing the same application work as
//! `portcullis-demo` (the same template from the same SQLite rows, the same queries)
//! and nothing else: no secure headers, no CSP nonce on the response, no sessions,
//! CSRF, rate limits, request ids, logging or authentication. The demo's throughput
//! divided by the floor's is then what the security costs.
//!
//! - `GET /healthz`: `ok`, text/plain.
//! - `GET /`: `index.html` as the demo renders it for an anonymous visitor, each
//!   comment's Markdown rendered to sanitised HTML as the demo renders it (that is
//!   the page's content, so the floor does it too).
//! - `GET /api/me`: a fixed user, where the demo verifies a token and reads a row.
//! - `GET /api/comments?limit=N`: the newest comments as JSON, with `body_html`.
//! - `POST /api/comments`: JSON `{"body"}`, stored as user 1, answered 201.
//!
//! `FLOOR_ADDR` (default `127.0.0.1:8100`) is where the binary listens and
//! `PORTCULLIS_DATA_DIR` (default `./data`) where it finds `portcullis.db`, the
//! demo's layout.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use portcullis::csp::CspNonce;
use portcullis::sanitize::Sanitizer;
use portcullis::templates::{Page, Templates};
use portcullis_demo::comments::{CommentRenderer, RenderedComment};
use portcullis_demo::db::Database;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone)]
struct Floor {
    db: Database,
    templates: Templates,
    rich_text: CommentRenderer,
}

// Failures answer a bare 500: the floor has no error pages, and a benchmark that sees
// non-2xx answers reports them.
fn failed<E>(_: E) -> StatusCode {
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn healthz() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok")
}

async fn index(State(floor): State<Floor>) -> Result<Html<String>, StatusCode> {
    let comments = floor.db.newest_comments(20).await.map_err(failed)?;
    let comments = floor.rich_text.render_all(comments);
    // The templates call `csp_nonce()`, so a page needs a nonce even though no
    // policy is sent; generating it is the only security-related work left here.
    let page = Page::new(CspNonce::generate());
    // The context the demo renders for an anonymous visitor.
    floor
        .templates
        .render(
            "index.html",
            &page,
            minijinja::context! { comments, user => (), body => "", error => () },
        )
        .map_err(failed)
}

/// The demo's `/api/me` answer, with no token to check and no row to read.
#[derive(Debug, Serialize)]
struct Me {
    id: i64,
    username: &'static str,
    created_at: &'static str,
}

async fn me() -> Json<Me> {
    Json(Me {
        id: 1,
        username: "bench",
        created_at: "2026-01-01T00:00:00Z",
    })
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<i64>,
}

async fn list_comments(
    State(floor): State<Floor>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<RenderedComment>>, StatusCode> {
    // The range is the query's meaning (SQLite reads a negative LIMIT as none), not a
    // protection, so the floor keeps it.
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(StatusCode::BAD_REQUEST);
    }
    let comments = floor.db.newest_comments(limit).await.map_err(failed)?;
    Ok(Json(floor.rich_text.render_all(comments)))
}

#[derive(Debug, Deserialize)]
struct NewComment {
    body: String,
}

async fn add_comment(
    State(floor): State<Floor>,
    Json(comment): Json<NewComment>,
) -> Result<(StatusCode, Json<RenderedComment>), StatusCode> {
    // No token: every comment is user 1's, the first account of the prepared data.
    let id = floor
        .db
        .add_comment(1, &comment.body)
        .await
        .map_err(failed)?;
    match floor.db.comment(id).await.map_err(failed)? {
        Some(stored) => Ok((StatusCode::CREATED, Json(floor.rich_text.render(stored)))),
        None => Err(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// The floor's routes over `floor`'s data.
fn router(floor: Floor) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/", get(index))
        .route("/api/me", get(me))
        .route("/api/comments", get(list_comments).post(add_comment))
        .with_state(floor)
}

/// The floor's app over the demo's data in `settings.data_dir`: what `main` serves,
/// and what the instruction counts (`bench/instructions`) drive in-process.
pub async fn app(settings: &portcullis::config::Settings) -> Result<Router, String> {
    let db = Database::open(settings)
        .await
        .map_err(|e| format!("database: {e}"))?;
    let templates = portcullis_demo::templates().map_err(|e| format!("templates: {e}"))?;
    Ok(router(Floor {
        db,
        templates,
        rich_text: CommentRenderer::new(Sanitizer::default()),
    }))
}
