//! Transactional enqueue and completion in the caller's own transaction.

use rota_core::JobState;
use rota_driver::{Driver, JobFinishParams, JobListParams};
use rota_postgres::{job_finish_in, job_insert_many_in, job_list_in};

use crate::common::{claim_params, job, now, with_default_driver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_and_complete_with_user_data() {
    with_default_driver(|driver, _| async move {
        let schema = driver.schema().unwrap().to_owned();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE \"{schema}\".orders (id int PRIMARY KEY, shipped bool NOT NULL)"
        )))
        .execute(driver.pool())
        .await
        .unwrap();

        // Enqueue commits with the order, or not at all.
        let mut tx = driver.pool().begin().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO \"{schema}\".orders VALUES (1, false)"
        )))
        .execute(&mut *tx)
        .await
        .unwrap();
        let ins = job_insert_many_in(&mut tx, vec![job("ship")], Some(&schema))
            .await
            .unwrap();
        let seen = job_list_in(&mut tx, &JobListParams::default(), Some(&schema))
            .await
            .unwrap();
        assert_eq!(seen.len(), 1, "the transaction sees its own job");
        assert!(
            driver.job_get(ins[0].job.id).await.unwrap().is_none(),
            "invisible before commit"
        );
        tx.commit().await.unwrap();

        let j = driver
            .job_claim(&claim_params("ship", 1, 42))
            .await
            .unwrap()
            .remove(0);
        let done = |token| JobFinishParams {
            id: j.id,
            execution_id: j.execution_id,
            lease_token: token,
            lease_expired_before: None,
            state: JobState::Succeeded,
            attempt: j.attempt,
            run_at: None,
            finished_at: Some(now()),
            error: None,
            output: Some("shipped".into()),
            progress: None,
            exit_code: None,
        };

        // Completion rolled back with the handler's effect.
        let mut tx = driver.pool().begin().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE \"{schema}\".orders SET shipped = true WHERE id = 1"
        )))
        .execute(&mut *tx)
        .await
        .unwrap();
        assert!(
            job_finish_in(&mut tx, done(42), Some(&schema))
                .await
                .unwrap()
                .applied
        );
        tx.rollback().await.unwrap();
        assert_eq!(
            driver.job_get(j.id).await.unwrap().unwrap().state,
            JobState::Running
        );

        // A stale token does not apply, even inside a transaction.
        let mut tx = driver.pool().begin().await.unwrap();
        assert!(
            !job_finish_in(&mut tx, done(7), Some(&schema))
                .await
                .unwrap()
                .applied
        );
        tx.rollback().await.unwrap();

        // Committed together.
        let mut tx = driver.pool().begin().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE \"{schema}\".orders SET shipped = true WHERE id = 1"
        )))
        .execute(&mut *tx)
        .await
        .unwrap();
        assert!(
            job_finish_in(&mut tx, done(42), Some(&schema))
                .await
                .unwrap()
                .applied
        );
        tx.commit().await.unwrap();
        let stored = driver.job_get(j.id).await.unwrap().unwrap();
        assert_eq!(stored.state, JobState::Succeeded);
        assert_eq!(stored.output.as_deref(), Some("shipped"));
        let shipped: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT shipped FROM \"{schema}\".orders WHERE id = 1"
        )))
        .fetch_one(driver.pool())
        .await
        .unwrap();
        assert!(shipped);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_insert_in_leaves_the_callers_transaction_usable() {
    with_default_driver(|driver, _| async move {
        let schema = driver.schema().unwrap().to_owned();
        let mut tx = driver.pool().begin().await.unwrap();
        let mut bad = job("q");
        bad.unique_key = Some("k".into());
        bad.args = serde_json::json!({"bad": "nul\u{0}byte"}); // jsonb refuses \u0000
        assert!(
            job_insert_many_in(&mut tx, vec![bad], Some(&schema))
                .await
                .is_err()
        );
        // The savepoint was rolled back: the transaction still works.
        let ok = job_insert_many_in(&mut tx, vec![job("q")], Some(&schema))
            .await
            .unwrap();
        assert!(ok[0].inserted);
        tx.commit().await.unwrap();
        assert_eq!(driver.job_count().await.unwrap()[0].count, 1);
    })
    .await;
}
