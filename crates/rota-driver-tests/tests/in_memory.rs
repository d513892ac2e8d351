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
    /// Executions with their status revision.
    executions: BTreeMap<i64, (ExecutionRow, i64)>,
    next_execution_id: i64,
    schedules: BTreeMap<i64, ScheduleRow>,
    next_schedule_id: i64,
    /// Recorded fires by (schedule, fire_at); job outcomes are computed on read.
    fires: BTreeMap<(i64, Timestamp), FireRow>,
    webhooks: BTreeMap<i64, WebhookRow>,
    next_webhook_id: i64,
    events: BTreeMap<i64, EventRow>,
    next_event_id: i64,
    deliveries: BTreeMap<i64, DeliveryRow>,
    next_delivery_id: i64,
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

fn execution_not_found(id: i64) -> DriverError {
    DriverError::NotFound {
        entity: "execution",
        id: id.to_string(),
    }
}

fn schedule_not_found(id: i64) -> DriverError {
    DriverError::NotFound {
        entity: "schedule",
        id: id.to_string(),
    }
}

fn webhook_not_found(id: i64) -> DriverError {
    DriverError::NotFound {
        entity: "webhook",
        id: id.to_string(),
    }
}

/// Page size with 0 meaning the cap.
fn page(limit: u32) -> usize {
    if limit == 0 {
        10_000
    } else {
        limit.min(10_000) as usize
    }
}

impl Inner {
    fn unique_holder(&self, key: &str) -> Option<&Job> {
        self.jobs
            .values()
            .map(|(j, _)| j)
            .find(|j| !j.state.is_finished() && j.unique_key.as_deref() == Some(key))
    }

    /// Inserts jobs (the shared insert path); returns the results and the
    /// queues that got available jobs.
    fn insert_jobs(
        &mut self,
        params: Vec<JobInsertParams>,
        execution_id: Option<i64>,
        schedule_id: Option<i64>,
    ) -> (Vec<InsertedJob>, Vec<String>) {
        let mut out = Vec::new();
        let mut queues = Vec::new();
        for p in params {
            if let Some(key) = &p.unique_key
                && let Some(existing) = self.unique_holder(key)
            {
                out.push(InsertedJob {
                    job: existing.clone(),
                    inserted: false,
                });
                continue;
            }
            self.next_id += 1;
            // Stored at the precision the SQL stores keep, like them.
            let job = p.into_stored_job(self.next_id, execution_id, schedule_id);
            if job.state == JobState::Available && !queues.contains(&job.queue) {
                queues.push(job.queue.clone());
            }
            let id = job.id;
            self.jobs.insert(id, (job, None));
            self.on_job_insert(id);
            out.push(InsertedJob {
                job: self.jobs[&id].0.clone(),
                inserted: true,
            });
        }
        (out, queues)
    }

    /// Appends an outbox event, only while a webhook exists (the triggers).
    fn emit(&mut self, event: impl FnOnce(i64) -> EventRow) {
        if self.webhooks.is_empty() {
            return;
        }
        self.next_event_id += 1;
        let e = event(self.next_event_id);
        self.events.insert(e.id, e);
    }

    fn emit_job(&mut self, id: i64, status: Option<&str>, at: Timestamp) {
        let Some((j, _)) = self.jobs.get(&id) else {
            return;
        };
        let (revision, state, kind, execution_id) =
            (j.revision, j.state, j.kind.clone(), j.execution_id);
        let status = status.unwrap_or(state.as_str()).to_owned();
        self.emit(|event_id| EventRow {
            id: event_id,
            entity: "job".into(),
            entity_id: id,
            revision,
            status,
            kind,
            execution_id,
            at,
        });
    }

    fn emit_execution(&mut self, id: i64) {
        let Some((row, revision)) = self.executions.get(&id) else {
            return;
        };
        let (revision, status, kind) = (*revision, row.status, row.owner_kind.clone());
        self.emit(|event_id| EventRow {
            id: event_id,
            entity: "execution".into(),
            entity_id: id,
            revision,
            status: status.as_str().into(),
            kind,
            execution_id: Some(id),
            at: Timestamp::now(),
        });
    }

    /// The "AFTER INSERT" trigger.
    fn on_job_insert(&mut self, id: i64) {
        self.emit_job(id, None, Timestamp::now());
        let (j, _) = &self.jobs[&id];
        if let Some(eid) = j.execution_id {
            let (state, finished) = (j.state, j.finished_at);
            self.count(eid, state, 1);
            self.derive_status(eid, finished);
        }
    }

