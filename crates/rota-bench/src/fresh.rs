//! A fresh store per run: a new SQLite file beside the given path, or a new
//! PostgreSQL schema; removed afterwards.

use std::path::PathBuf;

use rota::Store;
use rota::sqlx::{self, Connection};

use crate::BenchError;

/// The store a run uses, and how to remove it.
#[derive(Debug)]
pub(crate) enum FreshStore {
    Sqlite {
        url: String,
        path: PathBuf,
        /// Directories missing before the run (the store creates them),
        /// deepest first: removed afterwards if left empty.
        created: Vec<PathBuf>,
    },
    Postgres {
        server: String,
        schema: String,
        url: String,
    },
}

impl FreshStore {
    pub(crate) async fn create(database: &str) -> Result<Self, BenchError> {
        let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
        if database.starts_with("postgres://") || database.starts_with("postgresql://") {
            let schema = format!("rota_bench_{tag}");
            let sep = if database.contains('?') { '&' } else { '?' };
            let url = format!("{database}{sep}rota_schema={schema}");
            Ok(FreshStore::Postgres {
                server: database.to_owned(),
                schema,
                url,
            })
        } else if let Some(rest) = database.strip_prefix("sqlite:") {
            let given = PathBuf::from(rest.trim_start_matches("//"));
            let dir = given
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            let path = dir.join(format!("rota-bench-{tag}.db"));
            let created = dir
                .ancestors()
                .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
                .map(PathBuf::from)
                .collect();
            Ok(FreshStore::Sqlite {
                url: format!("sqlite://{}", path.display()),
                path,
                created,
            })
        } else {
            Err(BenchError::Invalid {
                field: "database",
                message: format!("{database:?} is neither sqlite://PATH nor postgres://..."),
            })
        }
    }

    /// The URL of the fresh store.
    pub(crate) fn url(&self) -> &str {
        match self {
            FreshStore::Sqlite { url, .. } | FreshStore::Postgres { url, .. } => url,
        }
    }

    pub(crate) async fn open(&self) -> Result<Store, BenchError> {
        Ok(Store::open(self.url()).await?)
    }

    /// A second file / schema for the raw baseline loop.
    pub(crate) fn baseline_target(&self) -> String {
        match self {
            FreshStore::Sqlite { path, .. } => format!("sqlite://{}.baseline", path.display()),
            FreshStore::Postgres { schema, .. } => schema.clone(),
        }
    }

    /// Where the disk probe writes: next to the SQLite file, else the
    /// system temp directory.
    pub(crate) fn probe_dir(&self) -> PathBuf {
        match self {
            FreshStore::Sqlite { path, .. } => path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), PathBuf::from),
            FreshStore::Postgres { .. } => std::env::temp_dir(),
        }
    }

    pub(crate) fn server(&self) -> Option<&str> {
        match self {
            FreshStore::Postgres { server, .. } => Some(server),
            FreshStore::Sqlite { .. } => None,
        }
    }

    /// Deletes the file(s) or drops the schema; best effort.
    pub(crate) async fn remove(&self) {
        match self {
            FreshStore::Sqlite { path, created, .. } => {
                for suffix in [
                    "",
                    "-wal",
                    "-shm",
                    ".baseline",
                    ".baseline-wal",
                    ".baseline-shm",
                ] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                // Only empty ones go: anything else put there stays.
                for dir in created {
                    let _ = std::fs::remove_dir(dir);
                }
            }
            FreshStore::Postgres { server, schema, .. } => {
                if let Ok(mut c) = sqlx::PgConnection::connect(server).await {
                    let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
                }
            }
        }
    }
}
