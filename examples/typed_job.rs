//! A typed job and its worker: enqueue, run, read the result back.
//!
//! Run with `cargo run -p rota-examples --example typed_job`.

use std::time::Duration;

use rota::{
    Client, Config, EnqueueOpts, JobArgs, JobContext, JobOutcome, JobResult, Store, Worker,
};
use serde::{Deserialize, Serialize};

/// Send a welcome email to a new user.
#[derive(Serialize, Deserialize)]
struct WelcomeEmail {
    user_id: i64,
    address: String,
}

impl JobArgs for WelcomeEmail {
    const KIND: &'static str = "welcome_email";
}

struct Mailer;

#[rota::async_trait]
impl Worker for Mailer {
    type Args = WelcomeEmail;

    async fn work(&self, ctx: &JobContext, args: WelcomeEmail) -> JobResult {
        ctx.log(format!(
            "sending welcome mail to {} (user {})",
            args.address, args.user_id
        ));
        ctx.checkin(serde_json::json!({"step": "sent"}))
            .await
            .map_err(rota::JobError::retry)?;
        Ok(JobOutcome::Done)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rota_examples::init_logging();
    let store = Store::open(&rota_examples::temp_db("typed")).await?;
    let client = Client::builder(store)
        .config(Config::default().queue("default", 4))
        .worker(Mailer)
        .build()?;
    client.start().await?;

    let job = client
        .enqueue(
            &WelcomeEmail {
                user_id: 42,
                address: "ada@example.com".into(),
            },
            EnqueueOpts::default().attribute("tenant", "acme"),
        )
        .await?
        .job;
    let done = client.wait(job.id, Duration::from_secs(10)).await?;
    println!(
        "job {} is {} after {} attempt(s)",
        done.id, done.state, done.attempt
    );
    println!("output: {}", done.output.unwrap_or_default().trim());
    println!("progress: {}", done.progress.unwrap_or_default());
    client.shutdown(Duration::from_secs(5)).await?;
    Ok(())
}
