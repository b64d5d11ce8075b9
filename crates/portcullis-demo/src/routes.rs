//! The routes of the reference app. Every check is the library's: the routes read
//! forms, call the database and render templates.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use portcullis::account::{mark_authenticated, EventContext, SecondStep, SecurityEventKind};
use portcullis::auth::{safe_next, CurrentUser, MaybeUser};
use portcullis::error::Error;
use portcullis::input::{username as valid_username, TextRules};
use portcullis::session::Session;
use portcullis::templates::Page;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;

/// Every route of the app.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/", get(index))
        .route("/register", get(register_form).post(register))
        .route("/login", get(login_form).post(sign_in))
        .route("/logout", post(logout))
        .route("/comments", post(add_comment))
        .route("/static/style.css", get(style))
        .route("/static/app.js", get(script))
        .route("/.well-known/security.txt", get(security_txt))
}

fn unavailable(error: sqlx::Error) -> Error {
    tracing::error!(%error, "database error");
    Error::service_unavailable(5)
}

/// `ok`, or 503 naming the shared backend that does not answer, so that a load
/// balancer takes the instance out of rotation.
async fn healthz(State(state): State<AppState>) -> Response {
    const TEXT: (header::HeaderName, &str) = (header::CONTENT_TYPE, "text/plain; charset=utf-8");
    if let Some(redis) = &state.redis {
        // Boxed: the Redis client's future is large, and inline it would make every
        // `/healthz` future that large, copied whole into the box axum keeps it in,
        // with Redis or without (callgrind: bench/instructions.sh).
        if let Err(error) = Box::pin(redis.ping()).await {
            tracing::error!(%error, "health check: redis unavailable");
            return Error::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "redis unavailable",
            )
            .with_retry_after(5)
            .into_response();
        }
    }
    ([TEXT], "ok").into_response()
}

/// The logged-in user for the page header.
async fn page_user(state: &AppState, user: MaybeUser) -> Result<serde_json::Value, Error> {
    Ok(match user.0 {
        Some(id) => match state.db.username(id).await.map_err(unavailable)? {
            Some(username) => json!({ "id": id, "username": username }),
            None => serde_json::Value::Null,
        },
        None => serde_json::Value::Null,
    })
}

async fn render_index(
    state: &AppState,
    page: &Page,
    user: MaybeUser,
    body: &str,
    error: Option<String>,
) -> Result<Html<String>, Error> {
    let comments = state.db.newest_comments(20).await.map_err(unavailable)?;
    let comments = state.rich_text.render_all(comments);
    let user = page_user(state, user).await?;
    // A context of Rust values, not `json!`: JSON would turn each comment's SafeHtml
    // into a plain string, which the template would then escape.
    state.templates.render(
        "index.html",
        page,
        minijinja::context! { comments, user, body, error },
    )
}

async fn index(
    State(state): State<AppState>,
    page: Page,
    user: MaybeUser,
) -> Result<Html<String>, Error> {
    render_index(&state, &page, user, "", None).await
}

#[derive(Debug, Deserialize)]
struct CommentForm {
    body: String,
}

async fn add_comment(
    State(state): State<AppState>,
    page: Page,
    user: CurrentUser,
    Form(form): Form<CommentForm>,
) -> Result<Response, Error> {
    let checked = TextRules::multiline(1, 2000)
        .apply(&form.body)
        .map_err(|e| e.to_string())
        .and_then(|body| {
            state
                .rich_text
                .prepare(&body)
                .map(|html| (body, html))
                .map_err(|e| e.message().to_owned())
        });
    match checked {
        Ok((body, html)) => {
            let id = state
                .db
                .add_comment(user.id, &body)
                .await
                .map_err(unavailable)?;
            state.rich_text.remember(id, &body, html);
            Ok(Redirect::to("/").into_response())
        }
        Err(error) => {
            let html = render_index(
                &state,
                &page,
                MaybeUser(Some(user.id)),
                &form.body,
                Some(error),
            )
            .await?;
            Ok((StatusCode::BAD_REQUEST, html).into_response())
        }
    }
}