    /// A state change of a job (or a cancel request): bumps its revision,
    /// records the event and maintains its execution ("AFTER UPDATE").
    fn on_job_change(&mut self, id: i64, old: JobState) {
        let Some((j, _)) = self.jobs.get_mut(&id) else {
            return;
        };
        j.revision += 1;
        let (new, eid, finished) = (j.state, j.execution_id, j.finished_at);
        self.emit_job(id, None, Timestamp::now());
        if let Some(eid) = eid
            && new != old
        {
            self.count(eid, old, -1);
            self.count(eid, new, 1);
            self.derive_status(eid, finished);
        }
    }

    /// The "AFTER DELETE" trigger.
    fn on_job_delete(&mut self, job: &Job) {
        if let Some(eid) = job.execution_id {
            self.count(eid, job.state, -1);
            self.derive_status(eid, job.finished_at);
        }
    }

    fn count(&mut self, eid: i64, state: JobState, delta: i64) {
        if let Some((row, _)) = self.executions.get_mut(&eid) {
            let n = row.counts.entry(state).or_default();
            *n += delta;
            if *n == 0 {
                row.counts.remove(&state);
            }
        }
    }

    /// Applies the status rule; a change bumps the revision and is recorded.
    fn derive_status(&mut self, eid: i64, finished_at: Option<Timestamp>) {
        let Some((row, revision)) = self.executions.get_mut(&eid) else {
            return;
        };
        row.updated_at = Timestamp::now();
        let Some(status) = ExecutionStatus::derive(&row.counts) else {
            return;
        };
        if status == row.status {
            return;
        }
        row.status = status;
        row.ended_at = status
            .is_finished()
            .then(|| finished_at.unwrap_or_else(Timestamp::now));
        *revision += 1;
        self.emit_execution(eid);
    }

    fn new_execution(
        &mut self,
        owner_kind: String,
        owner_id: String,
        trigger: Trigger,
        attributes: BTreeMap<String, String>,
        status_message: Option<String>,
        now: Timestamp,
    ) -> i64 {
        self.next_execution_id += 1;
        let id = self.next_execution_id;
        let row = ExecutionRow {
            id,
            owner_kind,
            owner_id,
            trigger,
            attributes,
            status: ExecutionStatus::Running,
            status_message,
            counts: BTreeMap::new(),
            created_at: now,
            updated_at: now,
            ended_at: None,
        };
        self.executions.insert(id, (row, 1));
        self.emit_execution(id);
        id
    }

    fn execution_jobs(&self, eid: i64) -> Vec<i64> {
        self.jobs
            .values()
            .filter(|(j, _)| j.execution_id == Some(eid))
            .map(|(j, _)| j.id)
            .collect()
    }

