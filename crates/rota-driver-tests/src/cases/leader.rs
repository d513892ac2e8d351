//! Leader election through the store: lease, term, history.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rota_driver::{Driver, LeaderElectParams, LeaderReelectParams, LeaderTerm};

use crate::fixtures::{at, t0};

const TTL: Duration = Duration::from_secs(30);

async fn elect(driver: &Arc<dyn Driver>, node: &str, now: Timestamp) -> Option<LeaderTerm> {
    driver
        .leader_attempt_elect(&LeaderElectParams {
            node_id: node.to_owned(),
            ttl: TTL,
            now,
        })
        .await
        .unwrap_or_else(|e| panic!("leader_attempt_elect({node}, {now}) failed: {e}"))
}

fn reelect_params(node: &str, term: i64, now: Timestamp) -> LeaderReelectParams {
    LeaderReelectParams {
        node_id: node.to_owned(),
        term,
        ttl: TTL,
        now,
    }
}

async fn reelect(
    driver: &Arc<dyn Driver>,
    node: &str,
    term: i64,
    now: Timestamp,
) -> Option<LeaderTerm> {
    driver
        .leader_attempt_reelect(&reelect_params(node, term, now))
        .await
        .unwrap_or_else(|e| panic!("leader_attempt_reelect({node}, {term}, {now}) failed: {e}"))
}

async fn resign(driver: &Arc<dyn Driver>, node: &str, term: i64, now: Timestamp) {
    driver
        .leader_resign(&reelect_params(node, term, now))
        .await
        .unwrap_or_else(|e| panic!("leader_resign({node}, {term}, {now}) failed: {e}"));
}

async fn current(driver: &Arc<dyn Driver>, now: Timestamp) -> Option<LeaderTerm> {
    driver
        .leader_get(now)
        .await
        .unwrap_or_else(|e| panic!("leader_get({now}) failed: {e}"))
}

async fn terms(driver: &Arc<dyn Driver>) -> Vec<LeaderTerm> {
    driver
        .leader_terms()
        .await
        .unwrap_or_else(|e| panic!("leader_terms failed: {e}"))
}

fn term_of(node: &str, term: i64, elected: i64, expires: i64) -> LeaderTerm {
    LeaderTerm {
        node_id: node.to_owned(),
        term,
        elected_at: at(elected),
        expires_at: at(expires),
    }
}

/// With no leader, a bid wins: the term names the node, `elected_at = now`,
/// `expires_at = now + ttl`; `leader_get` returns it until it expires.
pub async fn leader_elected_when_none(driver: Arc<dyn Driver>) {
    assert_eq!(
        current(&driver, t0()).await,
        None,
        "no leader in a fresh store"
    );
    assert!(terms(&driver).await.is_empty(), "no terms in a fresh store");
    let won = elect(&driver, "node-a", t0())
        .await
        .unwrap_or_else(|| panic!("the first bid in an empty store must win"));
    assert_eq!(won, term_of("node-a", won.term, 0, 30));
    assert_eq!(current(&driver, at(1)).await, Some(won.clone()));
    assert_eq!(current(&driver, at(29)).await, Some(won.clone()));
    assert_eq!(
        current(&driver, at(31)).await,
        None,
        "an expired lease has no leader"
    );
    assert_eq!(terms(&driver).await, vec![won], "the term is recorded");
}

/// While the lease is valid another node's bid is refused (and recorded
/// nowhere).
pub async fn leader_second_node_refused_while_lease_valid(driver: Arc<dyn Driver>) {
    let a = elect(&driver, "node-a", t0())
        .await
        .unwrap_or_else(|| panic!("node-a should win"));
    assert_eq!(
        elect(&driver, "node-b", at(10)).await,
        None,
        "lease valid until T0+30"
    );
    assert_eq!(
        elect(&driver, "node-b", at(29)).await,
        None,
        "lease valid until T0+30"
    );
    assert_eq!(current(&driver, at(29)).await, Some(a.clone()));
    assert_eq!(terms(&driver).await, vec![a], "refused bids record no term");
}

/// Re-election extends our own term (same term and elected_at, new expiry);
/// a wrong term or another node's re-election gets `None`.
pub async fn leader_reelect_extends_lease(driver: Arc<dyn Driver>) {
    let a = elect(&driver, "node-a", t0())
        .await
        .unwrap_or_else(|| panic!("node-a should win"));
    let again = reelect(&driver, "node-a", a.term, at(20))
        .await
        .unwrap_or_else(|| panic!("the leader re-elects within its lease"));
    assert_eq!(
        again,
        term_of("node-a", a.term, 0, 50),
        "same term, same elected_at, expiry now + ttl"
    );
    assert_eq!(current(&driver, at(40)).await, Some(again.clone()));
    assert_eq!(
        elect(&driver, "node-b", at(40)).await,
        None,
        "extended lease still valid"
    );
    assert_eq!(
        reelect(&driver, "node-b", a.term, at(41)).await,
        None,
        "another node cannot renew our term"
    );
    assert_eq!(
        reelect(&driver, "node-a", a.term + 1, at(41)).await,
        None,
        "a term we do not hold"
    );
    assert_eq!(current(&driver, at(41)).await, Some(again));
}

