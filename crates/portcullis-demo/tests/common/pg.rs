//! Fresh PostgreSQL databases for tests.

use super::Demo;
use sqlx::Connection as _;

/// A fresh database on the test server, dropped when the guard goes.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// The database's URL, for `DATABASE_URL`.
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Option<Self> {
        let Ok(admin_url) = std::env::var("PORTCULLIS_TEST_POSTGRES") else {
            assert!(
                std::env::var_os("PORTCULLIS_REQUIRE_POSTGRES").is_none(),
                "PORTCULLIS_REQUIRE_POSTGRES is set but PORTCULLIS_TEST_POSTGRES is not"
            );
            eprintln!("SKIPPED: PORTCULLIS_TEST_POSTGRES is not set; PostgreSQL tests did not run");
            return None;
        };
        let name = format!("portcullis_test_{}", portcullis::upload::random_id());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        // The name is ours (hex), never input: identifiers cannot be bound parameters.
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let base = admin_url.rsplit_once('/').unwrap().0;
        let url = format!("{base}/{name}");
        Some(Self {
            admin_url,
            name,
            url,
        })
    }

    pub async fn connect(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url).await.unwrap()
    }

    pub async fn drop_now(self, demo: Demo) {
        drop(demo);
        let mut admin = sqlx::PgConnection::connect(&self.admin_url).await.unwrap();
        sqlx::raw_sql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .await
        .unwrap();
    }
}
