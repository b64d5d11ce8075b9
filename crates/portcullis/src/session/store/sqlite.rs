//! [`SqliteSessionStore`]: sessions in an SQLite table, bounded and expiring.

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{SessionStore, SessionStoreError};
use crate::session::record::{now, SessionRecord};

/// Sessions in an SQLite database (the table `portcullis_sessions`, created by
/// [`SqliteSessionStore::migrate`]); expired rows are purged in the background. Like
/// [`MemorySessionStore`](super::MemorySessionStore) it holds at most `capacity` signed-in and `capacity` anonymous
/// sessions (100,000 each by default), each pool evicting its own rows closest to
/// expiry, so a flood of anonymous visitors neither fills the disk nor ends anyone's
/// signed-in session.
///
/// ```no_run
/// # async fn run(pool: sqlx::SqlitePool) -> Result<(), portcullis::session::SessionStoreError> {
/// let store = portcullis::session::SqliteSessionStore::new(pool);
/// store.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteSessionStore {
    pool: sqlx::SqlitePool,
    capacity: i64,
}

fn store_error(error: sqlx::Error) -> SessionStoreError {
    SessionStoreError::unavailable(error)
}

impl SqliteSessionStore {
    /// A store on `pool`, of at most 100,000 signed-in and 100,000 anonymous sessions.
    pub fn new(pool: sqlx::SqlitePool) -> Self {
        Self {
            pool,
            capacity: 100_000,
        }
    }

    /// The pool the sessions live in.
    pub fn pool(&self) -> &sqlx::SqlitePool {
        &self.pool
    }

    /// At most `capacity` signed-in and `capacity` anonymous sessions. Zero is refused
    /// ([`SessionStoreError::ZeroCapacity`]), not raised to one: a store with room for
    /// no session would evict each session as it saves it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use portcullis::session::{SessionStoreError, SqliteSessionStore};
    ///
    /// let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
    /// let store = SqliteSessionStore::new(pool.clone()).with_capacity(10_000)?;
    /// store.migrate().await?;
    /// assert!(matches!(
    ///     SqliteSessionStore::new(pool).with_capacity(0),
    ///     Err(SessionStoreError::ZeroCapacity)
    /// ));
    /// # Ok(()) }
    /// ```
    pub fn with_capacity(mut self, capacity: usize) -> Result<Self, SessionStoreError> {
        if capacity == 0 {
            return Err(SessionStoreError::ZeroCapacity);
        }
        self.capacity = i64::try_from(capacity).unwrap_or(i64::MAX);
        Ok(self)
    }

    /// Creates the table if needed and starts the background purge (every 5 minutes).
    pub async fn migrate(&self) -> Result<(), SessionStoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS portcullis_sessions (\
                key TEXT PRIMARY KEY NOT NULL, \
                user_id INTEGER, \
                record TEXT NOT NULL, \
                expires_at INTEGER NOT NULL)",
        )
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        sqlx::query(
            "CREATE INDEX IF NOT EXISTS portcullis_sessions_user ON portcullis_sessions (user_id)",
        )
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        // Each pool's eviction reads its rows in expiry order.
        sqlx::query(
            "CREATE INDEX IF NOT EXISTS portcullis_sessions_pool \
             ON portcullis_sessions (user_id IS NULL, expires_at)",
        )
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(300));
            loop {
                tick.tick().await;
                if pool.is_closed() {
                    break;
                }
                let result = sqlx::query("DELETE FROM portcullis_sessions WHERE expires_at <= ?")
                    .bind(now())
                    .execute(&pool)
                    .await;
                if let Err(error) = result {
                    tracing::warn!(%error, "cannot purge expired sessions");
                }
            }
        });
        Ok(())
    }
}

