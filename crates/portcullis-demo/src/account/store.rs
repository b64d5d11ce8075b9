//! The account-security columns and tables: every write that must happen once (a TOTP
//! step, a recovery code, a confirmed address) is one conditional statement, so that
//! two requests racing cannot both pass.

use futures_util::future::BoxFuture;
use portcullis::account::{EventStoreError, SecurityEvent, SecurityEventStore};

use crate::db::{on_pool, Database};

/// What the account page and the flows read of a user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    /// The user's id.
    pub id: i64,
    /// The username.
    pub username: String,
    /// The password hash (never shown).
    pub password_hash: String,
    /// The confirmed address.
    pub email: Option<String>,
    /// An address awaiting confirmation.
    pub pending_email: Option<String>,
    /// The sealed TOTP secret, when two-factor sign-in is on.
    pub totp_secret: Option<String>,
    /// A sealed secret awaiting its first code.
    pub pending_totp_secret: Option<String>,
    /// The last TOTP step accepted.
    pub totp_last_step: Option<i64>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl Database {
    /// User `id`'s account row.
    pub async fn account(&self, id: i64) -> Result<Option<AccountRow>, sqlx::Error> {
        on_pool!(self.reader(), |pool| {
            sqlx::query_as(
                "SELECT id, username, password_hash, email, pending_email, totp_secret, \
                 pending_totp_secret, totp_last_step FROM users WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        })
    }

    /// The account whose confirmed address is `email` (lower-cased).
    pub async fn account_by_email(&self, email: &str) -> Result<Option<AccountRow>, sqlx::Error> {
        on_pool!(self.reader(), |pool| {
            sqlx::query_as(
                "SELECT id, username, password_hash, email, pending_email, totp_secret, \
                 pending_totp_secret, totp_last_step FROM users WHERE email = $1",
            )
            .bind(email)
            .fetch_optional(pool)
            .await
        })
    }

    /// Keeps a sealed secret awaiting its first code; refused (`false`) while
    /// two-factor sign-in is on: a working secret is never replaced silently.
    pub async fn set_pending_totp(&self, id: i64, sealed: &str) -> Result<bool, sqlx::Error> {
        let done = on_pool!(self.writer(), |pool| {
            sqlx::query(
                "UPDATE users SET pending_totp_secret = $1 WHERE id = $2 AND totp_secret IS NULL",
            )
            .bind(sealed)
            .bind(id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(done == 1)
    }

    /// Turns two-factor sign-in on with the pending secret `sealed` (as read), the
    /// step its first code matched and the recovery codes' hashes, in one transaction;
    /// `false` when the pending secret changed meanwhile.
    pub async fn enable_totp(
        &self,
        id: i64,
        sealed: &str,
        step: i64,
        recovery_hashes: &[String],
    ) -> Result<bool, sqlx::Error> {
        on_pool!(self.writer(), |pool| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE users SET totp_secret = pending_totp_secret, pending_totp_secret = NULL, \
                 totp_last_step = $1 WHERE id = $2 AND pending_totp_secret = $3 AND totp_secret IS NULL",
            )
            .bind(step)
            .bind(id)
            .bind(sealed)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for hash in recovery_hashes {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                    .bind(id)
                    .bind(hash)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Turns two-factor sign-in off and drops the recovery codes.
    pub async fn disable_totp(&self, id: i64) -> Result<(), sqlx::Error> {
        on_pool!(self.writer(), |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE users SET totp_secret = NULL, pending_totp_secret = NULL, \
                 totp_last_step = NULL WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
    }

    /// Records `step` as the last accepted unless it, or a later one, already is:
    /// `false` is a replay (or a race lost to the same code).
    pub async fn use_totp_step(&self, id: i64, step: i64) -> Result<bool, sqlx::Error> {
        let done = on_pool!(self.writer(), |pool| {
            sqlx::query(
                "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_secret IS NOT NULL \
                 AND (totp_last_step IS NULL OR totp_last_step < $3)",
            )
            .bind(step)
            .bind(id)
            .bind(step)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(done == 1)
    }

    /// Spends the unused recovery code of `id` among `candidates` (its stored forms
    /// under each key); `false` when none is unused.
    pub async fn use_recovery_code(
        &self,
        id: i64,
        candidates: &[String],
    ) -> Result<bool, sqlx::Error> {
        for candidate in candidates {
            let done = on_pool!(self.writer(), |pool| {
                sqlx::query(
                    "UPDATE recovery_codes SET used_at = $1 \
                     WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
                )
                .bind(now())
                .bind(id)
                .bind(candidate)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
            })?;
            if done == 1 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// How many recovery codes of `id` are unused.
    pub async fn recovery_codes_left(&self, id: i64) -> Result<i64, sqlx::Error> {
        on_pool!(self.reader(), |pool| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
            )
            .bind(id)
            .fetch_one(pool)
            .await
        })
    }

    /// Keeps `email` as the address awaiting confirmation.
    pub async fn set_pending_email(&self, id: i64, email: &str) -> Result<(), sqlx::Error> {
        on_pool!(self.writer(), |pool| {
            sqlx::query("UPDATE users SET pending_email = $1 WHERE id = $2")
                .bind(email)
                .bind(id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(())
    }

    /// Confirms the pending address `email` of `id`: `Ok(false)` when it is no longer
    /// the pending one (the link was used, or overtaken), or another account holds
    /// it now.
    pub async fn confirm_email(&self, id: i64, email: &str) -> Result<bool, sqlx::Error> {
        let done = on_pool!(self.writer(), |pool| {
            sqlx::query(
                "UPDATE users SET email = pending_email, pending_email = NULL \
                 WHERE id = $1 AND pending_email = $2",
            )
            .bind(id)
            .bind(email)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        });
        match done {
            Ok(done) => Ok(done == 1),
            // The unique index: another account confirmed the address first.
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Replaces `id`'s password hash if it is still `expected`: a reset link acts
    /// once, even when two requests race with it.
    pub async fn replace_password_hash(
        &self,
        id: i64,
        expected: &str,
        hash: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = on_pool!(self.writer(), |pool| {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3")
                .bind(hash)
                .bind(id)
                .bind(expected)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(done == 1)
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    kind: String,
    at: String,
    user_id: Option<i64>,
    ip: Option<String>,
    request_id: Option<String>,
}

impl SecurityEventStore for Database {
    fn append<'a>(
        &'a self,
        event: &'a SecurityEvent,
    ) -> BoxFuture<'a, Result<(), EventStoreError>> {
        Box::pin(async move {
            on_pool!(self.writer(), |pool| {
                sqlx::query(
                    "INSERT INTO security_events (user_id, kind, at, ip, request_id) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(event.user_id)
                .bind(event.kind.as_str())
                .bind(
                    event
                        .at
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                )
                .bind(event.ip.map(|ip| ip.to_string()))
                .bind(event.request_id.clone())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
            })
            .map_err(|e| EventStoreError(Box::new(e)))?;
            Ok(())
        })
    }

    fn recent(
        &self,
        user_id: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<SecurityEvent>, EventStoreError>> {
        Box::pin(async move {
            let rows: Vec<EventRow> = on_pool!(self.reader(), |pool| {
                sqlx::query_as(
                    "SELECT kind, at, user_id, ip, request_id FROM security_events \
                     WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(user_id)
                .bind(i64::try_from(limit).unwrap_or(100))
                .fetch_all(pool)
                .await
            })
            .map_err(|e| EventStoreError(Box::new(e)))?;
            Ok(rows
                .into_iter()
                .filter_map(|row| {
                    Some(SecurityEvent {
                        kind: row.kind.parse().ok()?,
                        at: chrono::DateTime::parse_from_rfc3339(&row.at)
                            .ok()?
                            .with_timezone(&chrono::Utc),
                        user_id: row.user_id,
                        ip: row.ip.and_then(|ip| ip.parse().ok()),
                        request_id: row.request_id,
                    })
                })
                .collect())
        })
    }
}
