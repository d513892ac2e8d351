//! A driver wrapper that can simulate an unreachable store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rota::async_trait;
use rota_driver::*;
use tokio::sync::broadcast;

/// Delegates to `inner`; while `down`, every call fails as unavailable.
#[derive(Debug)]
pub(crate) struct Flaky {
    pub(crate) inner: Arc<dyn Driver>,
    pub(crate) down: AtomicBool,
}

impl Flaky {
    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(DriverError::Unavailable(
                "connection refused (simulated)".into(),
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Driver for Flaky {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn subscribe(&self) -> broadcast::Receiver<Wakeup> {
        self.inner.subscribe()
    }

    async fn migrate(&self) -> Result<()> {
        self.check()?;
        self.inner.migrate().await
    }

    async fn migration_status(&self) -> Result<Vec<MigrationStatus>> {
        self.check()?;
        self.inner.migration_status().await
    }

    async fn ping(&self) -> Result<()> {
        self.check()?;
        self.inner.ping().await
    }

    async fn store_info(&self) -> Result<StoreInfo> {
        self.check()?;
        self.inner.store_info().await
    }

    async fn job_insert_many(&self, params: Vec<JobInsertParams>) -> Result<Vec<InsertedJob>> {
        self.check()?;
        self.inner.job_insert_many(params).await
    }

    async fn job_get(&self, id: i64) -> Result<Option<rota::Job>> {
        self.check()?;
        self.inner.job_get(id).await
    }

    async fn job_list(&self, params: &JobListParams) -> Result<Vec<rota::Job>> {
        self.check()?;
        self.inner.job_list(params).await
    }

    async fn job_count(&self) -> Result<Vec<JobCount>> {
        self.check()?;
        self.inner.job_count().await
    }

    async fn job_claim(&self, params: &JobClaimParams) -> Result<Vec<rota::Job>> {
        self.check()?;
        self.inner.job_claim(params).await
    }

    async fn job_finish_many(&self, params: Vec<JobFinishParams>) -> Result<Vec<FinishResult>> {
        self.check()?;
        self.inner.job_finish_many(params).await
    }

    async fn job_heartbeat_many(
        &self,
        params: &JobHeartbeatParams,
    ) -> Result<Vec<HeartbeatResult>> {
        self.check()?;
        self.inner.job_heartbeat_many(params).await
    }

    async fn job_checkin(&self, params: &JobCheckinParams) -> Result<bool> {
        self.check()?;
        self.inner.job_checkin(params).await
    }

    async fn job_cancel(&self, params: &JobCancelParams) -> Result<rota::Job> {
        self.check()?;
        self.inner.job_cancel(params).await
    }

    async fn job_retry(&self, params: &JobRetryParams) -> Result<rota::Job> {
        self.check()?;
        self.inner.job_retry(params).await
    }

    async fn job_delete(&self, id: i64) -> Result<rota::Job> {
        self.check()?;
        self.inner.job_delete(id).await
    }

    async fn job_list_expired(&self, params: &JobExpiredParams) -> Result<Vec<rota::Job>> {
        self.check()?;
        self.inner.job_list_expired(params).await
    }

    async fn job_promote_due(&self, params: &JobPromoteParams) -> Result<Vec<QueueCount>> {
        self.check()?;
        self.inner.job_promote_due(params).await
    }

    async fn job_prune(&self, params: &JobPruneParams) -> Result<u64> {
        self.check()?;
        self.inner.job_prune(params).await
    }

    async fn queue_pause(&self, params: &QueuePauseParams) -> Result<()> {
        self.check()?;
        self.inner.queue_pause(params).await
    }

    async fn queue_resume(&self, params: &QueuePauseParams) -> Result<()> {
        self.check()?;
        self.inner.queue_resume(params).await
    }

    async fn queue_list(&self) -> Result<Vec<QueueRow>> {
        self.check()?;
        self.inner.queue_list().await
    }

    async fn leader_attempt_elect(&self, params: &LeaderElectParams) -> Result<Option<LeaderTerm>> {
        self.check()?;
        self.inner.leader_attempt_elect(params).await
    }

    async fn leader_attempt_reelect(
        &self,
        params: &LeaderReelectParams,
    ) -> Result<Option<LeaderTerm>> {
        self.check()?;
        self.inner.leader_attempt_reelect(params).await
    }

    async fn leader_resign(&self, params: &LeaderReelectParams) -> Result<()> {
        self.check()?;
        self.inner.leader_resign(params).await
    }

    async fn leader_get(&self, now: jiff::Timestamp) -> Result<Option<LeaderTerm>> {
        self.check()?;
        self.inner.leader_get(now).await
    }

    async fn leader_terms(&self) -> Result<Vec<LeaderTerm>> {
        self.check()?;
        self.inner.leader_terms().await
    }

    async fn node_upsert(&self, params: &NodeUpsertParams) -> Result<NodeRow> {
        self.check()?;
        self.inner.node_upsert(params).await
    }

    async fn node_list(&self) -> Result<Vec<NodeRow>> {
        self.check()?;
        self.inner.node_list().await
    }

    async fn node_drain(&self, params: &NodeDrainParams) -> Result<NodeRow> {
        self.check()?;
        self.inner.node_drain(params).await
    }

    async fn node_delete(&self, id: &str) -> Result<()> {
        self.check()?;
        self.inner.node_delete(id).await
    }

    async fn node_prune(&self, params: &NodePruneParams) -> Result<u64> {
        self.check()?;
        self.inner.node_prune(params).await
    }

    async fn api_key_insert(&self, params: &ApiKeyInsertParams) -> Result<ApiKeyRow> {
        self.check()?;
        self.inner.api_key_insert(params).await
    }

    async fn api_key_get(&self, id: &str) -> Result<Option<ApiKeyRow>> {
        self.check()?;
        self.inner.api_key_get(id).await
    }

    async fn api_key_list(&self) -> Result<Vec<ApiKeyRow>> {
        self.check()?;
        self.inner.api_key_list().await
    }

    async fn api_key_revoke(&self, id: &str, now: jiff::Timestamp) -> Result<ApiKeyRow> {
        self.check()?;
        self.inner.api_key_revoke(id, now).await
    }

    async fn db_now(&self) -> Result<jiff::Timestamp> {
        self.check()?;
        self.inner.db_now().await
    }

    async fn execution_insert(
        &self,
        params: ExecutionInsertParams,
    ) -> Result<(ExecutionRow, Vec<InsertedJob>)> {
        self.check()?;
        self.inner.execution_insert(params).await
    }

    async fn execution_get(&self, id: i64) -> Result<Option<ExecutionRow>> {
        self.check()?;
        self.inner.execution_get(id).await
    }

    async fn execution_list(&self, params: &ExecutionListParams) -> Result<Vec<ExecutionRow>> {
        self.check()?;
        self.inner.execution_list(params).await
    }

    async fn execution_add_jobs(&self, params: ExecutionAddJobsParams) -> Result<Vec<InsertedJob>> {
        self.check()?;
        self.inner.execution_add_jobs(params).await
    }

    async fn execution_mark(&self, params: &ExecutionMarkParams) -> Result<ExecutionRow> {
        self.check()?;
        self.inner.execution_mark(params).await
    }

    async fn execution_stop(
        &self,
        params: &ExecutionStopParams,
    ) -> Result<(ExecutionRow, Vec<i64>)> {
        self.check()?;
        self.inner.execution_stop(params).await
    }

    async fn execution_prune(&self, params: &ExecutionPruneParams) -> Result<u64> {
        self.check()?;
        self.inner.execution_prune(params).await
    }

    async fn execution_repair(&self, limit: u32) -> Result<Vec<ExecutionRepair>> {
        self.check()?;
        self.inner.execution_repair(limit).await
    }

    async fn schedule_insert(&self, params: &ScheduleInsertParams) -> Result<ScheduleRow> {
        self.check()?;
        self.inner.schedule_insert(params).await
    }

    async fn schedule_get(&self, id: i64) -> Result<Option<ScheduleRow>> {
        self.check()?;
        self.inner.schedule_get(id).await
    }

    async fn schedule_list(&self) -> Result<Vec<ScheduleRow>> {
        self.check()?;
        self.inner.schedule_list().await
    }

    async fn schedule_update(&self, params: &ScheduleUpdateParams) -> Result<ScheduleRow> {
        self.check()?;
        self.inner.schedule_update(params).await
    }

    async fn schedule_delete(&self, id: i64) -> Result<ScheduleRow> {
        self.check()?;
        self.inner.schedule_delete(id).await
    }

    async fn schedule_due(&self, now: jiff::Timestamp, limit: u32) -> Result<Vec<ScheduleRow>> {
        self.check()?;
        self.inner.schedule_due(now, limit).await
    }

    async fn schedule_fire(&self, params: ScheduleFireParams) -> Result<FireOutcome> {
        self.check()?;
        self.inner.schedule_fire(params).await
    }

    async fn schedule_fires(&self, params: &FireListParams) -> Result<Vec<FireRow>> {
        self.check()?;
        self.inner.schedule_fires(params).await
    }

    async fn schedule_unfinished(&self, id: i64) -> Result<i64> {
        self.check()?;
        self.inner.schedule_unfinished(id).await
    }

    async fn webhook_insert(&self, params: &WebhookInsertParams) -> Result<WebhookRow> {
        self.check()?;
        self.inner.webhook_insert(params).await
    }

    async fn webhook_list(&self) -> Result<Vec<WebhookRow>> {
        self.check()?;
        self.inner.webhook_list().await
    }

    async fn webhook_delete(&self, id: i64) -> Result<WebhookRow> {
        self.check()?;
        self.inner.webhook_delete(id).await
    }

    async fn event_list(&self, limit: u32) -> Result<Vec<EventRow>> {
        self.check()?;
        self.inner.event_list(limit).await
    }

    async fn event_progress(&self, job_id: i64, now: jiff::Timestamp) -> Result<()> {
        self.check()?;
        self.inner.event_progress(job_id, now).await
    }

    async fn delivery_create(&self, params: &DeliveryCreateParams) -> Result<u64> {
        self.check()?;
        self.inner.delivery_create(params).await
    }

    async fn delivery_due(
        &self,
        now: jiff::Timestamp,
        limit: u32,
    ) -> Result<Vec<(DeliveryRow, WebhookRow)>> {
        self.check()?;
        self.inner.delivery_due(now, limit).await
    }

    async fn delivery_record(&self, params: &DeliveryAttemptParams) -> Result<DeliveryRow> {
        self.check()?;
        self.inner.delivery_record(params).await
    }

    async fn delivery_list(&self, params: &DeliveryListParams) -> Result<Vec<DeliveryRow>> {
        self.check()?;
        self.inner.delivery_list(params).await
    }
}
