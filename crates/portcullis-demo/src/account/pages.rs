//! The account pages: two-factor set-up, the second sign-in step, password change and
//! reset, the email address, "your sessions" and recent activity.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use portcullis::account::{
    mark_authenticated, require_recent_authentication, EventContext, SecondStep, SecurityEventKind,
};
use portcullis::auth::CurrentUser;
use portcullis::client_ip::ClientInfo;
use portcullis::error::Error;
use portcullis::session::Session;
use portcullis::templates::Page;
use serde::Deserialize;
use serde_json::json;

use super::api::{account_of, end_one, event_list, session_list};
use super::store::AccountRow;
use super::{unavailable, REAUTHENTICATION_WINDOW};
use crate::AppState;

/// The account pages' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login/otp", get(otp_form).post(otp_submit))
        .route("/account", get(account_page))
        .route("/account/reauth", get(reauth_form).post(reauth))
        .route("/account/totp", post(totp_start))
        .route("/account/totp/qr.svg", get(totp_qr))
        .route("/account/totp/confirm", post(totp_confirm))
        .route("/account/totp/disable", post(totp_disable))
        .route("/account/password", post(change_password))
        .route("/account/email", post(change_email))
        .route("/account/sessions/{id}/end", post(end_session))
        .route("/account/sessions/end-others", post(end_others))
        .route("/confirm-email/{token}", get(confirm_form).post(confirm))
        .route("/reset", get(reset_request_form).post(reset_request))
        .route("/reset/{token}", get(reset_form).post(reset))
}

fn header_user(account: &AccountRow) -> serde_json::Value {
    json!({ "id": account.id, "username": account.username })
}

fn message(
    state: &AppState,
    page: &Page,
    title: &str,
    text: &str,
    link: &str,
) -> Result<Html<String>, Error> {
    state.templates.render(
        "message.html",
        page,
        json!({ "user": null, "title": title, "message": text, "link": link }),
    )
}

/// The second step of a form sign-in, after a right password.
async fn otp_form(
    State(state): State<AppState>,
    page: Page,
    session: Session,
) -> Result<Response, Error> {
    if SecondStep::pending(&session).is_none() {
        return Ok(Redirect::to("/login").into_response());
    }
    Ok(state
        .templates
        .render("otp.html", &page, json!({ "user": null, "error": null }))?
        .into_response())
}

#[derive(Debug, Deserialize)]
struct CodeForm {
    code: String,
}

async fn otp_submit(
    State(state): State<AppState>,
    page: Page,
    session: Session,
    context: EventContext,
    Form(form): Form<CodeForm>,
) -> Result<Response, Error> {
    let Some(step) = SecondStep::pending(&session) else {
        return Ok(Redirect::to("/login").into_response());
    };
    let account = state
        .db
        .account(step.user_id())
        .await
        .map_err(unavailable)?
        .ok_or_else(|| Error::unauthorized("Log in again."))?;
    match super::check_second_factor(&state, &account, &form.code, &context).await {
        Ok(()) => {
            let next = step.next().to_owned();
            step.complete(&session);
            state
                .account
                .record(
                    SecurityEventKind::LoginSucceeded,
                    Some(account.id),
                    &context,
                )
                .await;
            Ok(Redirect::to(&next).into_response())
        }
        Err(error) if error.status() == StatusCode::UNAUTHORIZED => {
            if !step.failed(&session) {
                // Out of tries: the password is asked again.
                return Ok(Redirect::to("/login").into_response());
            }
            let html = state.templates.render(
                "otp.html",
                &page,
                json!({ "user": null, "error": "That code is wrong, expired or already used." }),
            )?;
            Ok((StatusCode::UNAUTHORIZED, html).into_response())
        }
        Err(error) => Err(error),
    }
}

