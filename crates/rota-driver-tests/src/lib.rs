//! The conformance suite every Rota storage driver must pass.
//!
//! The suite is written once against `Arc<dyn Driver>` ([`cases`]) and run
//! against each store by a test file that invokes [`conformance_suite!`] with
//! an async factory returning a fresh [`Harness`] (or `None` when the store is
//! not configured, which skips the case):
//!
//! ```ignore
//! async fn harness() -> Option<rota_driver_tests::Harness> {
//!     let driver = my_store::Driver::open(/* fresh, empty store */).await.ok()?;
//!     Some(rota_driver_tests::Harness::new(std::sync::Arc::new(driver)))
//! }
//!
//! rota_driver_tests::conformance_suite!(harness);
//! ```
//!
//! The macro expands to one `#[test]` per case, grouped in one module per
//! topic (`insert::unique_key_duplicate_returns_existing`, ...), so a failure
//! names its case. Each test builds its own multi-threaded Tokio runtime, a
//! fresh store through the factory, runs [`Driver::migrate`], runs the case in
//! a task (bounded by [`CASE_TIMEOUT`]) and then runs the harness teardown
//! whether the case passed or not.
//!
//! A harness may also carry a *peer* ([`Harness::with_peer`]): a second,
//! independent driver instance on the same store, standing for another
//! process. The `peers` cases run only when it is there.
//!
//! Cases never sleep to move time: every time-dependent call receives its
//! `now` explicitly, from a fixed base instant ([`fixtures::t0`]).

pub mod cases;
pub mod fixtures;

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rota_driver::Driver;

/// Longest a single case may run before it is reported as hung.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// A boxed teardown step.
type Teardown = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A fresh, empty store for one case, plus whatever must live as long as the
/// case (a temporary directory) and the async cleanup to run afterwards (drop
/// a PostgreSQL schema).
pub struct Harness {
    driver: Arc<dyn Driver>,
    peer: Option<Arc<dyn Driver>>,
    keep_alive: Vec<Box<dyn Any + Send>>,
    teardown: Vec<Teardown>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("driver", &self.driver)
            .field("peer", &self.peer)
            .field("keep_alive", &self.keep_alive.len())
            .field("teardown", &self.teardown.len())
            .finish()
    }
}

impl Harness {
    /// A harness around a driver on a fresh, empty store.
    pub fn new(driver: Arc<dyn Driver>) -> Self {
        Self {
            driver,
            peer: None,
            keep_alive: Vec::new(),
            teardown: Vec::new(),
        }
    }

    /// Adds a second, independent driver instance (its own connections) on
    /// the *same* store, standing for another process. The `peers` cases use
    /// it; without one they pass as skipped.
    pub fn with_peer(mut self, peer: Arc<dyn Driver>) -> Self {
        self.peer = Some(peer);
        self
    }

    /// Keeps `value` alive until the case and its teardown are done (e.g. the
    /// `TempDir` holding a SQLite file).
    pub fn keep_alive(mut self, value: impl Any + Send) -> Self {
        self.keep_alive.push(Box::new(value));
        self
    }

    /// Runs `step` after the case, whether it passed or failed (e.g. dropping
    /// a PostgreSQL schema). Steps run in the order they were added, after the
    /// harness's own reference to the driver is dropped.
    pub fn on_teardown(mut self, step: impl Future<Output = ()> + Send + 'static) -> Self {
        self.teardown.push(Box::pin(step));
        self
    }

    /// The driver under test.
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }
}

