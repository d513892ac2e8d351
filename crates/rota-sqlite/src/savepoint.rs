//! Several statements on a sqlx connection that commit together: in a
//! savepoint, which is a transaction of its own on a connection outside
//! one (users' connections in `job_insert_many_in` and `job_finish_in`)
//! and nests inside the caller's transaction otherwise.

use rota_driver::Result;
use sqlx::sqlite::SqliteConnection;

use crate::error::map_sqlx;

/// Opens the savepoint; [`end`] closes it.
pub(crate) async fn begin(conn: &mut SqliteConnection) -> Result<()> {
    sqlx::raw_sql("SAVEPOINT rota_statements")
        .execute(&mut *conn)
        .await
        .map_err(map_sqlx)?;
    Ok(())
}

/// Closes the savepoint [`begin`] opened, keeping what ran in it when
/// `result` is `Ok` and the release (a commit, outside a transaction)
/// succeeds; else undoing it, so that no savepoint of its own stays open,
/// and returning the first error.
pub(crate) async fn end<T>(conn: &mut SqliteConnection, result: Result<T>) -> Result<T> {
    let kept = match result {
        Ok(v) => sqlx::raw_sql("RELEASE rota_statements")
            .execute(&mut *conn)
            .await
            .map(|_| v)
            .map_err(map_sqlx),
        Err(e) => Err(e),
    };
    if kept.is_err()
        && let Err(e) = sqlx::raw_sql("ROLLBACK TO rota_statements; RELEASE rota_statements")
            .execute(&mut *conn)
            .await
    {
        tracing::debug!(error = %e, "undoing a failed savepoint");
    }
    kept
}
