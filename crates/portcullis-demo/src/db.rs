//! The database: SQLite under the data folder, migrated at start.

use std::sync::Arc;

use portcullis::config::Settings;
use serde::Serialize;

/// The database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The data folder could not be created.
    #[error("cannot create the data folder {path}: {source}")]
    DataDir {
        /// The folder.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A query or the connection failed.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// A migration failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Now, as stored: RFC 3339 with microseconds, so that text order is time order.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A comment as pages and the API show it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Comment {
    /// The comment's id.
    pub id: i64,
    /// Who wrote it.
    pub username: String,
    /// The text, as written (templates escape it).
    pub body: String,
    /// When, RFC 3339.
    pub created_at: String,
}

/// A user as the API shows it. It has no password field, so no response can carry a
/// hash.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ApiUser {
    /// The user's id.
    pub id: i64,
    /// The username.
    pub username: String,
    /// When the account was made, RFC 3339.
    pub created_at: String,
}

/// An uploaded file's metadata.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StoredFile {
    /// Random 128-bit id (hex), used in URLs.
    pub id: String,
    /// The secured name, for display only.
    pub display_name: String,
    /// The verified type.
    pub content_type: String,
    /// Bytes stored (after metadata removal).
    pub size: i64,
    /// The random name in storage; never shown.
    #[serde(skip)]
    pub storage_name: String,
    /// When, RFC 3339.
    pub created_at: String,
}

/// Recording an upload failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddFileError {
    /// The database failed; the transaction was rolled back.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The bytes could not be made visible; the transaction was rolled back.
    #[error("storage: {0}")]
    Storage(std::io::Error),
}

/// The users table, as sign-ins see it: [`portcullis::auth::login`] finds accounts and
/// stores upgraded hashes through this, for the form and the token endpoint alike.
impl portcullis::auth::CredentialStore for Database {
    type Error = sqlx::Error;

    async fn find(&self, username: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
        // A name the app would refuse cannot be an account: not looked up, and it costs
        // the same dummy verification as any unknown name.
        match portcullis::input::username(username) {
            Ok(name) => self.credentials(&name).await,
            Err(_) => Ok(None),
        }
    }

    async fn replace_hash(&self, id: i64, hash: &str) -> Result<(), sqlx::Error> {
        self.set_password_hash(id, hash).await
    }
}

/// One engine's pool of typed connections.
///
/// Typed, not sqlx's `Any` driver: `Any` turns every row of the engine's driver into an
/// `AnyRow` (each value copied and re-boxed) before the row is decoded, which was a
/// fifth of the instructions of a `/` request (`bench/instructions.sh`). Typed pools
/// decode straight from the engine's row. Each statement is still written once: the
/// [`on_pool!`] macro expands it once per engine.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    /// The embedded default.
    Sqlite(sqlx::SqlitePool),
    /// `DATABASE_URL=postgres://…`.
    Postgres(sqlx::PgPool),
}

