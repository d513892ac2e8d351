//! Statement parameters built once and bound on either connection type:
//! sqlx (reads, users' own transactions, the writer's sqlx operations) or
//! the writer's native `rusqlite` connection. The hot statements build
//! their parameter lists here, so both paths bind exactly the same values.

use rusqlite::types::{ToSqlOutput, ValueRef};
use sqlx::Sqlite;
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;

/// One statement parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    /// An INTEGER, or NULL.
    Int(Option<i64>),
    /// A TEXT, or NULL.
    Text(Option<String>),
}

impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Param::Int(Some(v))
    }
}

impl From<Option<i64>> for Param {
    fn from(v: Option<i64>) -> Self {
        Param::Int(v)
    }
}

impl From<String> for Param {
    fn from(v: String) -> Self {
        Param::Text(Some(v))
    }
}

impl From<&str> for Param {
    fn from(v: &str) -> Self {
        Param::Text(Some(v.to_owned()))
    }
}

impl From<Option<String>> for Param {
    fn from(v: Option<String>) -> Self {
        Param::Text(v)
    }
}

impl From<Option<&str>> for Param {
    fn from(v: Option<&str>) -> Self {
        Param::Text(v.map(str::to_owned))
    }
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Param::Int(Some(v)) => ValueRef::Integer(*v),
            Param::Text(Some(v)) => ValueRef::Text(v.as_bytes()),
            Param::Int(None) | Param::Text(None) => ValueRef::Null,
        }))
    }
}

/// Binds `params` in order onto a sqlx query.
pub(crate) fn bind_all<'q>(
    mut q: Query<'q, Sqlite, SqliteArguments>,
    params: Vec<Param>,
) -> Query<'q, Sqlite, SqliteArguments> {
    for p in params {
        q = match p {
            Param::Int(v) => q.bind(v),
            Param::Text(v) => q.bind(v),
        };
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_bind_the_same_values_on_rusqlite() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let params = [
            Param::from(7),
            Param::from("x"),
            Param::Int(None),
            Param::Text(None),
        ];
        let row: (i64, String, Option<i64>, Option<String>) = conn
            .query_row(
                "SELECT ?, ?, ?, ?",
                rusqlite::params_from_iter(params.iter()),
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(row, (7, "x".to_owned(), None, None));
    }
}
