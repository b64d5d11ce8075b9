//! Account security in the reference app: two-factor sign-in, recovery codes, the
//! password changed or reset, a confirmed email address, the user's sessions and
//! security events. Every decision is the library's (`portcullis::account`,
//! `portcullis::totp`, `portcullis::session`); this module keeps the rows and answers.

pub mod api;
pub mod pages;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use portcullis::account::{
    AccountThrottle, EventContext, SecurityEventKind, SecurityLog, SignedLinks, ThrottleConfig,
    ThrottleError, ThrottleStore,
};
use portcullis::error::Error;
use portcullis::keys::{Keyring, Purpose, Sealer};
use portcullis::totp::{unix_now, RecoveryCodes, Totp, TotpSecret};

use crate::AppState;
use store::AccountRow;

/// The name authenticator apps show beside the username.
pub const ISSUER: &str = "Portcullis demo";

/// How recently a page user must have typed the password to change the address, the
/// password or the second factor.
pub const REAUTHENTICATION_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The account-security parts of the app's state.
#[derive(Debug)]
pub struct AccountSecurity {
    /// The security-event stream (log target and the `security_events` table).
    pub log: SecurityLog,
    /// Delays after wrong passwords, per account (on in every rate-limit mode: it is
    /// no rate limit but the account's own protection).
    pub sign_in: AccountThrottle,
    /// Delays after wrong second factors, per account: stricter, since six digits
    /// are fewer guesses than a password.
    pub second_factor: AccountThrottle,
    /// Reset requests, per address and per account.
    pub resets_requested: AccountThrottle,
    /// TOTP parameters.
    pub totp: Totp,
    /// Seals TOTP secrets.
    pub sealer: Sealer,
    /// Recovery codes.
    pub recovery: RecoveryCodes,
    /// Password-reset links.
    pub reset_links: SignedLinks,
    /// Email-confirmation links.
    pub email_links: SignedLinks,
}

impl AccountSecurity {
    /// The parts for `keyring`, logging events through `log` and counting failures in
    /// `throttles` (Redis when instances share state, so that guesses spread over
    /// instances meet one delay).
    pub fn new(keyring: &Keyring, log: SecurityLog, throttles: Arc<dyn ThrottleStore>) -> Self {
        Self {
            log,
            // Ten failures are free: the sign-in routes' own limit is ten a minute per
            // username, and the delay starts where a minute's worth ends.
            sign_in: AccountThrottle::shared(
                "sign-in",
                ThrottleConfig {
                    free_failures: 10,
                    ..ThrottleConfig::default()
                },
                throttles.clone(),
            ),
            second_factor: AccountThrottle::shared(
                "second-factor",
                ThrottleConfig {
                    free_failures: 3,
                    ..ThrottleConfig::default()
                },
                throttles.clone(),
            ),
            // Three messages, then a growing wait, per address and per account.
            resets_requested: AccountThrottle::shared(
                "resets",
                ThrottleConfig {
                    free_failures: 2,
                    base_delay: Duration::from_secs(30),
                    max_delay: Duration::from_secs(3600),
                    ..ThrottleConfig::default()
                },
                throttles,
            ),
            totp: Totp::default(),
            sealer: keyring.sealer(Purpose::TOTP),
            recovery: RecoveryCodes::new(keyring),
            reset_links: SignedLinks::password_reset(keyring),
            email_links: SignedLinks::email_confirmation(keyring),
        }
    }
}

impl AccountSecurity {
    /// Records `kind` for `user_id` in the security-event stream.
    pub(crate) async fn record(
        &self,
        kind: SecurityEventKind,
        user_id: Option<i64>,
        context: &EventContext,
    ) {
        self.log.record(kind, user_id, context).await;
    }
}

pub(crate) fn unavailable(error: sqlx::Error) -> Error {
    tracing::error!(%error, "database error");
    Error::service_unavailable(5)
}

/// A delayed account answers 429 with the wait; an unreachable store 503 (a store
/// that cannot count must not lift the delays).
fn throttled(error: ThrottleError) -> Error {
    match error {
        ThrottleError::Wait(wait) => Error::too_many_requests(wait.as_secs().max(1)),
        ThrottleError::Unavailable(reason) => {
            tracing::error!(%reason, "the throttle store failed");
            Error::service_unavailable(5)
        }
        _ => Error::service_unavailable(5),
    }
}