/// Runs `$body` with `$pool` bound to the typed pool inside `$target` (a [`Pool`]):
/// the same statement text and code for both engines (`$n` placeholders, which
/// SQLite reads too), type-checked once per engine. `$body` runs in the calling
/// function, so `?` and `return` act on it.
macro_rules! on_pool {
    ($target:expr, |$pool:ident| $body:expr) => {
        match $target {
            $crate::db::Pool::Sqlite($pool) => $body,
            $crate::db::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Whether `tx` is PostgreSQL's, for the one statement only it needs.
fn is_postgres<DB: sqlx::Database>(_tx: &sqlx::Transaction<'_, DB>) -> bool {
    DB::NAME == "PostgreSQL"
}

/// The connection pools. Every query is parameterized.
///
/// SQLite allows one writer at a time, so writes go through a pool of one connection
/// (they queue in the pool, not on the file lock with `busy_timeout` retries), and
/// reads through a pool of their own that cannot write (`PRAGMA query_only`). With
/// PostgreSQL both are one pool.
#[derive(Clone)]
pub struct Database {
    read: Pool,
    write: Pool,
    /// On SQLite, comments wait here for the writer, which commits them in batches.
    comments: Option<CommentQueue>,
    profiles: Arc<quick_cache::sync::Cache<i64, ApiUser>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("read", &self.read)
            .field("write", &self.write)
            .field("cached_profiles", &self.profiles.len())
            .finish()
    }
}

/// How many public profiles are kept in memory (a few MiB at most).
const CACHED_PROFILES: usize = 10_000;

/// SQLite reader connections: two per core, at least 2 and at most 8. sqlx runs each
/// SQLite connection on a thread of its own, so two per core keep every core busy
/// reading while another reader's thread waits (on the disk, or for its caller to take
/// the rows). More would only add threads, page caches and memory: reads of this
/// database are CPU-bound.
fn sqlite_readers() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    u32::try_from(cores.saturating_mul(2))
        .unwrap_or(u32::MAX)
        .clamp(2, 8)
}

/// The page cache of each SQLite connection, in KiB (SQLite's default is 2,000).
///
/// The operating system caches the file already; a connection's own cache only saves
/// copying pages it read before. The writer's fills with the pages it appended, which
/// it does not read again, and a reader's is emptied whenever another connection has
/// committed, which under writes is all the time. With the default, five connections
/// held up to 10 MiB for that; the hot pages of every query here (the newest
/// comments, the account by name, their indexes) fit in a few dozen pages.
/// BENCHMARKS.md gives the peak RSS with 2,000, 512 and 128.
const SQLITE_CACHE_KIB: u32 = 512;

/// PostgreSQL connections, shared by reads and writes.
const POSTGRES_CONNECTIONS: u32 = 16;

/// How long a query waits for a connection of its pool before failing (503).
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A pool on the SQLite file `path`: the one writer (which creates the file), or the
/// readers, which are `query_only`.
///
/// WAL: readers do not wait for the writer. `busy_timeout`: the writer is one
/// connection, but a second instance or a migration could still hold the lock; wait a
/// little for it instead of failing at once.
///
/// `synchronous = NORMAL` with WAL: a commit is written to the WAL without waiting
/// for the disk, which is synced at checkpoints. No crash corrupts the database and a
/// crash of the process loses nothing committed; a power loss or OS crash can lose the
/// last transactions committed before it (never a half one). `FULL` would sync every
/// commit, the cost of which bounds POST throughput to the disk's sync rate. The
/// README says so.
async fn sqlite_pool(
    path: &std::path::Path,
    read_only: bool,
) -> Result<sqlx::SqlitePool, sqlx::Error> {
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };
    let mut options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(!read_only)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(std::time::Duration::from_secs(5))
        .foreign_keys(true)
        // A negative size is in KiB, not pages.
        .pragma("cache_size", format!("-{SQLITE_CACHE_KIB}"));
    if read_only {
        options = options.pragma("query_only", "ON");
    }
    SqlitePoolOptions::new()
        .max_connections(if read_only { sqlite_readers() } else { 1 })
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
}

/// The statement that stores one comment, for both engines.
const INSERT_COMMENT: &str =
    "INSERT INTO comments (user_id, body, created_at) VALUES ($1, $2, $3) RETURNING id";

/// Stores one comment through the SQLite writer's connection.
async fn insert_comment(
    conn: &mut sqlx::SqliteConnection,
    user_id: i64,
    body: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(INSERT_COMMENT)
        .bind(user_id)
        .bind(body)
        .bind(now())
        .fetch_one(conn)
        .await
}

/// Most comments committed in one transaction.
const COMMENT_BATCH: usize = 64;

/// Comments waiting for the SQLite writer, which commits them in batches.
///
/// SQLite has one writer, and each commit writes the WAL frames of every page it
/// changed: a flood of comments, one commit each, queued on that commit (the floor and
/// the demo alike served `POST /api/comments` at the rate of one writer's commits).
/// Comments that arrive while the writer is busy are inserted together in its next
/// transaction, so one commit serves the batch. Each comment keeps its own id and its
/// own answer: when a batch fails, each of its comments is tried again alone, so a
/// comment that cannot be stored does not take the others with it.
#[derive(Debug, Clone)]
struct CommentQueue {
    waiting: tokio::sync::mpsc::Sender<PendingComment>,
}

/// A comment and where its outcome goes.
struct PendingComment {
    user_id: i64,
    body: String,
    stored: tokio::sync::oneshot::Sender<Result<i64, sqlx::Error>>,
}

