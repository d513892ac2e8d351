//! The schema option: isolation, validation, concurrent migration.

use rota_driver::Driver;
use rota_postgres::{MIGRATIONS, PgDriver, PgOptions};

use crate::common::{drop_schema, job, random_schema, url, with_default_driver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_isolate_tables() {
    with_default_driver(|a, url| async move {
        let other = random_schema();
        let b = PgDriver::connect(&url, PgOptions::with_schema(other.clone()))
            .await
            .unwrap();
        a.job_insert_many(vec![job("iso")]).await.unwrap();
        assert_eq!(a.job_count().await.unwrap().len(), 1);
        assert!(
            b.job_count().await.unwrap().is_empty(),
            "schema B sees A's jobs"
        );

        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = $1 ORDER BY 1",
        )
        .bind(a.schema().unwrap())
        .fetch_all(a.pool())
        .await
        .unwrap();
        assert_eq!(
            tables,
            [
                "rota_api_keys",
                "rota_jobs",
                "rota_leader",
                "rota_leader_terms",
                "rota_migrations",
                "rota_nodes",
                "rota_queues"
            ]
        );
        let status = b.migration_status().await.unwrap();
        assert_eq!(status.len(), MIGRATIONS.len());
        assert!(status.iter().all(|m| m.applied_at.is_some()));
        assert_ne!(a.channel(), b.channel());
        drop(b);
        drop_schema(&url, &other).await;
    })
    .await;
}

#[tokio::test]
async fn bad_schema_names_are_refused() {
    for bad in ["", "a-b", "x\"; DROP TABLE t; --", "1abc", "white space"] {
        let err = PgDriver::connect(
            "postgres://postgres:postgres@127.0.0.1:1/postgres",
            PgOptions::with_schema(bad),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("invalid schema name"),
            "{bad:?}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrations_apply_once() {
    let Some(url) = url() else { return };
    let schema = random_schema();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (url, schema) = (url.clone(), schema.clone());
        tasks.push(tokio::spawn(async move {
            PgDriver::connect(&url, PgOptions::with_schema(schema)).await
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let ok = results.iter().all(Result::is_ok);
    if ok {
        let d = results.remove(0).unwrap();
        let applied: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM \"{schema}\".rota_migrations"
        )))
        .fetch_one(d.pool())
        .await
        .unwrap();
        assert_eq!(applied, MIGRATIONS.len() as i64);
        d.migrate().await.unwrap();
    }
    drop(results);
    drop_schema(&url, &schema).await;
    assert!(ok, "a concurrent migration failed");
}