async fn render_account(
    state: &AppState,
    page: &Page,
    session: &Session,
    account: &AccountRow,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Html<String>, Error> {
    let pending_secret = super::pending_secret(state, account)?.map(|secret| secret.to_base32());
    let recovery_left = if account.totp_secret.is_some() {
        state
            .db
            .recovery_codes_left(account.id)
            .await
            .map_err(unavailable)?
    } else {
        0
    };
    let current = session.listing_id();
    let sessions = session_list(state, account.id, current.as_deref()).await?;
    let events = event_list(state, account.id).await?;
    state.templates.render(
        "account.html",
        page,
        json!({
            "user": header_user(account),
            "notice": notice,
            "error": error,
            "totp_enabled": account.totp_secret.is_some(),
            "pending_secret": pending_secret,
            "recovery_left": recovery_left,
            "email": account.email,
            "pending_email": account.pending_email,
            "sessions": sessions,
            "events": events,
        }),
    )
}

async fn account_page(
    State(state): State<AppState>,
    page: Page,
    session: Session,
    user: CurrentUser,
) -> Result<Html<String>, Error> {
    let account = account_of(&state, user.id).await?;
    render_account(&state, &page, &session, &account, None, None).await
}

/// Sends a page user without a recent password to confirm it, then back.
fn recent_or_reauth(session: &Session) -> Result<(), Redirect> {
    require_recent_authentication(session, REAUTHENTICATION_WINDOW)
        .map_err(|_| Redirect::to("/account/reauth"))
}

async fn reauth_form(
    State(state): State<AppState>,
    page: Page,
    user: CurrentUser,
) -> Result<Html<String>, Error> {
    let account = account_of(&state, user.id).await?;
    state.templates.render(
        "reauth.html",
        &page,
        json!({ "user": header_user(&account), "error": null }),
    )
}

#[derive(Debug, Deserialize)]
struct PasswordForm {
    password: String,
}

async fn reauth(
    State(state): State<AppState>,
    page: Page,
    session: Session,
    user: CurrentUser,
    Form(form): Form<PasswordForm>,
) -> Result<Response, Error> {
    let account = account_of(&state, user.id).await?;
    if super::password_matches(&state, &account, &form.password).await? {
        mark_authenticated(&session);
        return Ok(Redirect::to("/account").into_response());
    }
    let html = state.templates.render(
        "reauth.html",
        &page,
        json!({ "user": header_user(&account), "error": "The password is wrong." }),
    )?;
    Ok((StatusCode::UNAUTHORIZED, html).into_response())
}

/// An error shown on the account page with its status.
async fn account_error(
    state: &AppState,
    page: &Page,
    session: &Session,
    user_id: i64,
    error: Error,
) -> Result<Response, Error> {
    if error.status().is_server_error() {
        return Err(error);
    }
    let account = account_of(state, user_id).await?;
    let html = render_account(state, page, session, &account, None, Some(error.message())).await?;
    Ok((error.status(), html).into_response())
}

async fn totp_start(
    State(state): State<AppState>,
    page: Page,
    session: Session,
    user: CurrentUser,
) -> Result<Response, Error> {
    if let Err(redirect) = recent_or_reauth(&session) {
        return Ok(redirect.into_response());
    }
    let account = account_of(&state, user.id).await?;
    match super::start_enrolment(&state, &account).await {
        Ok(_) => Ok(Redirect::to("/account").into_response()),
        Err(error) => account_error(&state, &page, &session, user.id, error).await,
    }
}

/// The pending secret's QR code: never cached, never shown once two-factor sign-in
/// is on.
async fn totp_qr(State(state): State<AppState>, user: CurrentUser) -> Result<Response, Error> {
    let account = account_of(&state, user.id).await?;
    let url = super::pending_url(&state, &account)?.ok_or_else(Error::not_found)?;
    let svg = portcullis::totp::qr_svg(&url).ok_or_else(Error::not_found)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        svg,
    )
        .into_response())
}

async fn totp_confirm(
    State(state): State<AppState>,
    page: Page,
    session: Session,
    user: CurrentUser,
    context: EventContext,
    Form(form): Form<CodeForm>,
) -> Result<Response, Error> {
    if let Err(redirect) = recent_or_reauth(&session) {
        return Ok(redirect.into_response());
    }
    let account = account_of(&state, user.id).await?;
    match super::confirm_enrolment(&state, &account, &form.code, &context).await {
        Ok(codes) => Ok(state
            .templates
            .render(
                "recovery_codes.html",
                &page,
                json!({ "user": header_user(&account), "codes": codes }),
            )?
            .into_response()),
        Err(error) => account_error(&state, &page, &session, user.id, error).await,
    }
}