impl CommentQueue {
    /// Starts the task that commits on `writer`; it ends when the last queue is dropped.
    fn start(writer: sqlx::SqlitePool) -> Self {
        // Bounded: a flood waits here (and times out into a 503), not in memory.
        let (waiting, queue) = tokio::sync::mpsc::channel(4 * COMMENT_BATCH);
        tokio::spawn(store_comments(writer, queue));
        Self { waiting }
    }

    /// Queues a comment and waits for its commit, at most [`ACQUIRE_TIMEOUT`], as a
    /// query waits for a connection.
    async fn add(&self, user_id: i64, body: &str) -> Result<i64, sqlx::Error> {
        let (stored, outcome) = tokio::sync::oneshot::channel();
        let comment = PendingComment {
            user_id,
            body: body.to_owned(),
            stored,
        };
        let queued = async {
            self.waiting
                .send(comment)
                .await
                .map_err(|_| sqlx::Error::PoolClosed)?;
            outcome.await.map_err(|_| sqlx::Error::PoolClosed)?
        };
        // Given up on, a comment still queued is skipped (its receiver is gone), so an
        // answer of 503 does not store it later behind the client's back.
        tokio::time::timeout(ACQUIRE_TIMEOUT, queued)
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
    }
}

/// The writer's loop: takes what is waiting, up to a batch, and commits it.
async fn store_comments(
    writer: sqlx::SqlitePool,
    mut queue: tokio::sync::mpsc::Receiver<PendingComment>,
) {
    let mut batch = Vec::with_capacity(COMMENT_BATCH);
    while queue.recv_many(&mut batch, COMMENT_BATCH).await > 0 {
        batch.retain(|comment| !comment.stored.is_closed());
        let stored = match batch.len() {
            0 => continue,
            // Alone: no transaction around the one statement.
            1 => None,
            _ => insert_batch(&writer, &batch).await.ok(),
        };
        match stored {
            Some(ids) => {
                for (comment, id) in batch.drain(..).zip(ids) {
                    let _ = comment.stored.send(Ok(id));
                }
            }
            None => {
                for comment in batch.drain(..) {
                    let outcome = match writer.acquire().await {
                        Ok(mut conn) => {
                            insert_comment(&mut conn, comment.user_id, &comment.body).await
                        }
                        Err(error) => Err(error),
                    };
                    let _ = comment.stored.send(outcome);
                }
            }
        }
    }
}

/// Inserts `batch` in one transaction; on any error nothing of it is stored.
async fn insert_batch(
    writer: &sqlx::SqlitePool,
    batch: &[PendingComment],
) -> Result<Vec<i64>, sqlx::Error> {
    let mut tx = writer.begin().await?;
    let mut ids = Vec::with_capacity(batch.len());
    for comment in batch {
        ids.push(insert_comment(&mut tx, comment.user_id, &comment.body).await?);
    }
    tx.commit().await?;
    Ok(ids)
}