/// Runs one case: builds a runtime, a store through `factory`, migrates it,
/// runs `case`, tears the store down and re-raises the case's panic, if any.
///
/// Called by the tests [`conformance_suite!`] generates; public so other
/// crates can run a single case by hand.
pub fn run_case<F, Fut, C, CFut>(name: &'static str, factory: F, case: C)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Option<Harness>>,
    C: FnOnce(Arc<dyn Driver>) -> CFut,
    CFut: Future<Output = ()> + Send + 'static,
{
    run(name, factory, |driver, _peer| Some(case(driver)));
}

/// Like [`run_case`] for a case that also needs a peer driver on the same
/// store ([`Harness::with_peer`]); passes as skipped when the harness has
/// none.
pub fn run_peer_case<F, Fut, C, CFut>(name: &'static str, factory: F, case: C)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Option<Harness>>,
    C: FnOnce(Arc<dyn Driver>, Arc<dyn Driver>) -> CFut,
    CFut: Future<Output = ()> + Send + 'static,
{
    run(name, factory, |driver, peer| match peer {
        Some(peer) => Some(case(driver, peer)),
        None => {
            eprintln!("{name}: skipped, the harness has no peer driver");
            None
        }
    });
}

fn run<F, Fut, C, CFut>(name: &'static str, factory: F, case: C)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Option<Harness>>,
    C: FnOnce(Arc<dyn Driver>, Option<Arc<dyn Driver>>) -> Option<CFut>,
    CFut: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{name}: cannot build a Tokio runtime: {e}"));
    runtime.block_on(async move {
        let Some(Harness {
            driver,
            peer,
            keep_alive,
            teardown,
        }) = factory().await
        else {
            return;
        };
        let mut migrated = driver
            .migrate()
            .await
            .map_err(|e| format!("migrate() on a fresh store failed: {e}"));
        if let (Ok(()), Some(peer)) = (&migrated, &peer) {
            migrated = peer
                .migrate()
                .await
                .map_err(|e| format!("migrate() of the peer driver failed: {e}"));
        }
        let outcome = match migrated {
            Ok(()) => match case(Arc::clone(&driver), peer.clone()) {
                Some(fut) => Some(tokio::time::timeout(CASE_TIMEOUT, tokio::spawn(fut)).await),
                None => None,
            },
            Err(e) => {
                drop((driver, peer));
                for step in teardown {
                    step.await;
                }
                panic!("{name}: {e}");
            }
        };
        drop((driver, peer));
        for step in teardown {
            step.await;
        }
        drop(keep_alive);
        match outcome {
            Some(Ok(Ok(()))) | None => {}
            Some(Ok(Err(join))) => match join.try_into_panic() {
                Ok(payload) => std::panic::resume_unwind(payload),
                Err(join) => panic!("{name}: case task did not finish: {join}"),
            },
            Some(Err(_)) => {
                panic!("{name}: case did not finish within {CASE_TIMEOUT:?} (hung driver call?)")
            }
        }
    });
}

/// Expands to one `#[test]` per conformance case, each running
/// `rota_driver_tests::cases::<module>::<case>` on a fresh store from the
/// given factory.
///
/// Cases in `peers` need a second driver instance on the same store
/// ([`Harness::with_peer`]) and pass as skipped without one.
///
/// The factory is an expression evaluating to something callable as
/// `FnOnce() -> impl Future<Output = Option<Harness>>`, usually the path of an
/// `async fn` in the invoking module. It is evaluated inside generated child
/// modules that `use super::*`, so a private function of the invoking module
/// works.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr $(,)?) => {
        $crate::__conformance_tests! { $factory;
            store(run_case) {
                migrate_is_idempotent_and_store_reachable,
            }
            insert(run_case) {
                insert_many_keeps_input_order_and_returns_full_rows,
                insert_many_large_batch,
                insert_many_bulk_path_returns_stored_rows,
                insert_many_bulk_path_mostly_defaults,
                insert_scheduled_vs_available,
                unique_key_duplicate_returns_existing,
                unique_key_duplicate_within_one_batch,
                unique_key_held_by_every_unfinished_state,
                unique_key_free_again_after_finish,
                concurrent_unique_inserts_yield_one_job,
                insert_wakes_subscribers,
                promote_and_retry_wake_subscribers,
            }
            claim(run_case) {
                claim_orders_by_priority_then_run_at_then_id,
                claim_respects_max,
                claim_only_from_its_queue,
                claim_skips_paused_queue,
                claim_label_selector_is_a_subset_match,
                claim_only_kinds_the_node_runs,
                claim_sets_running_fields,
                concurrent_claimers_never_share_a_job,
            }
            finish(run_case) {
                finish_succeeded_stores_output_and_progress,
                finish_retrying_appends_errors_and_sets_run_at,
                finish_failed,
                finish_snooze_back_to_scheduled,
                finish_canceled_after_cancel_request,
                finish_hand_back_to_available,
                finish_with_stale_token_changes_nothing,
                finish_many_reports_per_input,
                finish_many_then_runs_its_callback_once,
                finish_many_repeated_id_applies_once,
                finish_many_repeated_id_credits_the_one_that_applied,
                finish_lease_expired_before_fence,
                heartbeat_extends_lease_and_reports_state,
                checkin_is_fenced_by_token,
            }
            cancel_retry(run_case) {
                cancel_waiting_job_finishes_it,
                cancel_running_job_requests_cancellation,
                cancel_finished_job_is_invalid_state,
                missing_job_is_not_found,
                retry_finished_job_resets_attempt,
                retry_running_job_is_invalid_state,
                retry_waiting_job_makes_it_available_now,
                retry_conflicts_with_unique_key_holder,
                delete_only_finished_jobs,
            }
            maintenance(run_case) {
                promote_due_only_when_run_at_reached,
                promote_due_respects_limit,
                list_expired_only_leases_expired_before_now,
                prune_by_age,
                prune_by_keep_last_respects_limit,
            }
            queues(run_case) {
                queue_list_shows_paused_at_and_counts,
                job_count_per_queue_and_state,
            }
            leader(run_case) {
                leader_elected_when_none,
                leader_second_node_refused_while_lease_valid,
                leader_reelect_extends_lease,
                leader_after_expiry_another_node_gets_next_term,
                leader_resign_frees_leadership,
                leader_terms_history_never_overlaps,
                leader_concurrent_elections_have_one_winner,
            }
            list(run_case) {
                list_filters_by_state_queue_kind_and_ids,
                list_filters_by_attributes_all_equal,
                list_keyset_pagination_newest_first,
                list_limit_is_capped,
            }
            state_machine(run_case) {
                driver_agrees_with_transition_table,
            }
            nodes(run_case) {
                node_upsert_inserts_then_updates,
                node_list_ordered_by_id,
                node_drain_is_idempotent_and_keeps_first_draining_at,
                node_delete_removes_and_ignores_unknown,
                node_prune_by_heartbeat_cutoff,
            }
            api_keys(run_case) {
                api_key_insert_and_get_round_trip,
                api_key_list_by_created_at,
                api_key_revoke_is_idempotent_and_keeps_first_revoked_at,
                api_key_duplicate_id_is_conflict,
            }
            revisions(run_case) {
                revision_starts_at_one_and_increments_on_state_changes,
                revision_unchanged_without_state_change,
            }
            executions(run_case) {
                execution_insert_with_jobs_counts_and_links,
                execution_all_succeeded_is_succeeded,
                execution_any_failed_is_failed,
                execution_canceled_unless_failed,
                execution_retry_of_failed_job_reopens_it,
                execution_mark_only_without_jobs,
                execution_stop_cancels_waiting_and_requests_running,
                execution_prune_keeps_newest_per_owner,
                execution_repair_on_consistent_store_finds_nothing,
                execution_list_filters_and_pagination,
            }
            schedules(run_case) {
                schedule_insert_get_list_update_delete,
                schedule_due_orders_and_skips_paused,
                schedule_fire_records_fires_and_creates_jobs,
                schedule_fire_with_stale_expected_writes_nothing,
                schedule_fire_same_fire_at_recorded_once,
                concurrent_schedule_fire_has_one_winner,
                schedule_fires_history_with_job_outcomes,
                schedule_unfinished_counts_open_jobs,
                db_now_is_close_to_system_time,
            }
            webhooks(run_case) {
                no_events_without_webhooks,
                job_changes_produce_ordered_events,
                execution_status_changes_produce_events,
                event_progress_records_progress_event,
                delivery_create_consumes_events,
                delivery_due_record_and_list,
                webhook_delete_removes_deliveries,
            }
            peers(run_peer_case) {
                peer_sees_committed_writes_and_fences,
                peer_claimers_never_share_a_job,
                peer_unique_inserts_yield_one_job,
                peer_insert_wakes_subscriber,
                peer_elections_have_one_winner,
                peer_schedule_fire_has_one_winner,
            }
        }
    };
}

/// Implementation detail of [`conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($factory:expr; $( $module:ident ($runner:ident) { $($case:ident),* $(,)? } )*) => {
        $(
            mod $module {
                #[allow(unused_imports)]
                use super::*;
                $(
                    #[test]
                    fn $case() {
                        $crate::$runner(
                            concat!(stringify!($module), "::", stringify!($case)),
                            $factory,
                            $crate::cases::$module::$case,
                        );
                    }
                )*
            }
        )*
    };
}