/// What a sealed secret of user `id` is sealed for: a secret moved to another row
/// does not open there.
fn seal_context(id: i64) -> Vec<u8> {
    format!("totp:{id}").into_bytes()
}

/// The secret of a sealed value of user `id`.
fn open_secret(state: &AppState, id: i64, sealed: &str) -> Result<TotpSecret, Error> {
    let bytes = state
        .account
        .sealer
        .open(sealed, &seal_context(id))
        .map_err(|error| {
            tracing::error!(%error, user_id = id, "a stored TOTP secret does not open");
            Error::service_unavailable(5)
        })?;
    TotpSecret::from_bytes(&bytes).map_err(|_| Error::service_unavailable(5))
}

/// The refusal of a wrong, reused or expired code.
fn otp_invalid() -> Error {
    Error::new(
        StatusCode::UNAUTHORIZED,
        "otp_invalid",
        "The code is wrong, expired or already used.",
    )
}

/// Checks a second factor of `account` (which has TOTP on): a current code, each step
/// once, or an unused recovery code. Wrong codes count against the account's own
/// limit and are recorded; a delay answers 429.
pub(crate) async fn check_second_factor(
    state: &AppState,
    account: &AccountRow,
    code: &str,
    context: &EventContext,
) -> Result<(), Error> {
    let security = &state.account;
    let key = format!("user:{}", account.id);
    security
        .second_factor
        .check(&key)
        .await
        .map_err(throttled)?;
    let Some(sealed) = account.totp_secret.as_deref() else {
        return Err(otp_invalid());
    };
    let accepted = if code.trim().len() > 8 {
        let candidates = security.recovery.candidates(code);
        let used = !candidates.is_empty()
            && state
                .db
                .use_recovery_code(account.id, &candidates)
                .await
                .map_err(unavailable)?;
        if used {
            security
                .log
                .record(
                    SecurityEventKind::RecoveryCodeUsed,
                    Some(account.id),
                    context,
                )
                .await;
        }
        used
    } else {
        let secret = open_secret(state, account.id, sealed)?;
        let last = account
            .totp_last_step
            .and_then(|step| u64::try_from(step).ok());
        match security.totp.verify(&secret, code, unix_now(), last) {
            // The step is stored with a conditional write: of two requests racing
            // with one code, one passes.
            Ok(step) => state
                .db
                .use_totp_step(account.id, i64::try_from(step).unwrap_or(i64::MAX))
                .await
                .map_err(unavailable)?,
            Err(_) => false,
        }
    };
    if accepted {
        security
            .second_factor
            .success(&key)
            .await
            .map_err(throttled)?;
        return Ok(());
    }
    security
        .log
        .record(SecurityEventKind::OtpFailed, Some(account.id), context)
        .await;
    if security
        .second_factor
        .failure(&key)
        .await
        .map_err(throttled)?
    {
        security
            .log
            .record(SecurityEventKind::LockoutStarted, Some(account.id), context)
            .await;
    }
    Err(otp_invalid())
}

/// The password check of every sign-in path, with the per-account delay: `Ok(None)`
/// for a wrong password or an unknown name (answer both alike).
pub(crate) async fn check_password(
    state: &AppState,
    username: &str,
    password: &str,
    context: &EventContext,
) -> Result<Option<AccountRow>, Error> {
    let key = format!("name:{}", portcullis::input::username_key(username));
    state.account.sign_in.check(&key).await.map_err(throttled)?;
    let id = portcullis::auth::login(&state.passwords, &state.db, username, password).await?;
    match id {
        Some(id) => {
            state
                .account
                .sign_in
                .success(&key)
                .await
                .map_err(throttled)?;
            state.db.account(id).await.map_err(unavailable)
        }
        None => {
            // Recorded against the account when the name is one.
            let known = match portcullis::input::username(username) {
                Ok(name) => state.db.credentials(&name).await.map_err(unavailable)?,
                Err(_) => None,
            };
            let user = known.map(|(id, _)| id);
            state
                .account
                .record(SecurityEventKind::LoginFailed, user, context)
                .await;
            if state
                .account
                .sign_in
                .failure(&key)
                .await
                .map_err(throttled)?
            {
                state
                    .account
                    .record(SecurityEventKind::LockoutStarted, user, context)
                    .await;
            }
            Ok(None)
        }
    }
}

