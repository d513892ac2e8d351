//! Runs the conformance suite against a small in-memory model of a driver.
//!
//! The model is the trait docs written as plain Rust over a `BTreeMap`; it
//! shows the suite is satisfiable and checks the cases themselves, without
//! any database. It is not a product store.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jiff::Timestamp;
use rota_core::{Job, JobEvent, JobState};
use rota_driver::*;
use rota_driver_tests::Harness;
use tokio::sync::broadcast;

#[derive(Debug, Default)]
struct Inner {
    jobs: BTreeMap<i64, (Job, Option<i64>)>,
    next_id: i64,
    paused: BTreeMap<String, Option<Timestamp>>,
    leader: Option<LeaderTerm>,
    terms: Vec<LeaderTerm>,
    nodes: BTreeMap<String, NodeRow>,
    api_keys: BTreeMap<String, ApiKeyRow>,
    migrated: bool,
}

#[derive(Debug)]
struct MemoryDriver {
    inner: Mutex<Inner>,
    wake: broadcast::Sender<Wakeup>,
}

impl MemoryDriver {
    fn new() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            wake: broadcast::channel(1024).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn notify(&self, queue: Option<String>) {
        let _ = self.wake.send(Wakeup { queue });
    }
}

fn add(ts: Timestamp, d: std::time::Duration) -> Timestamp {
    rota_core::clock::add(ts, d)
}

fn invalid(job: &Job, action: &'static str) -> DriverError {
    DriverError::InvalidState {
        id: job.id,
        state: job.state,
        action,
    }
}

fn not_found(id: i64) -> DriverError {
    DriverError::NotFound {
        entity: "job",
        id: id.to_string(),
    }
}

impl Inner {
    fn unique_holder(&self, key: &str) -> Option<&Job> {
        self.jobs
            .values()
            .map(|(j, _)| j)
            .find(|j| !j.state.is_finished() && j.unique_key.as_deref() == Some(key))
    }
}

#[async_trait]
impl Driver for MemoryDriver {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn migrate(&self) -> Result<()> {
        self.lock().migrated = true;
        Ok(())
    }

