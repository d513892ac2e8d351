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
                "rota_deliveries",
                "rota_events",
                "rota_executions",
                "rota_jobs",
                "rota_leader",
                "rota_leader_terms",
                "rota_migrations",
                "rota_nodes",
                "rota_queues",
                "rota_schedule_fires",
                "rota_schedules",
                "rota_webhooks"
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

/// Two Rota schemas in one database: each has its own trigger functions,
/// and each function touches only its own schema's tables, whatever the
/// caller's `search_path`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_functions_are_per_schema() {
    use rota_core::JobState;
    use rota_driver::{ExecutionInsertParams, Trigger, WebhookInsertParams};

    with_default_driver(|a, url| async move {
        let other = random_schema();
        let b = PgDriver::connect(&url, PgOptions::with_schema(other.clone()))
            .await
            .unwrap();
        let sa = a.schema().unwrap().to_owned();
        let exec = |jobs: usize| ExecutionInsertParams {
            owner_kind: "iso".into(),
            owner_id: "1".into(),
            trigger: Trigger::Manual,
            attributes: Default::default(),
            status_message: None,
            jobs: (0..jobs).map(|_| job("iso")).collect(),
            now: crate::common::now(),
        };
        let (ea, _) = a.execution_insert(exec(2)).await.unwrap();
        let (eb, _) = b.execution_insert(exec(3)).await.unwrap();
        assert_eq!(ea.id, eb.id, "same ids in both schemas");

        // Functions: one set per schema, each naming its own schema.
        let defs: Vec<(String, String)> = sqlx::query_as(
            "SELECT n.nspname::text, pg_get_functiondef(p.oid)
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE p.proname = 'rota_jobs_execution_counts' AND n.nspname IN ($1, $2)
             ORDER BY 1",
        )
        .bind(&sa)
        .bind(&other)
        .fetch_all(a.pool())
        .await
        .unwrap();
        assert_eq!(defs.len(), 2);
        for (schema, def) in &defs {
            assert!(
                def.contains(&format!("\"{schema}\".rota_executions")),
                "{def}"
            );
        }

        // Changing A's jobs (from a session whose search_path points at B)
        // changes A's execution only.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SET search_path TO \"{other}\";
             UPDATE \"{sa}\".rota_jobs SET state = 'succeeded', finished_at = now();
             RESET search_path;"
        )))
        .execute(a.pool())
        .await
        .unwrap();
        let ea = a.execution_get(ea.id).await.unwrap().unwrap();
        let eb = b.execution_get(eb.id).await.unwrap().unwrap();
        assert_eq!(ea.counts, [(JobState::Succeeded, 2)].into());
        assert_eq!(eb.counts, [(JobState::Available, 3)].into());

        // A webhook in A turns events on in A only.
        a.webhook_insert(&WebhookInsertParams {
            url: "http://127.0.0.1:9/".into(),
            events: vec![],
            kinds: vec![],
            owner_kinds: vec![],
            secret: "0123456789abcdef".into(),
            now: crate::common::now(),
        })
        .await
        .unwrap();
        a.job_insert_many(vec![job("iso")]).await.unwrap();
        b.job_insert_many(vec![job("iso")]).await.unwrap();
        assert_eq!(a.event_list(100).await.unwrap().len(), 1);
        assert!(b.event_list(100).await.unwrap().is_empty());

        // Dropping B leaves A's triggers working.
        drop(b);
        drop_schema(&url, &other).await;
        let (e2, _) = a.execution_insert(exec(1)).await.unwrap();
        assert_eq!(e2.counts, [(JobState::Available, 1)].into());
    })
    .await;
}

/// Without a schema option, the migrator qualifies trigger bodies with the
/// connection's default schema (`public`), where the tables went. Runs in a
/// throwaway database, as it uses `public`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_schema_triggers_name_public() {
    use rota_core::JobState;
    use rota_driver::{ExecutionInsertParams, Trigger, WebhookInsertParams};

    let Some(url) = url() else { return };
    let db = random_schema();
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
        .execute(&admin)
        .await
        .unwrap();
    let mut options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    options = options.database(&db);
    let outcome = tokio::spawn(async move {
        let d = PgDriver::connect_with(
            options,
            PgOptions {
                schema: None,
                ..PgOptions::default()
            },
        )
        .await
        .unwrap();
        let def: String = sqlx::query_scalar(
            "SELECT pg_get_functiondef('public.rota_jobs_execution_counts'::regproc)",
        )
        .fetch_one(d.pool())
        .await
        .unwrap();
        assert!(def.contains("\"public\".rota_executions"), "{def}");
        d.webhook_insert(&WebhookInsertParams {
            url: "http://127.0.0.1:9/".into(),
            events: vec![],
            kinds: vec![],
            owner_kinds: vec![],
            secret: "0123456789abcdef".into(),
            now: crate::common::now(),
        })
        .await
        .unwrap();
        let (e, _) = d
            .execution_insert(ExecutionInsertParams {
                owner_kind: "plain".into(),
                owner_id: "1".into(),
                trigger: Trigger::Manual,
                attributes: Default::default(),
                status_message: None,
                jobs: vec![job("plain"), job("plain")],
                now: crate::common::now(),
            })
            .await
            .unwrap();
        assert_eq!(e.counts, [(JobState::Available, 2)].into());
        assert_eq!(d.event_list(100).await.unwrap().len(), 3);
        d.pool().close().await;
    })
    .await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .unwrap();
    admin.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