    /// A fire row with the outcome of its jobs.
    fn fire_row(&self, f: &FireRow) -> FireRow {
        let jobs: Vec<&Job> = self
            .jobs
            .values()
            .map(|(j, _)| j)
            .filter(|j| j.schedule_id == Some(f.schedule_id) && f.job_ids.contains(&j.id))
            .collect();
        let unfinished = jobs.iter().filter(|j| !j.state.is_finished()).count() as i64;
        FireRow {
            unfinished,
            unsuccessful: jobs
                .iter()
                .filter(|j| matches!(j.state, JobState::Failed | JobState::Canceled))
                .count() as i64,
            started_at: jobs.iter().filter_map(|j| j.started_at).min(),
            finished_at: if unfinished == 0 {
                jobs.iter().filter_map(|j| j.finished_at).max()
            } else {
                None
            },
            ..f.clone()
        }
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
        let (out, queues) = self.lock().insert_jobs(params, None, None);
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
            .filter(|j| p.execution_id.is_none_or(|e| j.execution_id == Some(e)))
            .filter(|j| p.schedule_id.is_none_or(|s| j.schedule_id == Some(s)))
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
            .filter(|j| p.kinds.as_ref().is_none_or(|k| k.contains(&j.kind)))
            .map(|j| (j.priority, j.run_at, j.id))
            .collect();
        candidates.sort();
        let mut out = Vec::new();
        for (_, _, id) in candidates.into_iter().take(p.max as usize) {
            if let Some((j, token)) = g.jobs.get_mut(&id) {
                let old = j.state;
                j.state = JobState::Running;
                j.attempt += 1;
                j.started_at = Some(p.now);
                j.node = Some(p.node_id.clone());
                j.lease_expires_at = Some(p.lease_expires_at);
                j.lease_token = Some(p.lease_token);
                *token = Some(p.lease_token);
                g.on_job_change(id, old);
                out.push(g.jobs[&id].0.clone());
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
                    // A finished run holds no lease (as on both SQL stores).
                    j.lease_expires_at = None;
                    wake |= j.state == JobState::Available;
                    g.on_job_change(p.id, JobState::Running);
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
        let old = j.state;
        if step.to == JobState::Running {
            if j.cancel_requested_at.is_some() {
                return Ok(j.clone());
            }
            j.cancel_requested_at = Some(p.now);
        } else {
            j.state = step.to;
            j.finished_at = Some(p.now);
        }
        g.on_job_change(p.id, old);
        Ok(g.jobs[&p.id].0.clone())
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
        let old = j.state;
        j.state = step.to;
        j.attempt = step.attempt;
        j.run_at = p.now;
        j.finished_at = None;
        g.on_job_change(p.id, old);
        let out = g.jobs[&p.id].0.clone();
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
        let job = g
            .jobs
            .remove(&id)
            .map(|(j, _)| j)
            .unwrap_or_else(|| unreachable!());
        g.on_job_delete(&job);
        Ok(job)
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
        let due: Vec<i64> = g
            .jobs
            .values()
            .map(|(j, _)| j)
            .filter(|j| {
                matches!(j.state, JobState::Scheduled | JobState::Retrying) && j.run_at <= p.now
            })
            .map(|j| j.id)
            .take(p.limit as usize)
            .collect();
        for id in due {
            if let Some((j, _)) = g.jobs.get_mut(&id) {
                let old = j.state;
                j.state = JobState::Available;
                *counts.entry(j.queue.clone()).or_default() += 1;
                g.on_job_change(id, old);
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
            .filter(|j| j.state.is_finished() && j.execution_id.is_none())
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
            if let Some((job, _)) = g.jobs.remove(id) {
                g.on_job_delete(&job);
            }
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

    async fn db_now(&self) -> Result<Timestamp> {
        Ok(Timestamp::now())
    }

    async fn execution_insert(
        &self,
        p: ExecutionInsertParams,
    ) -> Result<(ExecutionRow, Vec<InsertedJob>)> {
        let (row, jobs, queues) = {
            let mut g = self.lock();
            let id = g.new_execution(
                p.owner_kind,
                p.owner_id,
                p.trigger,
                p.attributes,
                p.status_message,
                p.now,
            );
            let (jobs, queues) = g.insert_jobs(p.jobs, Some(id), None);
            (g.executions[&id].0.clone(), jobs, queues)
        };
        for q in queues {
            self.notify(Some(q));
        }
        Ok((row, jobs))
    }

    async fn execution_get(&self, id: i64) -> Result<Option<ExecutionRow>> {
        Ok(self.lock().executions.get(&id).map(|(r, _)| r.clone()))
    }

    async fn execution_list(&self, p: &ExecutionListParams) -> Result<Vec<ExecutionRow>> {
        let g = self.lock();
        Ok(g.executions
            .values()
            .rev()
            .map(|(r, _)| r)
            .filter(|r| p.owner_kind.as_ref().is_none_or(|k| &r.owner_kind == k))
            .filter(|r| p.owner_id.as_ref().is_none_or(|i| &r.owner_id == i))
            .filter(|r| p.statuses.is_empty() || p.statuses.contains(&r.status))
            .filter(|r| {
                p.attributes
                    .iter()
                    .all(|(k, v)| r.attributes.get(k) == Some(v))
            })
            .filter(|r| p.before_id.is_none_or(|b| r.id < b))
            .take(page(p.limit))
            .cloned()
            .collect())
    }

    async fn execution_add_jobs(&self, p: ExecutionAddJobsParams) -> Result<Vec<InsertedJob>> {
        let (jobs, queues) = {
            let mut g = self.lock();
            let (row, _) = g
                .executions
                .get(&p.id)
                .ok_or_else(|| execution_not_found(p.id))?;
            if row.status.is_finished() && row.counts.values().sum::<i64>() == 0 {
                return Err(DriverError::Conflict(format!(
                    "execution {} was marked {} without jobs",
                    p.id,
                    row.status.as_str()
                )));
            }
            g.insert_jobs(p.jobs, Some(p.id), None)
        };
        for q in queues {
            self.notify(Some(q));
        }
        Ok(jobs)
    }

    async fn execution_mark(&self, p: &ExecutionMarkParams) -> Result<ExecutionRow> {
        let mut g = self.lock();
        let (row, revision) = g
            .executions
            .get_mut(&p.id)
            .ok_or_else(|| execution_not_found(p.id))?;
        if row.counts.values().sum::<i64>() != 0 {
            return Err(DriverError::Conflict(format!(
                "execution {} has jobs; its status is derived from them",
                p.id
            )));
        }
        row.status = p.status;
        row.status_message = p.message.clone();
        row.ended_at = p.status.is_finished().then_some(p.now);
        row.updated_at = p.now;
        *revision += 1;
        let out = row.clone();
        g.emit_execution(p.id);
        Ok(out)
    }

    async fn execution_stop(&self, p: &ExecutionStopParams) -> Result<(ExecutionRow, Vec<i64>)> {
        let mut g = self.lock();
        if !g.executions.contains_key(&p.id) {
            return Err(execution_not_found(p.id));
        }
        let mut told = Vec::new();
        for id in g.execution_jobs(p.id) {
            let Some((j, _)) = g.jobs.get_mut(&id) else {
                continue;
            };
            let old = j.state;
            match old {
                JobState::Scheduled | JobState::Available | JobState::Retrying => {
                    j.state = JobState::Canceled;
                    j.finished_at = Some(p.now);
                    g.on_job_change(id, old);
                }
                JobState::Running => {
                    told.push(id);
                    if j.cancel_requested_at.is_none() {
                        j.cancel_requested_at = Some(p.now);
                        g.on_job_change(id, old);
                    }
                }
                _ => {}
            }
        }
        Ok((g.executions[&p.id].0.clone(), told))
    }

    async fn execution_prune(&self, p: &ExecutionPruneParams) -> Result<u64> {
        let mut g = self.lock();
        let mut per_owner: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
        for (row, _) in g.executions.values() {
            if row.status.is_finished()
                && p.owner_kind.as_ref().is_none_or(|k| &row.owner_kind == k)
            {
                per_owner
                    .entry((row.owner_kind.clone(), row.owner_id.clone()))
                    .or_default()
                    .push(row.id);
            }
        }
        let mut doomed: Vec<i64> = per_owner
            .into_values()
            .flat_map(|mut ids| {
                ids.sort_unstable_by(|a, b| b.cmp(a));
                ids.into_iter().skip(p.keep_last as usize)
            })
            .collect();
        doomed.sort_unstable();
        doomed.truncate(p.limit as usize);
        for eid in &doomed {
            for id in g.execution_jobs(*eid) {
                g.jobs.remove(&id);
            }
            g.executions.remove(eid);
        }
        Ok(doomed.len() as u64)
    }

    async fn execution_repair(&self, limit: u32) -> Result<Vec<ExecutionRepair>> {
        let mut g = self.lock();
        let mut actual: BTreeMap<i64, BTreeMap<JobState, i64>> = BTreeMap::new();
        for (j, _) in g.jobs.values() {
            if let Some(eid) = j.execution_id {
                *actual.entry(eid).or_default().entry(j.state).or_default() += 1;
            }
        }
        let mut out = Vec::new();
        let ids: Vec<i64> = g.executions.keys().copied().collect();
        for id in ids {
            if out.len() >= limit as usize {
                break;
            }
            let want = actual.remove(&id).unwrap_or_default();
            let Some((row, _)) = g.executions.get_mut(&id) else {
                continue;
            };
            if row.counts == want {
                continue;
            }
            let was = row.status;
            let stored_counts = std::mem::replace(&mut row.counts, want.clone());
            g.derive_status(id, None);
            out.push(ExecutionRepair {
                id,
                was,
                now: g.executions[&id].0.status,
                stored_counts,
                actual_counts: want,
            });
        }
        Ok(out)
    }

    async fn schedule_insert(&self, p: &ScheduleInsertParams) -> Result<ScheduleRow> {
        let mut g = self.lock();
        if g.schedules.values().any(|s| s.name == p.name) {
            return Err(DriverError::Conflict(format!(
                "schedule {:?} already exists",
                p.name
            )));
        }
        g.next_schedule_id += 1;
        let row = ScheduleRow {
            id: g.next_schedule_id,
            name: p.name.clone(),
            spec: p.spec.clone(),
            state: serde_json::json!({}),
            paused_at: None,
            next_fire_at: p.next_fire_at,
            last_fire_at: None,
            created_at: p.now,
            updated_at: p.now,
        };
        g.schedules.insert(row.id, row.clone());
        Ok(row)
    }

    async fn schedule_get(&self, id: i64) -> Result<Option<ScheduleRow>> {
        Ok(self.lock().schedules.get(&id).cloned())
    }

    async fn schedule_list(&self) -> Result<Vec<ScheduleRow>> {
        Ok(self.lock().schedules.values().cloned().collect())
    }

    async fn schedule_update(&self, p: &ScheduleUpdateParams) -> Result<ScheduleRow> {
        let mut g = self.lock();
        let row = g
            .schedules
            .get_mut(&p.id)
            .ok_or_else(|| schedule_not_found(p.id))?;
        if let Some(spec) = &p.spec {
            row.spec = spec.clone();
        }
        if let Some(next) = p.next_fire_at {
            row.next_fire_at = next;
        }
        if let Some(paused) = p.paused_at {
            row.paused_at = paused;
        }
        row.updated_at = p.now;
        Ok(row.clone())
    }

    async fn schedule_delete(&self, id: i64) -> Result<ScheduleRow> {
        let mut g = self.lock();
        let row = g
            .schedules
            .remove(&id)
            .ok_or_else(|| schedule_not_found(id))?;
        g.fires.retain(|(sid, _), _| *sid != id);
        Ok(row)
    }

    async fn schedule_due(&self, now: Timestamp, limit: u32) -> Result<Vec<ScheduleRow>> {
        let g = self.lock();
        let mut due: Vec<ScheduleRow> = g
            .schedules
            .values()
            .filter(|s| s.paused_at.is_none() && s.next_fire_at.is_some_and(|n| n <= now))
            .cloned()
            .collect();
        due.sort_by_key(|s| (s.next_fire_at, s.id));
        due.truncate(limit as usize);
        Ok(due)
    }

    async fn schedule_fire(&self, p: ScheduleFireParams) -> Result<FireOutcome> {
        let mut outcome = FireOutcome {
            applied: false,
            jobs: Vec::new(),
            executions: Vec::new(),
        };
        let mut wake = Vec::new();
        {
            let mut g = self.lock();
            let Some(row) = g.schedules.get_mut(&p.id) else {
                return Ok(outcome);
            };
            if row.next_fire_at != p.expected_next_fire_at {
                return Ok(outcome);
            }
            row.next_fire_at = p.next_fire_at;
            if let Some(last) = p.fires.iter().map(|f| f.fire_at).max() {
                row.last_fire_at = Some(last);
            }
            row.state = p.state.clone();
            row.updated_at = p.now;
            outcome.applied = true;
            for f in p.fires {
                if g.fires.contains_key(&(p.id, f.fire_at)) {
                    continue;
                }
                let mut execution_id = None;
                let mut jobs = Vec::new();
                if f.status == FireStatus::Fired {
                    if let Some((kind, owner)) = f.execution_owner {
                        execution_id = Some(g.new_execution(
                            kind,
                            owner,
                            Trigger::Schedule,
                            BTreeMap::new(),
                            None,
                            p.now,
                        ));
                    }
                    let (inserted, queues) = g.insert_jobs(f.jobs, execution_id, Some(p.id));
                    jobs = inserted;
                    wake.extend(queues);
                }
                g.fires.insert(
                    (p.id, f.fire_at),
                    FireRow {
                        schedule_id: p.id,
                        fire_at: f.fire_at,
                        status: f.status,
                        reason: f.reason,
                        node_id: p.node_id.clone(),
                        recorded_at: p.now,
                        execution_id,
                        job_ids: jobs.iter().map(|j| j.job.id).collect(),
                        unfinished: 0,
                        unsuccessful: 0,
                        started_at: None,
                        finished_at: None,
                    },
                );
                outcome.jobs.push(jobs);
                outcome.executions.push(execution_id);
            }
        }
        for q in wake {
            self.notify(Some(q));
        }
        Ok(outcome)
    }

    async fn schedule_fires(&self, p: &FireListParams) -> Result<Vec<FireRow>> {
        let g = self.lock();
        Ok(g.fires
            .range((p.schedule_id, Timestamp::MIN)..=(p.schedule_id, Timestamp::MAX))
            .rev()
            .map(|(_, f)| f)
            .filter(|f| p.before.is_none_or(|b| f.fire_at < b))
            .take(page(p.limit))
            .map(|f| g.fire_row(f))
            .collect())
    }

    async fn schedule_unfinished(&self, id: i64) -> Result<i64> {
        Ok(self
            .lock()
            .jobs
            .values()
            .filter(|(j, _)| j.schedule_id == Some(id) && !j.state.is_finished())
            .count() as i64)
    }

    async fn webhook_insert(&self, p: &WebhookInsertParams) -> Result<WebhookRow> {
        let mut g = self.lock();
        g.next_webhook_id += 1;
        let row = WebhookRow {
            id: g.next_webhook_id,
            url: p.url.clone(),
            events: p.events.clone(),
            kinds: p.kinds.clone(),
            owner_kinds: p.owner_kinds.clone(),
            secret: p.secret.clone(),
            created_at: p.now,
        };
        g.webhooks.insert(row.id, row.clone());
        Ok(row)
    }

    async fn webhook_list(&self) -> Result<Vec<WebhookRow>> {
        Ok(self.lock().webhooks.values().cloned().collect())
    }

    async fn webhook_delete(&self, id: i64) -> Result<WebhookRow> {
        let mut g = self.lock();
        let row = g
            .webhooks
            .remove(&id)
            .ok_or_else(|| webhook_not_found(id))?;
        g.deliveries.retain(|_, d| d.webhook_id != id);
        Ok(row)
    }

    async fn event_list(&self, limit: u32) -> Result<Vec<EventRow>> {
        Ok(self
            .lock()
            .events
            .values()
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn event_progress(&self, job_id: i64, now: Timestamp) -> Result<()> {
        self.lock().emit_job(job_id, Some("progress"), now);
        Ok(())
    }

    async fn delivery_create(&self, p: &DeliveryCreateParams) -> Result<u64> {
        let mut g = self.lock();
        for (webhook_id, event_id, body) in &p.deliveries {
            g.next_delivery_id += 1;
            let d = DeliveryRow {
                id: g.next_delivery_id,
                webhook_id: *webhook_id,
                event_id: *event_id,
                body: body.clone(),
                status: DeliveryStatus::Pending,
                attempts: 0,
                next_attempt_at: Some(p.now),
                last_status_code: None,
                last_error: None,
                created_at: p.now,
                delivered_at: None,
            };
            g.deliveries.insert(d.id, d);
        }
        g.events.retain(|id, _| *id > p.consumed_through);
        Ok(p.deliveries.len() as u64)
    }

    async fn delivery_due(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<(DeliveryRow, WebhookRow)>> {
        let g = self.lock();
        Ok(g.deliveries
            .values()
            .filter(|d| {
                d.status == DeliveryStatus::Pending && d.next_attempt_at.is_some_and(|n| n <= now)
            })
            .filter_map(|d| {
                g.webhooks
                    .get(&d.webhook_id)
                    .map(|w| (d.clone(), w.clone()))
            })
            .take(limit as usize)
            .collect())
    }

    async fn delivery_record(&self, p: &DeliveryAttemptParams) -> Result<DeliveryRow> {
        let mut g = self.lock();
        let d = g
            .deliveries
            .get_mut(&p.id)
            .ok_or_else(|| DriverError::NotFound {
                entity: "delivery",
                id: p.id.to_string(),
            })?;
        d.attempts += 1;
        d.status = p.status;
        d.next_attempt_at = p.next_attempt_at;
        d.last_status_code = p.status_code;
        d.last_error = p.error.clone();
        if p.status == DeliveryStatus::Delivered {
            d.delivered_at = Some(p.now);
        }
        Ok(d.clone())
    }

    async fn delivery_list(&self, p: &DeliveryListParams) -> Result<Vec<DeliveryRow>> {
        let g = self.lock();
        Ok(g.deliveries
            .values()
            .rev()
            .filter(|d| d.webhook_id == p.webhook_id)
            .filter(|d| p.before_id.is_none_or(|b| d.id < b))
            .take(page(p.limit))
            .cloned()
            .collect())
    }
}

async fn memory() -> Option<Harness> {
    // Another "process" on an in-memory store can only be the same object.
    let driver: Arc<dyn Driver> = Arc::new(MemoryDriver::new());
    Some(Harness::new(Arc::clone(&driver)).with_peer(driver))
}

rota_driver_tests::conformance_suite!(memory);