    async fn migration_status(&self) -> Result<Vec<MigrationStatus>> {
        let applied = self.lock().migrated.then(Timestamp::now);
        Ok(vec![MigrationStatus {
            version: 1,
            name: "init".into(),
            applied_at: applied,
        }])
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn store_info(&self) -> Result<StoreInfo> {
        Ok(StoreInfo {
            store: "memory".into(),
            version: "1".into(),
            settings: BTreeMap::new(),
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<Wakeup> {
        self.wake.subscribe()
    }

    async fn job_insert_many(&self, params: Vec<JobInsertParams>) -> Result<Vec<InsertedJob>> {
        let mut out = Vec::new();
        let mut queues = Vec::new();
        {
            let mut g = self.lock();
            for p in params {
                if let Some(key) = &p.unique_key
                    && let Some(existing) = g.unique_holder(key)
                {
                    out.push(InsertedJob {
                        job: existing.clone(),
                        inserted: false,
                    });
                    continue;
                }
                g.next_id += 1;
                let job = Job {
                    id: g.next_id,
                    kind: p.kind,
                    queue: p.queue,
                    state: p.state,
                    priority: p.priority,
                    args: p.args,
                    attempt: 0,
                    max_attempts: p.max_attempts,
                    run_at: p.run_at,
                    created_at: p.created_at,
                    started_at: None,
                    finished_at: None,
                    errors: Vec::new(),
                    progress: None,
                    output: None,
                    labels: p.labels,
                    attributes: p.attributes,
                    unique_key: p.unique_key,
                    timeout: p.timeout,
                    node: None,
                    lease_expires_at: None,
                    lease_token: None,
                    cancel_requested_at: None,
                    trace_context: p.trace_context,
                    exit_code: None,
                    execution_id: None,
                    schedule_id: None,
                    revision: 0,
                };
                if job.state == JobState::Available {
                    queues.push(job.queue.clone());
                }
                g.jobs.insert(job.id, (job.clone(), None));
                out.push(InsertedJob {
                    job,
                    inserted: true,
                });
            }
        }
        queues.dedup();
        for q in queues {
            self.notify(Some(q));
        }
        Ok(out)
    }

    async fn job_get(&self, id: i64) -> Result<Option<Job>> {
        Ok(self.lock().jobs.get(&id).map(|(j, _)| j.clone()))
    }

    async fn job_list(&self, p: &JobListParams) -> Result<Vec<Job>> {
        let g = self.lock();
        Ok(g.jobs
            .values()
            .rev()
            .map(|(j, _)| j)
            .filter(|j| p.states.is_empty() || p.states.contains(&j.state))
            .filter(|j| p.queue.as_ref().is_none_or(|q| &j.queue == q))
            .filter(|j| p.kind.as_ref().is_none_or(|k| &j.kind == k))
            .filter(|j| {
                p.attributes
                    .iter()
                    .all(|(k, v)| j.attributes.get(k) == Some(v))
            })
            .filter(|j| p.ids.as_ref().is_none_or(|ids| ids.contains(&j.id)))
            .filter(|j| p.before_id.is_none_or(|b| j.id < b))
            .take(p.limit.min(10_000) as usize)
            .cloned()
            .collect())
    }

    async fn job_count(&self) -> Result<Vec<JobCount>> {
        let mut m: BTreeMap<(String, JobState), i64> = BTreeMap::new();
        for (j, _) in self.lock().jobs.values() {
            *m.entry((j.queue.clone(), j.state)).or_default() += 1;
        }
        Ok(m.into_iter()
            .map(|((queue, state), count)| JobCount {
                queue,
                state,
                count,
            })
            .collect())
    }

    async fn job_claim(&self, p: &JobClaimParams) -> Result<Vec<Job>> {
        let mut g = self.lock();
        if g.paused.get(&p.queue).is_some_and(Option::is_some) {
            return Ok(Vec::new());
        }
        let mut candidates: Vec<(i16, Timestamp, i64)> = g
            .jobs
            .values()
            .map(|(j, _)| j)
            .filter(|j| {
                j.queue == p.queue && j.state == JobState::Available && j.attempt < j.max_attempts
            })
            .filter(|j| {
                j.labels
                    .iter()
                    .all(|(k, v)| p.node_labels.get(k) == Some(v))
            })
            .map(|j| (j.priority, j.run_at, j.id))
            .collect();
        candidates.sort();
        let mut out = Vec::new();
        for (_, _, id) in candidates.into_iter().take(p.max as usize) {
            if let Some((j, token)) = g.jobs.get_mut(&id) {
                j.state = JobState::Running;
                j.attempt += 1;
                j.started_at = Some(p.now);
                j.node = Some(p.node_id.clone());
                j.lease_expires_at = Some(p.lease_expires_at);
                j.lease_token = Some(p.lease_token);
                *token = Some(p.lease_token);
                out.push(j.clone());
            }
        }
        Ok(out)
    }

    async fn job_finish_many(&self, params: Vec<JobFinishParams>) -> Result<Vec<FinishResult>> {
        let mut g = self.lock();
        let mut out = Vec::new();
        let mut wake = false;
        for p in params {
            let applied = match g.jobs.get_mut(&p.id) {
                Some((j, token))
                    if j.state == JobState::Running
                        && *token == Some(p.lease_token)
                        && p.lease_expired_before
                            .is_none_or(|b| j.lease_expires_at.is_some_and(|e| e < b)) =>
                {
                    j.state = p.state;
                    j.attempt = p.attempt;
                    if let Some(r) = p.run_at {
                        j.run_at = r;
                    }
                    if p.finished_at.is_some() {
                        j.finished_at = p.finished_at;
                    }
                    if let Some(e) = p.error {
                        j.errors.push(e);
                    }
                    if p.output.is_some() {
                        j.output = p.output;
                    }
                    if p.progress.is_some() {
                        j.progress = p.progress;
                    }
                    if p.exit_code.is_some() {
                        j.exit_code = p.exit_code;
                    }
                    *token = None;
                    j.lease_token = None;
                    wake |= j.state == JobState::Available;
                    true
                }
                _ => false,
            };
            out.push(FinishResult { id: p.id, applied });
        }
        drop(g);
        if wake {
            self.notify(None);
        }
        Ok(out)
    }

    async fn job_heartbeat_many(&self, p: &JobHeartbeatParams) -> Result<Vec<HeartbeatResult>> {
        let mut g = self.lock();
        let mut out = Vec::new();
        for (id, lease_token) in &p.jobs {
            let r = match g.jobs.get_mut(id) {
                Some((j, token))
                    if j.state == JobState::Running && *token == Some(*lease_token) =>
                {
                    j.lease_expires_at = Some(p.lease_expires_at);
                    HeartbeatResult {
                        id: *id,
                        held: true,
                        cancel_requested: j.cancel_requested_at.is_some(),
                    }
                }
                _ => HeartbeatResult {
                    id: *id,
                    held: false,
                    cancel_requested: false,
                },
            };
            out.push(r);
        }
        Ok(out)
    }

    async fn job_checkin(&self, p: &JobCheckinParams) -> Result<bool> {
        let mut g = self.lock();
        match g.jobs.get_mut(&p.id) {
            Some((j, token)) if j.state == JobState::Running && *token == Some(p.lease_token) => {
                if p.progress.is_some() {
                    j.progress = p.progress.clone();
                }
                if p.output.is_some() {
                    j.output = p.output.clone();
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn job_cancel(&self, p: &JobCancelParams) -> Result<Job> {
        let mut g = self.lock();
        let (j, _) = g.jobs.get_mut(&p.id).ok_or_else(|| not_found(p.id))?;
        let step = j
            .state
            .apply(JobEvent::Cancel, j.attempt, j.max_attempts)
            .map_err(|_| invalid(j, "cancel"))?;
        if step.to == JobState::Running {
            j.cancel_requested_at.get_or_insert(p.now);
        } else {
            j.state = step.to;
            j.finished_at = Some(p.now);
        }
        Ok(j.clone())
    }

    async fn job_retry(&self, p: &JobRetryParams) -> Result<Job> {
        let mut g = self.lock();
        let (job, _) = g.jobs.get(&p.id).ok_or_else(|| not_found(p.id))?;
        let step = job
            .state
            .apply(JobEvent::Retry, job.attempt, job.max_attempts)
            .map_err(|_| invalid(job, "retry"))?;
        if job.state.is_finished()
            && let Some(key) = job.unique_key.clone()
            && let Some(holder) = g.unique_holder(&key)
        {
            return Err(DriverError::Conflict(format!(
                "unique key {key:?} is held by job {}",
                holder.id
            )));
        }
        let (j, _) = g.jobs.get_mut(&p.id).ok_or_else(|| not_found(p.id))?;
        j.state = step.to;
        j.attempt = step.attempt;
        j.run_at = p.now;
        j.finished_at = None;
        let out = j.clone();
        drop(g);
        self.notify(Some(out.queue.clone()));
        Ok(out)
    }

    async fn job_delete(&self, id: i64) -> Result<Job> {
        let mut g = self.lock();
        let (j, _) = g.jobs.get(&id).ok_or_else(|| not_found(id))?;
        if !j.state.is_finished() {
            return Err(invalid(j, "delete"));
        }
        Ok(g.jobs
            .remove(&id)
            .map(|(j, _)| j)
            .unwrap_or_else(|| unreachable!()))
    }

    async fn job_list_expired(&self, p: &JobExpiredParams) -> Result<Vec<Job>> {
        let g = self.lock();
        let mut v: Vec<Job> = g
            .jobs
            .values()
            .map(|(j, _)| j)
            .filter(|j| {
                j.state == JobState::Running && j.lease_expires_at.is_some_and(|e| e < p.now)
            })
            .cloned()
            .collect();
        v.sort_by_key(|j| (j.lease_expires_at, j.id));
        v.truncate(p.limit as usize);
        Ok(v)
    }

    async fn job_promote_due(&self, p: &JobPromoteParams) -> Result<Vec<QueueCount>> {
        let mut g = self.lock();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut left = p.limit;
        for (j, _) in g.jobs.values_mut() {
            if left == 0 {
                break;
            }
            if matches!(j.state, JobState::Scheduled | JobState::Retrying) && j.run_at <= p.now {
                j.state = JobState::Available;
                *counts.entry(j.queue.clone()).or_default() += 1;
                left -= 1;
            }
        }
        drop(g);
        for q in counts.keys() {
            self.notify(Some(q.clone()));
        }
        Ok(counts
            .into_iter()
            .map(|(queue, count)| QueueCount { queue, count })
            .collect())
    }

    async fn job_prune(&self, p: &JobPruneParams) -> Result<u64> {
        let mut g = self.lock();
        let mut finished: Vec<(Option<Timestamp>, i64)> = g
            .jobs
            .values()
            .map(|(j, _)| j)
            .filter(|j| j.state.is_finished())
            .map(|j| (j.finished_at, j.id))
            .collect();
        finished.sort();
        let mut doomed: Vec<i64> = Vec::new();
        if let Some(before) = p.finished_before {
            doomed.extend(
                finished
                    .iter()
                    .filter(|(f, _)| f.is_some_and(|f| f < before))
                    .map(|(_, id)| *id),
            );
        }
        if let Some(keep) = p.keep_last {
            let excess = finished.len().saturating_sub(keep as usize);
            doomed.extend(finished.iter().take(excess).map(|(_, id)| *id));
        }
        doomed.sort_unstable();
        doomed.dedup();
        doomed.truncate(p.limit as usize);
        for id in &doomed {
            g.jobs.remove(id);
        }
        Ok(doomed.len() as u64)
    }

    async fn queue_pause(&self, p: &QueuePauseParams) -> Result<()> {
        let mut g = self.lock();
        let entry = g.paused.entry(p.name.clone()).or_default();
        entry.get_or_insert(p.now);
        Ok(())
    }

    async fn queue_resume(&self, p: &QueuePauseParams) -> Result<()> {
        let mut g = self.lock();
        if let Some(entry) = g.paused.get_mut(&p.name) {
            *entry = None;
        }
        drop(g);
        self.notify(Some(p.name.clone()));
        Ok(())
    }

    async fn queue_list(&self) -> Result<Vec<QueueRow>> {
        let g = self.lock();
        let mut rows: BTreeMap<String, QueueRow> = BTreeMap::new();
        for (name, paused_at) in &g.paused {
            rows.insert(
                name.clone(),
                QueueRow {
                    name: name.clone(),
                    paused_at: *paused_at,
                    counts: BTreeMap::new(),
                },
            );
        }
        for (j, _) in g.jobs.values() {
            let row = rows.entry(j.queue.clone()).or_insert_with(|| QueueRow {
                name: j.queue.clone(),
                paused_at: None,
                counts: BTreeMap::new(),
            });
            *row.counts.entry(j.state).or_default() += 1;
        }
        Ok(rows.into_values().collect())
    }

    async fn leader_attempt_elect(&self, p: &LeaderElectParams) -> Result<Option<LeaderTerm>> {
        let mut g = self.lock();
        if g.leader.as_ref().is_some_and(|l| l.expires_at > p.now) {
            return Ok(None);
        }
        let term = g.terms.last().map_or(1, |t| t.term + 1);
        let t = LeaderTerm {
            node_id: p.node_id.clone(),
            term,
            elected_at: p.now,
            expires_at: add(p.now, p.ttl),
        };
        g.leader = Some(t.clone());
        g.terms.push(t.clone());
        Ok(Some(t))
    }

    async fn leader_attempt_reelect(&self, p: &LeaderReelectParams) -> Result<Option<LeaderTerm>> {
        let mut g = self.lock();
        let Some(l) = g.leader.as_mut() else {
            return Ok(None);
        };
        if l.node_id != p.node_id || l.term != p.term {
            return Ok(None);
        }
        l.expires_at = add(p.now, p.ttl);
        let t = l.clone();
        if let Some(h) = g.terms.iter_mut().find(|h| h.term == t.term) {
            h.expires_at = t.expires_at;
        }
        Ok(Some(t))
    }

    async fn leader_resign(&self, p: &LeaderReelectParams) -> Result<()> {
        let mut g = self.lock();
        if g.leader
            .as_ref()
            .is_some_and(|l| l.node_id == p.node_id && l.term == p.term)
        {
            g.leader = None;
            if let Some(h) = g.terms.iter_mut().find(|h| h.term == p.term) {
                h.expires_at = p.now;
            }
        }
        Ok(())
    }

    async fn leader_get(&self, now: Timestamp) -> Result<Option<LeaderTerm>> {
        Ok(self.lock().leader.clone().filter(|l| l.expires_at > now))
    }

    async fn leader_terms(&self) -> Result<Vec<LeaderTerm>> {
        Ok(self.lock().terms.clone())
    }

    async fn node_upsert(&self, p: &NodeUpsertParams) -> Result<NodeRow> {
        let mut g = self.lock();
        let row = g.nodes.entry(p.id.clone()).or_insert_with(|| NodeRow {
            id: p.id.clone(),
            host: p.host.clone(),
            labels: BTreeMap::new(),
            queues: BTreeMap::new(),
            running: 0,
            started_at: p.started_at,
            heartbeat_at: p.now,
            draining_at: None,
        });
        row.host = p.host.clone();
        row.labels = p.labels.clone();
        row.queues = p.queues.clone();
        row.running = p.running;
        row.heartbeat_at = p.now;
        Ok(row.clone())
    }

    async fn node_list(&self) -> Result<Vec<NodeRow>> {
        Ok(self.lock().nodes.values().cloned().collect())
    }

    async fn node_drain(&self, p: &NodeDrainParams) -> Result<NodeRow> {
        let mut g = self.lock();
        let row = g
            .nodes
            .get_mut(&p.id)
            .ok_or_else(|| DriverError::NotFound {
                entity: "node",
                id: p.id.clone(),
            })?;
        row.draining_at.get_or_insert(p.now);
        Ok(row.clone())
    }

    async fn node_delete(&self, id: &str) -> Result<()> {
        self.lock().nodes.remove(id);
        Ok(())
    }

    async fn node_prune(&self, p: &NodePruneParams) -> Result<u64> {
        let mut g = self.lock();
        let before = g.nodes.len();
        g.nodes.retain(|_, n| n.heartbeat_at >= p.heartbeat_before);
        Ok((before - g.nodes.len()) as u64)
    }

    async fn api_key_insert(&self, p: &ApiKeyInsertParams) -> Result<ApiKeyRow> {
        let mut g = self.lock();
        if g.api_keys.contains_key(&p.id) {
            return Err(DriverError::Conflict(format!(
                "API key {} already exists",
                p.id
            )));
        }
        let row = ApiKeyRow {
            id: p.id.clone(),
            name: p.name.clone(),
            scope: p.scope,
            secret_hash: p.secret_hash.clone(),
            created_at: p.now,
            revoked_at: None,
        };
        g.api_keys.insert(p.id.clone(), row.clone());
        Ok(row)
    }

    async fn api_key_get(&self, id: &str) -> Result<Option<ApiKeyRow>> {
        Ok(self.lock().api_keys.get(id).cloned())
    }

    async fn api_key_list(&self) -> Result<Vec<ApiKeyRow>> {
        let mut keys: Vec<ApiKeyRow> = self.lock().api_keys.values().cloned().collect();
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys)
    }

    async fn api_key_revoke(&self, id: &str, now: Timestamp) -> Result<ApiKeyRow> {
        let mut g = self.lock();
        let row = g
            .api_keys
            .get_mut(id)
            .ok_or_else(|| DriverError::NotFound {
                entity: "api_key",
                id: id.to_owned(),
            })?;
        row.revoked_at.get_or_insert(now);
        Ok(row.clone())
    }
}

async fn memory() -> Option<Harness> {
    // Another "process" on an in-memory store can only be the same object.
    let driver: Arc<dyn Driver> = Arc::new(MemoryDriver::new());
    Some(Harness::new(Arc::clone(&driver)).with_peer(driver))
}

rota_driver_tests::conformance_suite!(memory);
