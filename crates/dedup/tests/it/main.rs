//! The integration tests of `kd-dedup`, as one test binary (one link, not three): each module is
//! what was a file of its own under `tests/`, with its test names unchanged.
//!
//! - `lifecycle`: lifecycle copies of three gatherers through the merge and both stores.
//! - `store`: the production stores on both backends (PostgreSQL, SQLite).
//! - `sync`: the deduplicator against three real gatherers: exactly-once, restarts, outages.
//! - `e2e`: the simulator, three gatherers and the deduplicator; `kill -9` of a deduplicator.
//! - `pull_format`: a real gatherer answers JSON unless the binary page is asked for.
//! - `common`: sample records of every table, and a cluster of in-process gatherers.

/// One test per backend and name: `postgres::NAME` on a scratch database, `sqlite::NAME` on a
/// temporary file, each calling `super::NAME(&store)` (defined before the modules that use it).
macro_rules! both_backends {
    ($($name:ident),*) => {
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> TestResult {
                    let (db, s) = crate::common::pg(stringify!($name)).await?;
                    super::$name(&s).await?;
                    drop(s);
                    db.drop_db().await?;
                    Ok(())
                }
            )*
        }
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> TestResult {
                    let (_dir, s) = crate::common::sqlite().await?;
                    super::$name(&s).await
                }
            )*
        }
    };
}

mod common;
mod e2e;
mod lifecycle;
mod pull_format;
mod quarantine;
mod store;
mod sync;
mod tls_pull;
