//! The `/api` routes: JSON in, JSON out, bearer tokens instead of cookies. Every error
//! is the contract's `{"error":{"code","message"}}` with a 4xx.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use portcullis::account::{EventContext, SecurityEventKind};
use portcullis::error::Error;
use portcullis::extract::JsonBody;
use portcullis::input::TextRules;
use portcullis::jwt::{BearerUser, Jwt, JwtError};
use serde::Deserialize;

use crate::AppState;

/// The `/api` routes, with the token service in their extensions for [`BearerUser`].
pub fn router(jwt: Jwt) -> Router<AppState> {
    Router::new()
        .route("/api/token", post(token))
        .route("/api/token/refresh", post(refresh))
        .route("/api/token/revoke", post(revoke))
        .route("/api/me", get(me))
        .route("/api/comments", get(list_comments).post(add_comment))
        .layer(Extension(jwt))
}

fn unavailable(error: sqlx::Error) -> Error {
    tracing::error!(%error, "database error");
    Error::service_unavailable(5)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
    /// The second factor, for an account with two-factor sign-in on: a current code
    /// or a recovery code.
    #[serde(default)]
    otp: Option<String>,
}

async fn token(
    State(state): State<AppState>,
    context: EventContext,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<Response, Error> {
    // Unknown users cost a dummy verification, like wrong passwords; legacy hashes
    // are upgraded here as on the form; failures delay the account.
    let account = crate::account::check_password(
        &state,
        &credentials.username,
        &credentials.password,
        &context,
    )
    .await?;
    let Some(account) = account else {
        return Err(Error::unauthorized("Unknown username or wrong password."));
    };
    if account.totp_secret.is_some() {
        let Some(code) = credentials.otp.as_deref().filter(|c| !c.trim().is_empty()) else {
            return Err(Error::new(
                StatusCode::UNAUTHORIZED,
                "otp_required",
                "This account needs a code from its authenticator app.",
            ));
        };
        crate::account::check_second_factor(&state, &account, code, &context).await?;
    }
    state
        .account
        .record(
            SecurityEventKind::LoginSucceeded,
            Some(account.id),
            &context,
        )
        .await;
    Ok(state.jwt.issue(account.id).await.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: String,
}

async fn refresh(
    State(state): State<AppState>,
    context: EventContext,
    JsonBody(request): JsonBody<RefreshRequest>,
) -> Result<Response, JwtError> {
    match state.jwt.refresh(&request.refresh_token).await {
        Ok(pair) => Ok(pair.into_response()),
        Err(JwtError::RefreshReused) => {
            // The token is authentic (its reuse was detected), so its subject is the
            // user whose family was just revoked.
            let user = state
                .jwt
                .decode(&request.refresh_token)
                .ok()
                .map(|c| c.user_id());
            state
                .account
                .record(
                    SecurityEventKind::TokenReuseDetected,
                    user.flatten(),
                    &context,
                )
                .await;
            Err(JwtError::RefreshReused)
        }
        Err(error) => Err(error),
    }
}

async fn revoke(State(state): State<AppState>, user: BearerUser) -> Result<StatusCode, JwtError> {
    state.jwt.revoke(&user.claims).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(State(state): State<AppState>, user: BearerUser) -> Result<Response, Error> {
    match state.db.api_user(user.id).await.map_err(unavailable)? {
        Some(profile) => Ok(Json(profile).into_response()),
        // A valid token for a user who no longer exists.
        None => Err(Error::unauthorized("The token's user does not exist.")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<i64>,
}

async fn list_comments(
    State(state): State<AppState>,
    _user: BearerUser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let Ok(Query(query)) = query else {
        return Err(Error::bad_request(
            "limit must be a whole number from 1 to 100.",
        ));
    };
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(Error::bad_request(
            "limit must be a whole number from 1 to 100.",
        ));
    }
    let comments = state.db.newest_comments(limit).await.map_err(unavailable)?;
    Ok(Json(state.rich_text.render_all(comments)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewComment {
    body: String,
}

async fn add_comment(
    State(state): State<AppState>,
    user: BearerUser,
    JsonBody(comment): JsonBody<NewComment>,
) -> Result<Response, Error> {
    let body = TextRules::multiline(1, 2000)
        .apply(&comment.body)
        .map_err(|e| Error::bad_request(e.to_string()))?;
    let html = state.rich_text.prepare(&body)?;
    let id = state
        .db
        .add_comment(user.id, &body)
        .await
        .map_err(unavailable)?;
    state.rich_text.remember(id, &body, html);
    let stored = state.db.comment(id).await.map_err(unavailable)?;
    match stored {
        Some(comment) => {
            Ok((StatusCode::CREATED, Json(state.rich_text.render(comment))).into_response())
        }
        None => Err(Error::service_unavailable(5)),
    }
}