/// Verifies `password` for user `id` (re-authentication); `Ok(false)` when wrong.
pub(crate) async fn password_matches(
    state: &AppState,
    account: &AccountRow,
    password: &str,
) -> Result<bool, Error> {
    let key = format!("user-password:{}", account.id);
    state.account.sign_in.check(&key).await.map_err(throttled)?;
    let matches = portcullis::auth::authenticate(
        &state.passwords,
        Some(account.password_hash.clone()),
        password,
    )
    .await?;
    if matches {
        state
            .account
            .sign_in
            .success(&key)
            .await
            .map_err(throttled)?;
    } else {
        state
            .account
            .sign_in
            .failure(&key)
            .await
            .map_err(throttled)?;
    }
    Ok(matches)
}

/// Starts enrolment: a new secret, sealed and kept as pending. Refused (409) while
/// two-factor sign-in is on: turning it off first needs a code.
pub(crate) async fn start_enrolment(
    state: &AppState,
    account: &AccountRow,
) -> Result<(TotpSecret, String), Error> {
    if account.totp_secret.is_some() {
        return Err(Error::new(
            StatusCode::CONFLICT,
            "totp_enabled",
            "Two-factor sign-in is already on; turn it off first.",
        ));
    }
    let secret = TotpSecret::generate();
    let sealed = state
        .account
        .sealer
        .seal(secret.as_bytes(), &seal_context(account.id));
    if !state
        .db
        .set_pending_totp(account.id, &sealed)
        .await
        .map_err(unavailable)?
    {
        return Err(Error::new(
            StatusCode::CONFLICT,
            "totp_enabled",
            "Two-factor sign-in is already on; turn it off first.",
        ));
    }
    let url = state
        .account
        .totp
        .otpauth_url(&secret, ISSUER, &account.username);
    Ok((secret, url))
}

/// The `otpauth://` URL of the pending secret, for the QR code.
pub(crate) fn pending_url(state: &AppState, account: &AccountRow) -> Result<Option<String>, Error> {
    Ok(pending_secret(state, account)?.map(|secret| {
        state
            .account
            .totp
            .otpauth_url(&secret, ISSUER, &account.username)
    }))
}

/// The secret awaiting its first code, while two-factor sign-in is off.
pub(crate) fn pending_secret(
    state: &AppState,
    account: &AccountRow,
) -> Result<Option<TotpSecret>, Error> {
    match &account.pending_totp_secret {
        Some(sealed) if account.totp_secret.is_none() => {
            open_secret(state, account.id, sealed).map(Some)
        }
        _ => Ok(None),
    }
}

/// Ends enrolment with the first code: two-factor sign-in is on, and the recovery
/// codes to show once are returned.
pub(crate) async fn confirm_enrolment(
    state: &AppState,
    account: &AccountRow,
    code: &str,
    context: &EventContext,
) -> Result<Vec<String>, Error> {
    let Some(sealed) = account.pending_totp_secret.as_deref() else {
        return Err(Error::new(
            StatusCode::CONFLICT,
            "totp_not_started",
            "Start the set-up first.",
        ));
    };
    let key = format!("user:{}", account.id);
    state
        .account
        .second_factor
        .check(&key)
        .await
        .map_err(throttled)?;
    let secret = open_secret(state, account.id, sealed)?;
    let Ok(step) = state.account.totp.verify(&secret, code, unix_now(), None) else {
        state
            .account
            .record(SecurityEventKind::OtpFailed, Some(account.id), context)
            .await;
        state
            .account
            .second_factor
            .failure(&key)
            .await
            .map_err(throttled)?;
        return Err(otp_invalid());
    };
    let (shown, stored) = state.account.recovery.generate();
    let enabled = state
        .db
        .enable_totp(
            account.id,
            sealed,
            i64::try_from(step).unwrap_or(i64::MAX),
            &stored,
        )
        .await
        .map_err(unavailable)?;
    if !enabled {
        return Err(Error::new(
            StatusCode::CONFLICT,
            "totp_not_started",
            "The set-up changed meanwhile; start again.",
        ));
    }
    state
        .account
        .record(SecurityEventKind::TotpEnabled, Some(account.id), context)
        .await;
    Ok(shown)
}

