//! The second sign-in step and recent re-authentication, kept in the session.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::session::Session;

const PENDING_KEY: &str = "portcullis.second_factor";
const AUTHENTICATED_AT_KEY: &str = "portcullis.authenticated_at";

/// How long a password-verified attempt waits for its second factor.
pub const SECOND_STEP_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// Wrong codes one attempt may send before the password must be given again.
pub const SECOND_STEP_TRIES: u32 = 5;

#[derive(Serialize, Deserialize)]
struct Pending {
    user: i64,
    until: i64,
    tries: u32,
    next: String,
}

/// A sign-in whose password was right and whose second factor is awaited: kept in
/// the (still anonymous) session, so that it is bound to this browser's attempt,
/// short-lived ([`SECOND_STEP_LIFETIME`]) and single-use: [`SecondStep::complete`]
/// removes it and signs the user in with a new session id; [`SECOND_STEP_TRIES`]
/// wrong codes remove it too, and the password is asked again.
///
/// Until it completes, nothing treats the session as signed in.
///
/// ```
/// use portcullis::account::SecondStep;
/// use portcullis::session::Session;
///
/// async fn after_password(session: Session, user_id: i64) {
///     // The password was right, and the account has two-factor sign-in on.
///     SecondStep::begin(&session, user_id, "/files");
///     assert_eq!(session.user_id(), None);
/// }
///
/// async fn after_code(session: Session, code_is_right: bool) -> &'static str {
///     let Some(step) = SecondStep::pending(&session) else {
///         return "start again";
///     };
///     if code_is_right {
///         step.complete(&session);
///         "signed in"
///     } else if step.failed(&session) {
///         "wrong code"
///     } else {
///         "too many wrong codes: start again"
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondStep {
    user_id: i64,
    next: String,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl SecondStep {
    /// Starts the second step for `user_id`, who asked to go to `next` (already made
    /// safe with [`crate::auth::safe_next`]).
    pub fn begin(session: &Session, user_id: i64, next: &str) {
        let lifetime = i64::try_from(SECOND_STEP_LIFETIME.as_millis()).unwrap_or(i64::MAX);
        let pending = Pending {
            user: user_id,
            until: now_ms().saturating_add(lifetime),
            tries: 0,
            next: next.to_owned(),
        };
        session.insert(
            PENDING_KEY,
            serde_json::to_string(&pending).expect("the state serialises"),
        );
    }

    /// The attempt awaiting a second factor in this session, if one is live.
    pub fn pending(session: &Session) -> Option<Self> {
        let pending: Pending = serde_json::from_str(&session.get(PENDING_KEY)?).ok()?;
        if pending.until <= now_ms() || pending.tries >= SECOND_STEP_TRIES {
            session.remove(PENDING_KEY);
            return None;
        }
        Some(Self {
            user_id: pending.user,
            next: pending.next,
        })
    }

    /// The user whose password was verified.
    pub fn user_id(&self) -> i64 {
        self.user_id
    }

    /// Where to go once signed in.
    pub fn next(&self) -> &str {
        &self.next
    }

    /// Counts a wrong code; `false` when that was the last try (the attempt is gone).
    pub fn failed(&self, session: &Session) -> bool {
        let Some(mut pending) = session
            .get(PENDING_KEY)
            .and_then(|json| serde_json::from_str::<Pending>(&json).ok())
        else {
            return false;
        };
        pending.tries += 1;
        if pending.tries >= SECOND_STEP_TRIES {
            session.remove(PENDING_KEY);
            return false;
        }
        session.insert(
            PENDING_KEY,
            serde_json::to_string(&pending).expect("the state serialises"),
        );
        true
    }

    /// Ends the step: the attempt is removed and the user signed in, with a new
    /// session id, and marked as just authenticated.
    pub fn complete(self, session: &Session) {
        session.remove(PENDING_KEY);
        session.login(self.user_id);
        mark_authenticated(session);
    }
}

/// Notes in the session that its user has just proved who they are (a sign-in, or
/// the password typed again), for [`require_recent_authentication`].
pub fn mark_authenticated(session: &Session) {
    session.insert(AUTHENTICATED_AT_KEY, now_ms().to_string());
}

/// `Ok` when the session's user proved who they are within `max_age`: ask for the
/// password again before changing the email address, the password or the second
/// factor (ASVS 5.0, 7.5.1), so that a session left open, or stolen, cannot take over
/// the account.
///
/// ```
/// use std::time::Duration;
/// use portcullis::account::{mark_authenticated, require_recent_authentication};
/// use portcullis::session::Session;
///
/// async fn change_email(session: Session) -> Result<&'static str, portcullis::error::Error> {
///     require_recent_authentication(&session, Duration::from_secs(15 * 60))?;
///     Ok("changed")
/// }
/// ```
pub fn require_recent_authentication(
    session: &Session,
    max_age: Duration,
) -> Result<(), crate::error::Error> {
    let max_age = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
    let recent = session.user_id().is_some()
        && session
            .get(AUTHENTICATED_AT_KEY)
            .and_then(|at| at.parse::<i64>().ok())
            .is_some_and(|at| now_ms().saturating_sub(at) <= max_age);
    if recent {
        Ok(())
    } else {
        Err(crate::error::Error::new(
            axum::http::StatusCode::FORBIDDEN,
            "reauthentication_required",
            "Confirm your password to continue.",
        ))
    }
}
