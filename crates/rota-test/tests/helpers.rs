//! The helpers work against a real SQLite store and inline.

use rota::drivers::sqlite::{SqliteDriver, SqliteOptions, connect_options};
use rota::sqlx::SqlitePool;
use rota::{
    Client, Config, EnqueueOpts, JobArgs, JobContext, JobOutcome, JobResult, Store, Worker,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Invoice {
    customer: String,
}
impl JobArgs for Invoice {
    const KIND: &'static str = "invoice";
}

struct Billing;

#[rota::async_trait]
impl Worker for Billing {
    type Args = Invoice;
    async fn work(&self, ctx: &JobContext, a: Invoice) -> JobResult {
        if ctx.is_cancelled() {
            return Ok(JobOutcome::Cancel("told to stop".into()));
        }
        ctx.log(format!("billing {}", a.customer));
        ctx.checkin(serde_json::json!({"pct": 100}))
            .await
            .map_err(rota::JobError::retry)?;
        Ok(JobOutcome::Done)
    }
}

#[tokio::test]
async fn require_enqueued_in_a_transaction_and_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let client = Client::builder(Store::sqlite(
        SqliteDriver::open(&url, SqliteOptions::default())
            .await
            .unwrap(),
    ))
    .config(Config {
        maintenance: false,
        ..Config::default()
    })
    .build()
    .unwrap();
    rota_test::require_not_enqueued::<Invoice>(&client).await;
    let pool = SqlitePool::connect_with(connect_options(&url).unwrap())
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    client
        .enqueue_tx(
            &mut *tx,
            &Invoice {
                customer: "acme".into(),
            },
            EnqueueOpts::default(),
        )
        .await
        .unwrap();
    let (job, args) = rota_test::require_enqueued_tx::<Invoice, _>(&client, &mut *tx).await;
    assert_eq!(
        args,
        Invoice {
            customer: "acme".into()
        }
    );
    tx.commit().await.unwrap();
    let (after, _) = rota_test::require_enqueued::<Invoice>(&client).await;
    assert_eq!(after.id, job.id);
}

#[tokio::test]
async fn run_inline_shows_result_output_and_progress() {
    let run = rota_test::run_inline(
        &Billing,
        Invoice {
            customer: "acme".into(),
        },
    )
    .await;
    assert!(matches!(run.result, Ok(JobOutcome::Done)));
    assert_eq!(run.output, "billing acme\n");
    assert_eq!(run.progress, Some(serde_json::json!({"pct": 100})));
    let run = rota_test::run_inline_cancelled(
        &Billing,
        Invoice {
            customer: "acme".into(),
        },
    )
    .await;
    assert!(matches!(run.result, Ok(JobOutcome::Cancel(_))));
}