/// Turns two-factor sign-in off after the password and a current code (or a recovery
/// code).
pub(crate) async fn disable(
    state: &AppState,
    account: &AccountRow,
    password: &str,
    code: &str,
    context: &EventContext,
) -> Result<(), Error> {
    if account.totp_secret.is_none() {
        return Err(Error::new(
            StatusCode::CONFLICT,
            "totp_disabled",
            "Two-factor sign-in is off.",
        ));
    }
    if !password_matches(state, account, password).await? {
        return Err(Error::unauthorized("The password is wrong."));
    }
    check_second_factor(state, account, code, context).await?;
    state
        .db
        .disable_totp(account.id)
        .await
        .map_err(unavailable)?;
    state
        .account
        .record(SecurityEventKind::TotpDisabled, Some(account.id), context)
        .await;
    Ok(())
}

/// Sets a new password that the policy accepts; every session of the user except
/// `keep_session` (a store key) ends, and every API token is revoked.
pub(crate) async fn set_new_password(
    state: &AppState,
    account: &AccountRow,
    new_password: &str,
    keep_session: Option<&str>,
) -> Result<(), Error> {
    let password = state
        .policy
        .check(&account.username, new_password)
        .map_err(|violation| Error::bad_request(violation.to_string()))?;
    let hash = state.passwords.hash(password).await.map_err(|error| {
        tracing::error!(%error, "cannot hash a password");
        Error::service_unavailable(5)
    })?;
    // Conditional on the hash read: a reset link racing with a change acts once.
    if !state
        .db
        .replace_password_hash(account.id, &account.password_hash, &hash)
        .await
        .map_err(unavailable)?
    {
        return Err(Error::new(
            StatusCode::CONFLICT,
            "password_changed",
            "The password changed meanwhile.",
        ));
    }
    state
        .sessions
        .end_others(account.id, keep_session)
        .await
        .map_err(|error| {
            tracing::error!(%error, "cannot end sessions after a password change");
            Error::service_unavailable(5)
        })?;
    state.jwt.revoke_user(account.id).await.map_err(|error| {
        tracing::error!(%error, "cannot revoke tokens after a password change");
        Error::service_unavailable(5)
    })?;
    Ok(())
}

/// An address as stored: trimmed and lower-cased, when it looks like one. The mailer
/// parses it again before sending.
pub(crate) fn normalise_email(text: &str) -> Option<String> {
    let email = text.trim().to_ascii_lowercase();
    let (local, domain) = email.rsplit_once('@')?;
    let fine = email.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | '"'));
    fine.then_some(email)
}

/// Keeps `email` as pending and mails its confirmation link; the origin is the one
/// the allowed-hosts layer accepted, so a forged `Host` cannot aim the link elsewhere.
pub(crate) async fn request_email_change(
    state: &AppState,
    account: &AccountRow,
    email: &str,
    origin: &str,
) -> Result<(), Error> {
    let Some(email) = normalise_email(email) else {
        return Err(Error::bad_request("Enter an email address."));
    };
    state
        .db
        .set_pending_email(account.id, &email)
        .await
        .map_err(unavailable)?;
    let token = state.account.email_links.issue(account.id, &email);
    let text = format!(
        "Confirm this address for your account {}:\n\n{origin}/confirm-email/{token}\n\n\
         The link works once, for 24 hours. If you did not ask for this, ignore this message.\n",
        account.username
    );
    crate::mail::send(state, &email, "Confirm your email address", &text).await
}

