//! The database: SQLite under the data folder, migrated at start.

use std::str::FromStr;

use portcullis::config::Settings;
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

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

/// A connection pool. Every query is parameterized.
#[derive(Debug, Clone)]
pub struct Database {
    pool: SqlitePool,
}

impl Database {
    /// Opens `data_dir/portcullis.db`, creating the folder and the file on first start,
    /// and runs the migrations.
    pub async fn open(settings: &Settings) -> Result<Self, DbError> {
        std::fs::create_dir_all(&settings.data_dir).map_err(|source| DbError::DataDir {
            path: settings.data_dir.clone(),
            source,
        })?;
        let path = settings.data_dir.join("portcullis.db");
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    /// The `limit` newest comments, newest first.
    pub async fn newest_comments(&self, limit: i64) -> Result<Vec<Comment>, sqlx::Error> {
        sqlx::query_as::<_, Comment>(
            "SELECT c.id, u.username, c.body, c.created_at \
             FROM comments c JOIN users u ON u.id = c.user_id \
             ORDER BY c.created_at DESC, c.id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// The pool, for the routes that need more.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}
