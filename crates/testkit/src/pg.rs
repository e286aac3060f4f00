//! Scratch PostgreSQL for tests: a uniquely named database per test on the shared server
//! ([`TestDb`], dropped afterwards even when the test fails), and a private server of the test's
//! own ([`PrivatePg`]) for scenarios that stop production or exhaust its connections, or that
//! need TLS (`PrivatePg::start_tls` with a certificate from a [`tls::TestCa`]).
//!
//! The admin URL of the shared server comes from `KALSHI_DATA_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`).

mod server;
pub mod tls;

pub use server::{PrivatePg, ServerTls};

use std::sync::atomic::{AtomicU64, Ordering};
use tokio_postgres::NoTls;

/// The admin connection URL for tests.
pub fn admin_url() -> String {
    std::env::var("KALSHI_DATA_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A database created for one test; dropped (with its connections) on [`TestDb::drop_db`] or,
/// as a fallback, when the value is dropped.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    pub url: String,
    admin: String,
    dropped: bool,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn with_db(url: &str, db: &str) -> String {
    // Replace the path component (the database name) of the admin URL.
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..host_end], db);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl TestDb {
    /// Creates `kd_<prefix>_<pid>_<n>_<nanos>`.
    pub async fn create(prefix: &str) -> Result<TestDb, tokio_postgres::Error> {
        let admin = admin_url();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "kd_{}_{}_{}_{}",
            prefix
                .to_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        let (client, conn) = tokio_postgres::connect(&admin, NoTls).await?;
        let task = tokio::spawn(conn);
        // Identifiers cannot be bound; the name is built above from digits and a sanitised prefix.
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        drop(client);
        let _ = task.await;
        Ok(TestDb {
            url: with_db(&admin, &name),
            name,
            admin,
            dropped: false,
        })
    }

    /// Drops the database, ending its connections.
    pub async fn drop_db(mut self) -> Result<(), tokio_postgres::Error> {
        self.dropped = true;
        drop_database(&self.admin, &self.name).await
    }

    /// Runs `sql` on the admin connection (e.g. `ALTER DATABASE … ALLOW_CONNECTIONS false`).
    pub async fn admin(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        let (client, conn) = tokio_postgres::connect(&self.admin, NoTls).await?;
        let task = tokio::spawn(conn);
        let result = client.batch_execute(sql).await;
        drop(client);
        let _ = task.await;
        result
    }

    /// Makes the database unreachable: refuses new connections and ends the open ones.
    pub async fn make_unavailable(&self) -> Result<(), tokio_postgres::Error> {
        self.admin(&format!(
            "ALTER DATABASE {0} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity
               WHERE datname = '{0}' AND pid <> pg_backend_pid();",
            self.name
        ))
        .await
    }

    /// Undoes [`TestDb::make_unavailable`].
    pub async fn make_available(&self) -> Result<(), tokio_postgres::Error> {
        self.admin(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            self.name
        ))
        .await
    }
}

async fn drop_database(admin: &str, name: &str) -> Result<(), tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(admin, NoTls).await?;
    let task = tokio::spawn(conn);
    let result = client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
    drop(client);
    let _ = task.await;
    result
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // A failed test must not leave its database behind: drop it on a helper thread with its
        // own runtime (we may be inside a runtime that is shutting down).
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(drop_database(&admin, &name));
            }
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::with_db;

    #[test]
    fn database_name_replaces_the_path() {
        assert_eq!(
            with_db("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_db("postgres://h:1/a?sslmode=disable", "x"),
            "postgres://h:1/x?sslmode=disable"
        );
        assert_eq!(with_db("postgres://h", "x"), "postgres://h/x");
    }
}