#[derive(Debug, Deserialize)]
struct DisableForm {
    password: String,
    code: String,
}

async fn totp_disable(
    State(state): State<AppState>,
    page: Page,
    session: Session,
    user: CurrentUser,
    context: EventContext,
    Form(form): Form<DisableForm>,
) -> Result<Response, Error> {
    if let Err(redirect) = recent_or_reauth(&session) {
        return Ok(redirect.into_response());
    }
    let account = account_of(&state, user.id).await?;
    match super::disable(&state, &account, &form.password, &form.code, &context).await {
        Ok(()) => Ok(Redirect::to("/account").into_response()),
        Err(error) => account_error(&state, &page, &session, user.id, error).await,
    }
}

#[derive(Debug, Deserialize)]
struct PasswordChangeForm {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(state): State<AppState>,
    page: Page,
    session: Session,
    user: CurrentUser,
    context: EventContext,
    Form(form): Form<PasswordChangeForm>,
) -> Result<Response, Error> {
    if let Err(redirect) = recent_or_reauth(&session) {
        return Ok(redirect.into_response());
    }
    let account = account_of(&state, user.id).await?;
    if !super::password_matches(&state, &account, &form.current_password).await? {
        return account_error(
            &state,
            &page,
            &session,
            user.id,
            Error::unauthorized("The current password is wrong."),
        )
        .await;
    }
    let current = session.listing_id();
    match super::set_new_password(&state, &account, &form.new_password, current.as_deref()).await {
        Ok(()) => {
            state
                .account
                .record(
                    SecurityEventKind::PasswordChanged,
                    Some(account.id),
                    &context,
                )
                .await;
            let account = account_of(&state, user.id).await?;
            let html = render_account(
                &state,
                &page,
                &session,
                &account,
                Some("Your password is changed; every other device is signed out."),
                None,
            )
            .await?;
            Ok(html.into_response())
        }
        Err(error) => account_error(&state, &page, &session, user.id, error).await,
    }
}

#[derive(Debug, Deserialize)]
struct EmailForm {
    email: String,
}

async fn change_email(
    State(state): State<AppState>,
    page: Page,
    session: Session,
    user: CurrentUser,
    client: ClientInfo,
    Form(form): Form<EmailForm>,
) -> Result<Response, Error> {
    if let Err(redirect) = recent_or_reauth(&session) {
        return Ok(redirect.into_response());
    }
    let account = account_of(&state, user.id).await?;
    let origin = client
        .origin()
        .ok_or_else(|| Error::bad_request("No host."))?;
    match super::request_email_change(&state, &account, &form.email, &origin).await {
        Ok(()) => {
            let account = account_of(&state, user.id).await?;
            let html = render_account(
                &state,
                &page,
                &session,
                &account,
                Some("A confirmation link is on its way."),
                None,
            )
            .await?;
            Ok((StatusCode::ACCEPTED, html).into_response())
        }
        Err(error) => account_error(&state, &page, &session, user.id, error).await,
    }
}

async fn end_session(
    State(state): State<AppState>,
    page: Page,
    session: Session,
    user: CurrentUser,
    context: EventContext,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    // The password again before ending sessions (ASVS 5.0, 7.5.2): a stolen
    // session must not be able to sign its owner out everywhere else.
    if let Err(redirect) = recent_or_reauth(&session) {
        return Ok(redirect.into_response());
    }
    match end_one(&state, user.id, &id, &context).await {
        Ok(()) => Ok(Redirect::to("/account").into_response()),
        Err(error) => account_error(&state, &page, &session, user.id, error).await,
    }
}

