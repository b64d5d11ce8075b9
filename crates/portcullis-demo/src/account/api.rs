//! `/api/account/…`: the account-security routes of the JSON API, Bearer-
//! authenticated, as `REFERENCE_APP.md` fixes them.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use portcullis::account::{EventContext, SecurityEventKind};
use portcullis::client_ip::ClientInfo;
use portcullis::error::Error;
use portcullis::extract::JsonBody;
use portcullis::jwt::BearerUser;
use serde::Deserialize;
use serde_json::json;

use super::{store::AccountRow, unavailable};
use crate::AppState;

/// The `/api/account` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/account/totp", post(totp_start))
        .route("/api/account/totp/confirm", post(totp_confirm))
        .route("/api/account/totp/disable", post(totp_disable))
        .route("/api/account/password", post(change_password))
        .route("/api/account/email", post(change_email))
        .route("/api/account/sessions", get(sessions))
        .route("/api/account/sessions/{id}", delete(end_session))
        .route("/api/account/events", get(events))
}

/// The token's account; a token of a deleted user is refused.
pub(crate) async fn account_of(state: &AppState, id: i64) -> Result<AccountRow, Error> {
    state
        .db
        .account(id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| Error::unauthorized("The token's user does not exist."))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordOnly {
    password: String,
}

async fn totp_start(
    State(state): State<AppState>,
    user: BearerUser,
    JsonBody(body): JsonBody<PasswordOnly>,
) -> Result<Response, Error> {
    let account = account_of(&state, user.id).await?;
    // The password again: a stolen access token alone cannot set up a second factor.
    if !super::password_matches(&state, &account, &body.password).await? {
        return Err(Error::unauthorized("The password is wrong."));
    }
    let (secret, url) = super::start_enrolment(&state, &account).await?;
    Ok(Json(json!({ "secret": secret.to_base32(), "otpauth_url": url })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeOnly {
    code: String,
}

async fn totp_confirm(
    State(state): State<AppState>,
    user: BearerUser,
    context: EventContext,
    JsonBody(body): JsonBody<CodeOnly>,
) -> Result<Response, Error> {
    let account = account_of(&state, user.id).await?;
    let codes = super::confirm_enrolment(&state, &account, &body.code, &context).await?;
    Ok(Json(json!({ "recovery_codes": codes })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Disable {
    password: String,
    code: String,
}

async fn totp_disable(
    State(state): State<AppState>,
    user: BearerUser,
    context: EventContext,
    JsonBody(body): JsonBody<Disable>,
) -> Result<StatusCode, Error> {
    let account = account_of(&state, user.id).await?;
    super::disable(&state, &account, &body.password, &body.code, &context).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(state): State<AppState>,
    user: BearerUser,
    context: EventContext,
    JsonBody(body): JsonBody<PasswordChange>,
) -> Result<StatusCode, Error> {
    let account = account_of(&state, user.id).await?;
    if !super::password_matches(&state, &account, &body.current_password).await? {
        return Err(Error::unauthorized("The current password is wrong."));
    }
    // Every session and every token ends, this token's family included: the client
    // signs in again with the new password.
    super::set_new_password(&state, &account, &body.new_password, None).await?;
    state
        .account
        .record(
            SecurityEventKind::PasswordChanged,
            Some(account.id),
            &context,
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailChange {
    email: String,
}

async fn change_email(
    State(state): State<AppState>,
    user: BearerUser,
    client: ClientInfo,
    JsonBody(body): JsonBody<EmailChange>,
) -> Result<Response, Error> {
    // The body has no password, so the token must come from a recent sign-in (a
    // refresh does not renew it): a stolen long-lived session cannot redirect the
    // account's reset mail. RFC 9470's step-up answer.
    if !user
        .claims
        .authenticated_within(super::REAUTHENTICATION_WINDOW)
    {
        let mut response = Error::new(
            StatusCode::UNAUTHORIZED,
            "insufficient_user_authentication",
            "Sign in again (POST /api/token): changing the email address needs a sign-in \
             from the last 15 minutes.",
        )
        .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                "Bearer error=\"insufficient_user_authentication\", max_age=900",
            ),
        );
        return Ok(response);
    }
    let account = account_of(&state, user.id).await?;
    let origin = client
        .origin()
        .ok_or_else(|| Error::bad_request("No host."))?;
    super::request_email_change(&state, &account, &body.email, &origin).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The user's sessions as the contract shows them.
pub(crate) async fn session_list(
    state: &AppState,
    user_id: i64,
    current: Option<&str>,
) -> Result<Vec<serde_json::Value>, Error> {
    let sessions = state
        .sessions
        .list(user_id, current)
        .await
        .map_err(|error| {
            tracing::error!(%error, "cannot list sessions");
            Error::service_unavailable(5)
        })?;
    Ok(sessions
        .into_iter()
        .map(|session| {
            json!({
                "id": session.id,
                "created_at": rfc3339(session.created_at),
                "last_seen_at": rfc3339(session.last_seen_at),
                "client": format!("{} from {}", session.client.browser, session.client.network),
                "current": session.current,
            })
        })
        .collect())
}

async fn sessions(State(state): State<AppState>, user: BearerUser) -> Result<Response, Error> {
    let sessions = session_list(&state, user.id, None).await?;
    Ok(Json(json!({ "sessions": sessions })).into_response())
}

/// Ends session `id` of `user_id`; 404 when it is not one of theirs.
pub(crate) async fn end_one(
    state: &AppState,
    user_id: i64,
    id: &str,
    context: &EventContext,
) -> Result<(), Error> {
    let ended = state.sessions.end(user_id, id).await.map_err(|error| {
        tracing::error!(%error, "cannot end a session");
        Error::service_unavailable(5)
    })?;
    if !ended {
        return Err(Error::not_found());
    }
    state
        .account
        .record(SecurityEventKind::SessionEnded, Some(user_id), context)
        .await;
    Ok(())
}

async fn end_session(
    State(state): State<AppState>,
    user: BearerUser,
    context: EventContext,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    end_one(&state, user.id, &id, &context).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user's newest events as the contract shows them.
pub(crate) async fn event_list(
    state: &AppState,
    user_id: i64,
) -> Result<Vec<serde_json::Value>, Error> {
    let events = state
        .account
        .log
        .recent(user_id, 50)
        .await
        .map_err(|error| {
            tracing::error!(%error, "cannot read security events");
            Error::service_unavailable(5)
        })?;
    Ok(events
        .into_iter()
        .map(|event| {
            json!({
                "type": event.kind.as_str(),
                "at": event.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "ip": event.ip.map(|ip| ip.to_string()),
            })
        })
        .collect())
}

async fn events(State(state): State<AppState>, user: BearerUser) -> Result<Response, Error> {
    let events = event_list(&state, user.id).await?;
    Ok(Json(json!({ "events": events })).into_response())
}