#[derive(Debug, Deserialize)]
struct Credentials {
    username: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

async fn register_form(
    State(state): State<AppState>,
    page: Page,
    user: MaybeUser,
) -> Result<Html<String>, Error> {
    let user = page_user(&state, user).await?;
    state.templates.render(
        "register.html",
        &page,
        json!({ "user": user, "username": "", "errors": {} }),
    )
}

async fn register(
    State(state): State<AppState>,
    page: Page,
    session: Session,
    Form(form): Form<Credentials>,
) -> Result<Response, Error> {
    let rerender = |status: StatusCode, field: &str, message: String| {
        let html = state.templates.render(
            "register.html",
            &page,
            json!({ "user": null, "username": form.username, "errors": { field: message } }),
        )?;
        Ok::<Response, Error>((status, html).into_response())
    };
    let username = match valid_username(&form.username) {
        Ok(name) => name,
        Err(error) => return rerender(StatusCode::BAD_REQUEST, "username", error.to_string()),
    };
    let password = match state.policy.check(&username, &form.password) {
        Ok(password) => password,
        Err(violation) => {
            return rerender(StatusCode::BAD_REQUEST, "password", violation.to_string())
        }
    };
    let hash = state.passwords.hash(password).await.map_err(|error| {
        tracing::error!(%error, "cannot hash a password");
        Error::service_unavailable(5)
    })?;
    match state
        .db
        .create_user(&username, &hash)
        .await
        .map_err(unavailable)?
    {
        Some(id) => {
            session.login(id);
            mark_authenticated(&session);
            Ok(Redirect::to("/").into_response())
        }
        None => rerender(
            StatusCode::CONFLICT,
            "username",
            "That username is taken; choose another.".to_owned(),
        ),
    }
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

async fn login_form(
    State(state): State<AppState>,
    page: Page,
    user: MaybeUser,
    Query(query): Query<NextQuery>,
) -> Result<Html<String>, Error> {
    let user = page_user(&state, user).await?;
    state.templates.render(
        "login.html",
        &page,
        json!({
            "user": user,
            "username": "",
            "next": safe_next(query.next.as_deref()),
            "error": null,
        }),
    )
}

async fn sign_in(
    State(state): State<AppState>,
    page: Page,
    session: Session,
    context: EventContext,
    Form(form): Form<Credentials>,
) -> Result<Response, Error> {
    // Unknown and invalid usernames cost one verification, like a wrong password, so
    // that timing tells nothing; a legacy hash is upgraded once the password is right;
    // repeated failures delay the account.
    let account =
        crate::account::check_password(&state, &form.username, &form.password, &context).await;
    let account = match account {
        Ok(account) => account,
        Err(error) if error.status() == StatusCode::TOO_MANY_REQUESTS => {
            let html = state.templates.render(
                "login.html",
                &page,
                json!({
                    "user": null,
                    "username": form.username,
                    "next": safe_next(form.next.as_deref()),
                    "error": "Too many failed sign-ins for this account; wait a little and try again.",
                }),
            )?;
            return Ok((StatusCode::TOO_MANY_REQUESTS, html).into_response());
        }
        Err(error) => return Err(error),
    };
    let Some(account) = account else {
        let html = state.templates.render(
            "login.html",
            &page,
            json!({
                "user": null,
                "username": form.username,
                "next": safe_next(form.next.as_deref()),
                "error": "Unknown username or wrong password.",
            }),
        )?;
        return Ok((StatusCode::UNAUTHORIZED, html).into_response());
    };
    let next = safe_next(form.next.as_deref());
    if account.totp_secret.is_some() {
        // Not signed in yet: the code comes first, on a step bound to this attempt.
        SecondStep::begin(&session, account.id, next);
        return Ok(Redirect::to("/login/otp").into_response());
    }
    session.login(account.id);
    mark_authenticated(&session);
    state
        .account
        .record(
            SecurityEventKind::LoginSucceeded,
            Some(account.id),
            &context,
        )
        .await;
    Ok(Redirect::to(next).into_response())
}

async fn logout(session: Session) -> Redirect {
    session.destroy();
    Redirect::to("/")
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
        crate::APP_JS,
    )
}

/// RFC 9116: where to report a vulnerability. `Expires` is required and must lie
/// within a year; counted from each request, it never goes stale on a long-running
/// instance.
async fn security_txt() -> impl IntoResponse {
    let expires = (chrono::Utc::now() + chrono::Duration::days(180)).format("%Y-%m-%dT00:00:00Z");
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        format!(
            "Contact: https://github.com/portcullis-rs/portcullis/security/advisories/new\n\
             Expires: {expires}\n\
             Preferred-Languages: en\n"
        ),
    )
}