impl Database {
    /// Opens the database: PostgreSQL when `DATABASE_URL` names one, otherwise
    /// `data_dir/portcullis.db` (folder and file created on first start). Runs the
    /// migrations of that engine; both sets are kept in step.
    pub async fn open(settings: &Settings) -> Result<Self, DbError> {
        let postgres = settings
            .database_url
            .as_deref()
            .filter(|url| url.starts_with("postgres://") || url.starts_with("postgresql://"));
        let (read, write, comments) = match postgres {
            Some(url) => {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(POSTGRES_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect(url)
                    .await?;
                sqlx::migrate!("./migrations/postgres").run(&pool).await?;
                // PostgreSQL commits on many connections side by side: no queue.
                (Pool::Postgres(pool.clone()), Pool::Postgres(pool), None)
            }
            None => {
                std::fs::create_dir_all(&settings.data_dir).map_err(|source| DbError::DataDir {
                    path: settings.data_dir.clone(),
                    source,
                })?;
                let path = settings.data_dir.join("portcullis.db");
                let write = sqlite_pool(&path, false).await?;
                sqlx::migrate!("./migrations/sqlite").run(&write).await?;
                // Opened after the migrations: the file and its tables exist.
                let read = sqlite_pool(&path, true).await?;
                let comments = CommentQueue::start(write.clone());
                (Pool::Sqlite(read), Pool::Sqlite(write), Some(comments))
            }
        };
        Ok(Self {
            read,
            write,
            comments,
            profiles: Arc::new(quick_cache::sync::Cache::new(CACHED_PROFILES)),
        })
    }

    /// The `limit` newest comments, newest first.
    pub async fn newest_comments(&self, limit: i64) -> Result<Vec<Comment>, sqlx::Error> {
        on_pool!(&self.read, |pool| {
            sqlx::query_as::<_, Comment>(
                "SELECT c.id, u.username, c.body, c.created_at \
                 FROM comments c JOIN users u ON u.id = c.user_id \
                 ORDER BY c.created_at DESC, c.id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }

    /// The id and password hash of `username`, if registered, whatever its case: a
    /// name is unique without regard to case (the `users_username_lower` index).
    pub async fn credentials(&self, username: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
        on_pool!(&self.read, |pool| {
            sqlx::query_as("SELECT id, password_hash FROM users WHERE lower(username) = lower($1)")
                .bind(username)
                .fetch_optional(pool)
                .await
        })
    }

    /// The username of user `id`.
    pub async fn username(&self, id: i64) -> Result<Option<String>, sqlx::Error> {
        Ok(self.api_user(id).await?.map(|profile| profile.username))
    }

    /// Registers a user; `Ok(None)` when the name is taken, in any case.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        on_pool!(&self.write, |pool| {
            sqlx::query_scalar(
                "INSERT INTO users (username, password_hash, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING RETURNING id",
            )
            .bind(username)
            .bind(password_hash)
            .bind(now())
            .fetch_optional(pool)
            .await
        })
    }

    /// Replaces a user's password hash (after an upgrade to the current algorithm).
    pub async fn set_password_hash(&self, id: i64, password_hash: &str) -> Result<(), sqlx::Error> {
        on_pool!(&self.write, |pool| {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Stores a comment; its id once it is committed.
    pub async fn add_comment(&self, user_id: i64, body: &str) -> Result<i64, sqlx::Error> {
        if let Some(queue) = &self.comments {
            return queue.add(user_id, body).await;
        }
        on_pool!(&self.write, |pool| {
            sqlx::query_scalar(INSERT_COMMENT)
                .bind(user_id)
                .bind(body)
                .bind(now())
                .fetch_one(pool)
                .await
        })
    }

    /// The public profile of user `id`: the only user type the API serialises, and
    /// it has no password field.
    ///
    /// Profiles are kept in a bounded in-memory cache: a user's id, username and
    /// creation time never change (the app has no renaming and no account deletion),
    /// so a cached profile cannot go stale, on this instance or beside others sharing
    /// the database. Only found users are cached; an unknown id asks the database
    /// every time. Nothing here decides access: tokens are checked, revocations
    /// included, before a profile is looked up.
    pub async fn api_user(&self, id: i64) -> Result<Option<ApiUser>, sqlx::Error> {
        if let Some(profile) = self.profiles.get(&id) {
            return Ok(Some(profile));
        }
        // Boxed: sqlx's query future is large, and inline it would make every call of
        // this function that large, the cached ones too, copied whole into the box
        // axum keeps each handler's future in (callgrind: bench/instructions.sh).
        let found: Option<ApiUser> = Box::pin(async {
            on_pool!(&self.read, |pool| {
                sqlx::query_as("SELECT id, username, created_at FROM users WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await
            })
        })
        .await?;
        if let Some(profile) = &found {
            self.profiles.insert(id, profile.clone());
        }
        Ok(found)
    }

    /// One comment by id.
    pub async fn comment(&self, id: i64) -> Result<Option<Comment>, sqlx::Error> {
        on_pool!(&self.read, |pool| {
            sqlx::query_as(
                "SELECT c.id, u.username, c.body, c.created_at \
                 FROM comments c JOIN users u ON u.id = c.user_id WHERE c.id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        })
    }

    /// The files of `owner`, newest first.
    pub async fn files_of(&self, owner: i64) -> Result<Vec<StoredFile>, sqlx::Error> {
        on_pool!(&self.read, |pool| {
            sqlx::query_as(
                "SELECT id, display_name, content_type, size, storage_name, created_at \
                 FROM files WHERE owner_id = $1 ORDER BY created_at DESC, id",
            )
            .bind(owner)
            .fetch_all(pool)
            .await
        })
    }

    /// File `id` if `owner` owns it: one query, so "absent" and "not yours" are the
    /// same answer.
    pub async fn file_of(&self, id: &str, owner: i64) -> Result<Option<StoredFile>, sqlx::Error> {
        on_pool!(&self.read, |pool| {
            sqlx::query_as(
                "SELECT id, display_name, content_type, size, storage_name, created_at \
                 FROM files WHERE id = $1 AND owner_id = $2",
            )
            .bind(id)
            .bind(owner)
            .fetch_optional(pool)
            .await
        })
    }

    /// Records an upload unless it would take `owner` past `quota` bytes, and calls
    /// `publish` (which makes the stored bytes visible) inside the same transaction:
    /// no row without a file, no file without a row. `Ok(false)`: over quota.
    ///
    /// The sum and the insert must see every other upload of the same user. Under
    /// PostgreSQL's READ COMMITTED, concurrent transactions would each sum the rows
    /// committed before them and all pass; so the transaction first locks the user's
    /// row (`FOR NO KEY UPDATE`, which the foreign-key checks of other inserts do not
    /// wait for), and one user's uploads are recorded one at a time. SQLite needs no
    /// lock: the statement is a write, which takes the database's single write lock
    /// before it reads the sum.
    pub async fn add_file(
        &self,
        file: &StoredFile,
        owner: i64,
        quota: u64,
        publish: impl FnOnce() -> std::io::Result<()>,
    ) -> Result<bool, AddFileError> {
        on_pool!(&self.write, |pool| {
            let mut tx = pool.begin().await?;
            if is_postgres(&tx) {
                sqlx::query("SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE")
                    .bind(owner)
                    .fetch_optional(&mut *tx)
                    .await?;
            }
            let inserted = sqlx::query(
                "INSERT INTO files (id, owner_id, display_name, content_type, size, storage_name, created_at) \
                 SELECT $1, $2, $3, $4, $5, $6, $7 \
                 WHERE (SELECT COALESCE(SUM(size), 0) FROM files WHERE owner_id = $8) + $9 <= $10",
            )
            .bind(&file.id)
            .bind(owner)
            .bind(&file.display_name)
            .bind(&file.content_type)
            .bind(file.size)
            .bind(&file.storage_name)
            .bind(now())
            .bind(owner)
            .bind(file.size)
            .bind(i64::try_from(quota).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            publish().map_err(AddFileError::Storage)?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// The pool for reads (on SQLite, connections that cannot write).
    pub(crate) fn reader(&self) -> &Pool {
        &self.read
    }

    /// The pool for writes (on SQLite, its one connection).
    pub(crate) fn writer(&self) -> &Pool {
        &self.write
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn open_in(dir: &std::path::Path) -> Database {
        let dir = dir.display().to_string();
        let settings = Settings::from_lookup(|name| match name {
            "PORTCULLIS_DATA_DIR" => Some(dir.clone()),
            _ => None,
        })
        .unwrap();
        Database::open(&settings).await.unwrap()
    }

    #[tokio::test]
    async fn sqlite_reads_cannot_write_and_writes_go_through_one_connection() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_in(dir.path()).await;
        let id = db.create_user("reader", "x").await.unwrap().unwrap();
        // Read at once on the other pool: the commit is visible.
        assert_eq!(db.api_user(id).await.unwrap().unwrap().username, "reader");
        let (Pool::Sqlite(reader), Pool::Sqlite(writer)) = (db.reader(), db.writer()) else {
            panic!("a database without DATABASE_URL is SQLite: {db:?}");
        };
        let refused = sqlx::query("DELETE FROM users")
            .execute(reader)
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("readonly") || refused.to_string().contains("query_only"),
            "{refused}"
        );
        assert_eq!(writer.options().get_max_connections(), 1);
        assert!((2..=8).contains(&reader.options().get_max_connections()));
        for pool in [reader, writer] {
            let (journal,): (String,) = sqlx::query_as("PRAGMA journal_mode")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(journal, "wal");
            // `synchronous` 1 is NORMAL; a negative `cache_size` is in KiB.
            for (pragma, expected) in [
                ("synchronous", 1),
                ("foreign_keys", 1),
                ("cache_size", -i64::from(SQLITE_CACHE_KIB)),
            ] {
                let value: i64 = sqlx::query_scalar(&format!("PRAGMA {pragma}"))
                    .fetch_one(pool)
                    .await
                    .unwrap();
                assert_eq!(value, expected, "PRAGMA {pragma}");
            }
        }
        // The writer can write: a user refused by the reader is deleted through it.
        sqlx::query("DELETE FROM users")
            .execute(writer)
            .await
            .unwrap();
        assert!(db.credentials("reader").await.unwrap().is_none());
    }

    /// Two hundred concurrent comments through the one writer: all stored, none
    /// refused for a busy database.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_queue_for_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_in(dir.path()).await;
        let user = db.create_user("writer", "x").await.unwrap().unwrap();
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move { db.add_comment(user, &format!("comment {i}")).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(db.newest_comments(500).await.unwrap().len(), 200);
    }

    /// Comments queued together are committed together: each answer carries the id
    /// of its own comment, not of another in the same batch.
    #[tokio::test]
    async fn each_comment_of_a_batch_gets_its_own_id() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_in(dir.path()).await;
        let user = db.create_user("batch", "x").await.unwrap().unwrap();
        // One thread: every task queues its comment before the writer runs, so they
        // share a batch.
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let db = db.clone();
                tokio::spawn(async move {
                    let body = format!("comment {i}");
                    (db.add_comment(user, &body).await.unwrap(), body)
                })
            })
            .collect();
        let mut ids = std::collections::HashSet::new();
        for task in tasks {
            let (id, body) = task.await.unwrap();
            assert!(ids.insert(id), "id {id} answered twice");
            assert_eq!(db.comment(id).await.unwrap().unwrap().body, body);
        }
        assert_eq!(db.newest_comments(500).await.unwrap().len(), 50);
    }

    /// A comment the database refuses (its author does not exist: a foreign key) in
    /// the middle of a batch fails alone; the rest of the batch is stored.
    #[tokio::test]
    async fn a_refused_comment_does_not_take_its_batch_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_in(dir.path()).await;
        let user = db.create_user("batch", "x").await.unwrap().unwrap();
        let tasks: Vec<_> = (0..21)
            .map(|i| {
                let db = db.clone();
                let author = if i == 10 { user + 1000 } else { user };
                tokio::spawn(async move { db.add_comment(author, &format!("comment {i}")).await })
            })
            .collect();
        let mut refused = 0;
        for (i, task) in tasks.into_iter().enumerate() {
            match task.await.unwrap() {
                Ok(id) => {
                    let stored = db.comment(id).await.unwrap().unwrap();
                    assert_eq!(stored.body, format!("comment {i}"));
                }
                Err(sqlx::Error::Database(error)) => {
                    assert_eq!(i, 10);
                    assert!(error.is_foreign_key_violation(), "{error}");
                    refused += 1;
                }
                Err(error) => panic!("comment {i}: {error}"),
            }
        }
        assert_eq!(refused, 1);
        assert_eq!(db.newest_comments(500).await.unwrap().len(), 20);
    }

    /// A comment whose request gave up (its answer has nowhere to go: the request
    /// timed out into a 503, or was dropped) is not stored behind the client's back.
    #[tokio::test]
    async fn a_comment_given_up_before_its_turn_is_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_in(dir.path()).await;
        let user = db.create_user("batch", "x").await.unwrap().unwrap();
        let queue = db.comments.clone().expect("SQLite queues comments");
        let (stored, outcome) = tokio::sync::oneshot::channel();
        drop(outcome);
        queue
            .waiting
            .send(PendingComment {
                user_id: user,
                body: "abandoned".to_owned(),
                stored,
            })
            .await
            .unwrap();
        // Queued after it, so answered after its batch was handled.
        let kept = db.add_comment(user, "kept").await.unwrap();
        let all = db.newest_comments(10).await.unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(all[0].id, kept);
    }
}