/// Confirms the address a link names.
pub(crate) async fn confirm_email(
    state: &AppState,
    token: &str,
    context: &EventContext,
) -> Result<(), Error> {
    let invalid = || Error::bad_request("This link is invalid or has expired.");
    let claim = state
        .account
        .email_links
        .open(token)
        .map_err(|_| invalid())?;
    let account = state
        .db
        .account(claim.user_id())
        .await
        .map_err(unavailable)?
        .ok_or_else(invalid)?;
    let pending = account.pending_email.as_deref().ok_or_else(invalid)?;
    claim.check(pending).map_err(|_| invalid())?;
    if !state
        .db
        .confirm_email(account.id, pending)
        .await
        .map_err(unavailable)?
    {
        return Err(invalid());
    }
    state
        .account
        .record(SecurityEventKind::EmailConfirmed, Some(account.id), context)
        .await;
    Ok(())
}

/// A reset request for `email`: the link is mailed when an account has that
/// confirmed address and neither the address nor the account asked too often. The
/// caller answers the same whatever happened here.
/// Counts one message to `key` and says whether it may leave: not while `key` waits,
/// nor when the store cannot count (logged; the caller's answer stays the same).
async fn may_mail(throttle: &AccountThrottle, key: &str) -> bool {
    let counted = match throttle.check(key).await {
        Ok(()) => throttle.failure(key).await.map(|_| ()),
        Err(error) => Err(error),
    };
    match counted {
        Ok(()) => true,
        Err(ThrottleError::Wait(_)) => false,
        Err(error) => {
            tracing::error!(%error, "the throttle store failed; no message sent");
            false
        }
    }
}

pub(crate) async fn request_reset(
    state: &AppState,
    email: &str,
    origin: &str,
    context: &EventContext,
) -> Result<(), Error> {
    let Some(email) = normalise_email(email) else {
        return Ok(());
    };
    let by_address = format!("reset-address:{email}");
    if !may_mail(&state.account.resets_requested, &by_address).await {
        return Ok(());
    }
    let Some(account) = state
        .db
        .account_by_email(&email)
        .await
        .map_err(unavailable)?
    else {
        return Ok(());
    };
    let by_account = format!("reset-user:{}", account.id);
    if !may_mail(&state.account.resets_requested, &by_account).await {
        return Ok(());
    }
    state
        .account
        .record(
            SecurityEventKind::PasswordResetRequested,
            Some(account.id),
            context,
        )
        .await;
    let token = state
        .account
        .reset_links
        .issue(account.id, &account.password_hash);
    let text = format!(
        "Someone asked to reset the password of {}.\n\n{origin}/reset/{token}\n\n\
         The link works once, for 30 minutes. If it was not you, ignore this message: \
         your password stays as it is.\n",
        account.username
    );
    // A failure to send is logged, never shown: the answer must not tell whether the
    // address has an account.
    if let Err(error) = crate::mail::send(state, &email, "Reset your password", &text).await {
        tracing::error!(error = error.message(), "a reset message was not sent");
    }
    Ok(())
}

/// The account a reset link is for, if it is authentic, unexpired and unused.
pub(crate) async fn reset_account(state: &AppState, token: &str) -> Result<AccountRow, Error> {
    let invalid = || Error::bad_request("This link is invalid, expired or already used.");
    let claim = state
        .account
        .reset_links
        .open(token)
        .map_err(|_| invalid())?;
    let account = state
        .db
        .account(claim.user_id())
        .await
        .map_err(unavailable)?
        .ok_or_else(invalid)?;
    claim.check(&account.password_hash).map_err(|_| invalid())?;
    Ok(account)
}

/// Completes a reset: the second factor first when the account has one, then the new
/// password; every session and token of the user ends.
pub(crate) async fn complete_reset(
    state: &AppState,
    token: &str,
    new_password: &str,
    code: Option<&str>,
    context: &EventContext,
) -> Result<(), Error> {
    let account = reset_account(state, token).await?;
    if account.totp_secret.is_some() {
        let Some(code) = code.filter(|c| !c.trim().is_empty()) else {
            return Err(Error::new(
                StatusCode::UNAUTHORIZED,
                "otp_required",
                "Enter a code from your authenticator app, or a recovery code.",
            ));
        };
        check_second_factor(state, &account, code, context).await?;
    }
    set_new_password(state, &account, new_password, None).await?;
    state
        .account
        .record(
            SecurityEventKind::PasswordResetCompleted,
            Some(account.id),
            context,
        )
        .await;
    Ok(())
}
