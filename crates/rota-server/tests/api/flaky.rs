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
}
