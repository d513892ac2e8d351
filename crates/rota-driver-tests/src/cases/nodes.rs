//! Node registry: upsert (registration and heartbeat), list, drain, delete,
//! prune.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use rota_driver::{
    Driver, DriverError, NodeDrainParams, NodePruneParams, NodeRow, NodeUpsertParams,
};

use crate::fixtures::{at, map};

/// Upsert params for `id` on host `host-1`, no labels or queues, started at
/// `T0 - 60s`, heartbeat at `now`.
fn node(id: &str, now: Timestamp) -> NodeUpsertParams {
    NodeUpsertParams {
        id: id.to_owned(),
        host: "host-1".to_owned(),
        labels: BTreeMap::new(),
        queues: BTreeMap::new(),
        running: 0,
        started_at: at(-60),
        now,
    }
}

fn queues(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

async fn upsert(driver: &Arc<dyn Driver>, params: &NodeUpsertParams) -> NodeRow {
    driver
        .node_upsert(params)
        .await
        .unwrap_or_else(|e| panic!("node_upsert({params:?}) failed: {e}"))
}

async fn list(driver: &Arc<dyn Driver>) -> Vec<NodeRow> {
    driver
        .node_list()
        .await
        .unwrap_or_else(|e| panic!("node_list failed: {e}"))
}

async fn drain(driver: &Arc<dyn Driver>, id: &str, now: Timestamp) -> NodeRow {
    driver
        .node_drain(&NodeDrainParams {
            id: id.to_owned(),
            now,
        })
        .await
        .unwrap_or_else(|e| panic!("node_drain({id}, {now}) failed: {e}"))
}

fn ids(rows: &[NodeRow]) -> Vec<&str> {
    rows.iter().map(|n| n.id.as_str()).collect()
}

/// The first upsert inserts the node as given (`heartbeat_at = now`, not
/// draining); a later one updates host, labels, queues, running and
/// `heartbeat_at`, while `started_at` and `draining_at` keep their stored
/// values. `node_list` shows the same rows the upserts return.
pub async fn node_upsert_inserts_then_updates(driver: Arc<dyn Driver>) {
    assert!(list(&driver).await.is_empty(), "a fresh store has no nodes");
    let first = NodeUpsertParams {
        labels: map(&[("region", "eu"), ("gpu", "1")]),
        queues: queues(&[("default", 4), ("mail", 2)]),
        running: 1,
        ..node("node-a", at(0))
    };
    let inserted = upsert(&driver, &first).await;
    let expected = NodeRow {
        id: "node-a".into(),
        host: "host-1".into(),
        labels: first.labels.clone(),
        queues: first.queues.clone(),
        running: 1,
        started_at: at(-60),
        heartbeat_at: at(0),
        draining_at: None,
    };
    assert_eq!(inserted, expected, "first upsert inserts the node as given");
    assert_eq!(list(&driver).await, vec![expected.clone()]);

    let drained = drain(&driver, "node-a", at(5)).await;
    assert_eq!(drained.draining_at, Some(at(5)));

    let second = NodeUpsertParams {
        labels: map(&[("region", "us")]),
        queues: queues(&[("default", 8)]),
        running: 7,
        // A restarted process would report a new start time; the stored one
        // stays.
        started_at: at(9),
        ..node("node-a", at(10))
    };
    let updated = upsert(&driver, &second).await;
    let expected = NodeRow {
        labels: map(&[("region", "us")]),
        queues: queues(&[("default", 8)]),
        running: 7,
        heartbeat_at: at(10),
        draining_at: Some(at(5)),
        ..expected
    };
    assert_eq!(
        updated, expected,
        "an upsert of a known node updates labels, queues, running and heartbeat_at, \
         keeps started_at and draining_at"
    );
    assert_eq!(
        list(&driver).await,
        vec![expected],
        "node_list shows the updated row, once"
    );
}

/// `node_list` returns every node once, ordered by id (byte order), whatever
/// the order of registration.
pub async fn node_list_ordered_by_id(driver: Arc<dyn Driver>) {
    for (i, id) in ["node-b", "node-2", "node-c", "node-10", "node-a", "node-1"]
        .into_iter()
        .enumerate()
    {
        let secs = i64::try_from(i).unwrap_or_else(|_| unreachable!());
        upsert(&driver, &node(id, at(secs))).await;
    }
    // Heartbeats do not add rows or change the order.
    upsert(&driver, &node("node-b", at(20))).await;
    let rows = list(&driver).await;
    assert_eq!(
        ids(&rows),
        vec!["node-1", "node-10", "node-2", "node-a", "node-b", "node-c"],
        "node_list is ordered by id"
    );
    let b = rows
        .iter()
        .find(|n| n.id == "node-b")
        .unwrap_or_else(|| unreachable!());
    assert_eq!(b.heartbeat_at, at(20));
}

/// `node_drain` sets `draining_at = now` once: draining again keeps the first
/// time and changes nothing else; other nodes are not affected. Draining an
/// unknown node is `NotFound` with entity `node`.
pub async fn node_drain_is_idempotent_and_keeps_first_draining_at(driver: Arc<dyn Driver>) {
    let a = upsert(
        &driver,
        &NodeUpsertParams {
            queues: queues(&[("default", 2)]),
            running: 2,
            ..node("node-a", at(1))
        },
    )
    .await;
    let b = upsert(&driver, &node("node-b", at(1))).await;

    let first = drain(&driver, "node-a", at(5)).await;
    assert_eq!(
        first,
        NodeRow {
            draining_at: Some(at(5)),
            ..a.clone()
        },
        "drain sets draining_at = now and nothing else"
    );
    let again = drain(&driver, "node-a", at(9)).await;
    assert_eq!(again, first, "a second drain keeps the first draining_at");
    assert_eq!(
        list(&driver).await,
        vec![first, b],
        "draining one node leaves the others alone"
    );

    match driver
        .node_drain(&NodeDrainParams {
            id: "no-such-node".into(),
            now: at(10),
        })
        .await
    {
        Err(DriverError::NotFound { entity, id }) => {
            assert_eq!(entity, "node", "NotFound names the entity");
            assert_eq!(id, "no-such-node", "NotFound names the id");
        }
        other => panic!("drain of an unknown node: expected NotFound, got {other:?}"),
    }
    assert_eq!(list(&driver).await.len(), 2, "a failed drain adds no node");
}

/// `node_delete` removes the node; deleting an unknown or already deleted
/// node succeeds and changes nothing. A deleted node registers afresh.
pub async fn node_delete_removes_and_ignores_unknown(driver: Arc<dyn Driver>) {
    upsert(&driver, &node("node-a", at(1))).await;
    upsert(&driver, &node("node-b", at(1))).await;
    drain(&driver, "node-a", at(2)).await;
    driver
        .node_delete("node-a")
        .await
        .unwrap_or_else(|e| panic!("node_delete(node-a) failed: {e}"));
    assert_eq!(ids(&list(&driver).await), vec!["node-b"]);
    for id in ["node-a", "no-such-node"] {
        driver
            .node_delete(id)
            .await
            .unwrap_or_else(|e| panic!("node_delete({id}) of an unknown node failed: {e}"));
    }
    assert_eq!(ids(&list(&driver).await), vec!["node-b"]);

    let again = upsert(
        &driver,
        &NodeUpsertParams {
            started_at: at(3),
            ..node("node-a", at(3))
        },
    )
    .await;
    assert_eq!(
        again.started_at,
        at(3),
        "a re-registered node starts afresh"
    );
    assert_eq!(
        again.draining_at, None,
        "a re-registered node is not draining"
    );
}

/// `node_prune` deletes nodes whose last heartbeat is strictly before the
/// cutoff and returns how many; a node heartbeating exactly at the cutoff
/// stays.
pub async fn node_prune_by_heartbeat_cutoff(driver: Arc<dyn Driver>) {
    upsert(&driver, &node("node-old", at(10))).await;
    upsert(&driver, &node("node-edge", at(20))).await;
    upsert(&driver, &node("node-new", at(30))).await;
    // An old registration that heartbeats again is not stale.
    upsert(&driver, &node("node-revived", at(5))).await;
    upsert(&driver, &node("node-revived", at(25))).await;

    let prune = |secs: i64| {
        let d = Arc::clone(&driver);
        async move {
            d.node_prune(&NodePruneParams {
                heartbeat_before: at(secs),
            })
            .await
            .unwrap_or_else(|e| panic!("node_prune(before {}) failed: {e}", at(secs)))
        }
    };
    assert_eq!(prune(20).await, 1, "only the heartbeat before the cutoff");
    assert_eq!(
        ids(&list(&driver).await),
        vec!["node-edge", "node-new", "node-revived"],
        "a heartbeat at the cutoff is kept"
    );
    assert_eq!(prune(20).await, 0, "nothing left to prune at that cutoff");
    assert_eq!(prune(31).await, 3);
    assert!(list(&driver).await.is_empty());
}