/// After the lease expires another node is elected with term + 1; the deposed
/// node's re-election then returns `None` and its new bid is refused.
pub async fn leader_after_expiry_another_node_gets_next_term(driver: Arc<dyn Driver>) {
    let a = elect(&driver, "node-a", t0())
        .await
        .unwrap_or_else(|| panic!("node-a should win"));
    let b = elect(&driver, "node-b", at(31))
        .await
        .unwrap_or_else(|| panic!("node-b should win once node-a's lease expired"));
    assert_eq!(b, term_of("node-b", a.term + 1, 31, 61), "next term");
    assert_eq!(
        reelect(&driver, "node-a", a.term, at(32)).await,
        None,
        "stale re-election by the deposed node"
    );
    assert_eq!(
        elect(&driver, "node-a", at(32)).await,
        None,
        "node-b's lease is valid"
    );
    assert_eq!(current(&driver, at(32)).await, Some(b));
}

/// Resigning frees leadership at once; resigning a term one does not hold
/// changes nothing.
pub async fn leader_resign_frees_leadership(driver: Arc<dyn Driver>) {
    let a = elect(&driver, "node-a", t0())
        .await
        .unwrap_or_else(|| panic!("node-a should win"));
    resign(&driver, "node-b", a.term, at(1)).await;
    resign(&driver, "node-a", a.term + 5, at(1)).await;
    assert_eq!(
        current(&driver, at(2)).await,
        Some(a.clone()),
        "foreign resignations change nothing"
    );

    resign(&driver, "node-a", a.term, at(5)).await;
    assert_eq!(
        current(&driver, at(6)).await,
        None,
        "no leader after resignation"
    );
    let b = elect(&driver, "node-b", at(6))
        .await
        .unwrap_or_else(|| panic!("leadership is free after resignation"));
    assert_eq!(b, term_of("node-b", a.term + 1, 6, 36));
    assert_eq!(
        reelect(&driver, "node-a", a.term, at(7)).await,
        None,
        "the resigned term is gone"
    );
}

/// `leader_terms` lists every term oldest first with increasing term numbers
/// and intervals `[elected_at, expires_at]` that never overlap; a history row
/// ends at the last known expiry or at the resignation.
pub async fn leader_terms_history_never_overlaps(driver: Arc<dyn Driver>) {
    let a = elect(&driver, "node-a", t0())
        .await
        .unwrap_or_else(|| panic!("node-a should win"));
    reelect(&driver, "node-a", a.term, at(20))
        .await
        .unwrap_or_else(|| panic!("node-a re-elects"));
    let b = elect(&driver, "node-b", at(51))
        .await
        .unwrap_or_else(|| panic!("node-b should win"));
    resign(&driver, "node-b", b.term, at(60)).await;
    let c = elect(&driver, "node-c", at(61))
        .await
        .unwrap_or_else(|| panic!("node-c should win"));
    assert_eq!(elect(&driver, "node-a", at(62)).await, None);

    let history = terms(&driver).await;
    assert_eq!(
        history,
        vec![
            term_of("node-a", a.term, 0, 50),
            term_of("node-b", a.term + 1, 51, 60),
            term_of("node-c", a.term + 2, 61, 91),
        ],
        "term history (expiry extended by re-election, cut short by resignation)"
    );
    assert_eq!(c.term, a.term + 2);
    for w in history.windows(2) {
        assert!(w[0].term < w[1].term, "terms increase: {history:?}");
        assert!(
            w[0].expires_at <= w[1].elected_at,
            "terms overlap: {:?} and {:?}",
            w[0],
            w[1]
        );
    }
    for t in &history {
        assert!(
            t.elected_at <= t.expires_at,
            "a term ends after it starts: {t:?}"
        );
    }
}

/// Many simultaneous bids on an empty store elect exactly one node.
pub async fn leader_concurrent_elections_have_one_winner(driver: Arc<dyn Driver>) {
    let mut tasks = Vec::new();
    for i in 0..10 {
        let d = Arc::clone(&driver);
        tasks.push(tokio::spawn(async move {
            let node = format!("node-{i}");
            let won = elect(&d, &node, t0()).await;
            (node, won)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (node, won) = t.await.unwrap_or_else(|e| panic!("bidder panicked: {e}"));
        if let Some(term) = won {
            assert_eq!(term.node_id, node);
            winners.push(term);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner: {winners:?}");
    assert_eq!(current(&driver, at(1)).await, Some(winners[0].clone()));
    assert_eq!(terms(&driver).await, winners, "one term recorded");
}