async fn end_others(
    State(state): State<AppState>,
    session: Session,
    user: CurrentUser,
    context: EventContext,
) -> Result<Response, Error> {
    if let Err(redirect) = recent_or_reauth(&session) {
        return Ok(redirect.into_response());
    }
    let current = session.listing_id();
    let ended = state
        .sessions
        .end_others(user.id, current.as_deref())
        .await
        .map_err(|error| {
            tracing::error!(%error, "cannot end sessions");
            Error::service_unavailable(5)
        })?;
    if ended > 0 {
        state
            .account
            .record(SecurityEventKind::SessionEnded, Some(user.id), &context)
            .await;
    }
    Ok(Redirect::to("/account").into_response())
}

async fn confirm_form(
    State(state): State<AppState>,
    page: Page,
    Path(token): Path<String>,
) -> Result<Html<String>, Error> {
    // A page with a button, not a confirmation on GET: mail scanners that fetch
    // links must not confirm anything.
    state.templates.render(
        "confirm_email.html",
        &page,
        json!({ "user": null, "token": token }),
    )
}

async fn confirm(
    State(state): State<AppState>,
    page: Page,
    context: EventContext,
    Path(token): Path<String>,
) -> Result<Response, Error> {
    match super::confirm_email(&state, &token, &context).await {
        Ok(()) => Ok(message(
            &state,
            &page,
            "Address confirmed",
            "Your email address is confirmed.",
            "/account",
        )?
        .into_response()),
        Err(error) if error.status().is_client_error() => {
            let html = message(&state, &page, "Link not valid", error.message(), "/account")?;
            Ok((error.status(), html).into_response())
        }
        Err(error) => Err(error),
    }
}

async fn reset_request_form(
    State(state): State<AppState>,
    page: Page,
) -> Result<Html<String>, Error> {
    state
        .templates
        .render("reset_request.html", &page, json!({ "user": null }))
}

/// The same page whether or not an account has the address, and whether or not a
/// message was sent.
async fn reset_request(
    State(state): State<AppState>,
    page: Page,
    client: ClientInfo,
    context: EventContext,
    Form(form): Form<EmailForm>,
) -> Result<Html<String>, Error> {
    let origin = client
        .origin()
        .ok_or_else(|| Error::bad_request("No host."))?;
    super::request_reset(&state, &form.email, &origin, &context).await?;
    message(
        &state,
        &page,
        "Check your mail",
        "If an account has this confirmed address, a reset link is on its way.",
        "/login",
    )
}

async fn reset_form(
    State(state): State<AppState>,
    page: Page,
    Path(token): Path<String>,
) -> Result<Response, Error> {
    match super::reset_account(&state, &token).await {
        Ok(account) => Ok(state
            .templates
            .render(
                "reset.html",
                &page,
                json!({
                    "user": null,
                    "token": token,
                    "needs_code": account.totp_secret.is_some(),
                    "error": null,
                }),
            )?
            .into_response()),
        Err(error) if error.status().is_client_error() => {
            let html = message(&state, &page, "Link not valid", error.message(), "/reset")?;
            Ok((error.status(), html).into_response())
        }
        Err(error) => Err(error),
    }
}

#[derive(Debug, Deserialize)]
struct ResetForm {
    password: String,
    #[serde(default)]
    code: Option<String>,
}

async fn reset(
    State(state): State<AppState>,
    page: Page,
    context: EventContext,
    Path(token): Path<String>,
    Form(form): Form<ResetForm>,
) -> Result<Response, Error> {
    match super::complete_reset(&state, &token, &form.password, form.code.as_deref(), &context).await {
        Ok(()) => Ok(message(
            &state,
            &page,
            "Password changed",
            "Your password is changed and every device is signed out. Sign in with the new password.",
            "/login",
        )?
        .into_response()),
        Err(error) if error.status().is_client_error() => {
            let needs_code = super::reset_account(&state, &token)
                .await
                .ok()
                .map(|account| account.totp_secret.is_some());
            let Some(needs_code) = needs_code else {
                let html = message(&state, &page, "Link not valid", error.message(), "/reset")?;
                return Ok((error.status(), html).into_response());
            };
            let html = state.templates.render(
                "reset.html",
                &page,
                json!({
                    "user": null,
                    "token": token,
                    "needs_code": needs_code,
                    "error": error.message(),
                }),
            )?;
            Ok((error.status(), html).into_response())
        }
        Err(error) => Err(error),
    }
}