impl SessionStore for SqliteSessionStore {
    fn load<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, SessionStoreError>> {
        Box::pin(async move {
            let row: Option<(String,)> = sqlx::query_as(
                "SELECT record FROM portcullis_sessions WHERE key = ? AND expires_at > ?",
            )
            .bind(key)
            .bind(now())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
            Ok(row.and_then(|(json,)| SessionRecord::from_json(&json)))
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        record: &'a SessionRecord,
        expires_at: i64,
    ) -> BoxFuture<'a, Result<(), SessionStoreError>> {
        Box::pin(async move {
            let json = record.to_json()?;
            let anonymous = record.user_id.is_none();
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            // Room for one more in this record's pool: the rows closest to expiry go.
            sqlx::query(
                "DELETE FROM portcullis_sessions WHERE key IN (\
                   SELECT key FROM portcullis_sessions \
                   WHERE (user_id IS NULL) = ? AND key <> ? \
                   ORDER BY expires_at LIMIT max(0, 1 - ? + (\
                     SELECT count(*) FROM portcullis_sessions \
                     WHERE (user_id IS NULL) = ? AND key <> ?)))",
            )
            .bind(anonymous)
            .bind(key)
            .bind(self.capacity)
            .bind(anonymous)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
            sqlx::query(
                "INSERT INTO portcullis_sessions (key, user_id, record, expires_at) \
                 VALUES (?, ?, ?, ?) \
                 ON CONFLICT (key) DO UPDATE SET user_id = excluded.user_id, \
                 record = excluded.record, expires_at = excluded.expires_at",
            )
            .bind(key)
            .bind(record.user_id)
            .bind(json)
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
            tx.commit().await.map_err(store_error)?;
            Ok(())
        })
    }

    fn update<'a>(
        &'a self,
        key: &'a str,
        record: &'a SessionRecord,
        expires_at: i64,
    ) -> BoxFuture<'a, Result<bool, SessionStoreError>> {
        Box::pin(async move {
            let json = record.to_json()?;
            let result = sqlx::query(
                "UPDATE portcullis_sessions SET user_id = ?, record = ?, expires_at = ? \
                 WHERE key = ? AND expires_at > ?",
            )
            .bind(record.user_id)
            .bind(json)
            .bind(expires_at)
            .bind(key)
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
            Ok(result.rows_affected() == 1)
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), SessionStoreError>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM portcullis_sessions WHERE key = ?")
                .bind(key)
                .execute(&self.pool)
                .await
                .map_err(store_error)?;
            Ok(())
        })
    }

    fn delete_user<'a>(
        &'a self,
        user_id: i64,
        except: Option<&'a str>,
    ) -> BoxFuture<'a, Result<u64, SessionStoreError>> {
        Box::pin(async move {
            let result =
                sqlx::query("DELETE FROM portcullis_sessions WHERE user_id = ? AND key IS NOT ?")
                    .bind(user_id)
                    .bind(except)
                    .execute(&self.pool)
                    .await
                    .map_err(store_error)?;
            Ok(result.rows_affected())
        })
    }

    fn list_user<'a>(
        &'a self,
        user_id: i64,
    ) -> BoxFuture<'a, Result<Vec<(String, SessionRecord)>, SessionStoreError>> {
        Box::pin(async move {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT key, record FROM portcullis_sessions WHERE user_id = ? AND expires_at > ?",
            )
            .bind(user_id)
            .bind(now())
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
            Ok(rows
                .into_iter()
                .filter_map(|(key, json)| Some((key, SessionRecord::from_json(&json)?)))
                // The column and the record are written together; a record that says
                // otherwise is no session of this user's.
                .filter(|(_, record)| record.user_id == Some(user_id))
                .collect())
        })
    }

    fn delete_of_user<'a>(
        &'a self,
        user_id: i64,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, SessionStoreError>> {
        Box::pin(async move {
            // One statement: the ownership check and the delete are atomic.
            let result = sqlx::query(
                "DELETE FROM portcullis_sessions WHERE key = ? AND user_id = ? AND expires_at > ?",
            )
            .bind(key)
            .bind(user_id)
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
            Ok(result.rows_affected() == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user: Option<i64>) -> SessionRecord {
        SessionRecord::begun_now(user)
    }

    async fn memory_pool() -> sqlx::SqlitePool {
        // One connection: every connection to `:memory:` is a database of its own.
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap()
    }

    #[cfg(feature = "test-util")]
    #[tokio::test]
    async fn sqlite_store_keeps_the_session_store_rules() {
        let store = SqliteSessionStore::new(memory_pool().await);
        store.migrate().await.unwrap();
        super::super::conformance::run(&store).await;
    }

    #[tokio::test]
    async fn a_zero_capacity_is_refused_not_raised_to_one() {
        let store = SqliteSessionStore::new(memory_pool().await);
        assert!(matches!(
            store.clone().with_capacity(0),
            Err(SessionStoreError::ZeroCapacity)
        ));
        assert_eq!(store.with_capacity(1).unwrap().capacity, 1);
    }

    #[tokio::test]
    async fn sqlite_store_round_trips_and_expires() {
        let store = SqliteSessionStore::new(memory_pool().await);
        store.migrate().await.unwrap();
        let later = now() + 1_000_000;
        let mut r = record(Some(7));
        r.data.insert("theme".into(), "dark".into());
        store.save("k", &r, later).await.unwrap();
        assert_eq!(store.load("k").await.unwrap(), Some(r.clone()));
        let other_user = record(Some(8));
        store.save("gone", &other_user, now() - 1).await.unwrap();
        assert!(store.load("gone").await.unwrap().is_none());
        store.save("k2", &r, later).await.unwrap();
        assert_eq!(store.delete_user(7, Some("k")).await.unwrap(), 1);
        assert!(store.load("k").await.unwrap().is_some());
        store.delete("k").await.unwrap();
        assert!(store.load("k").await.unwrap().is_none());
    }
}
