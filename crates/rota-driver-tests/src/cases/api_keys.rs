//! API keys: insert, get, list, revoke.

use std::sync::Arc;

use jiff::Timestamp;
use rota_driver::{ApiKeyInsertParams, ApiKeyRow, ApiKeyScope, Driver, DriverError};

use crate::fixtures::at;

/// A hex SHA-256-like secret hash, distinct per `seed`.
fn hash(seed: u8) -> String {
    format!("{seed:02x}").repeat(32)
}

fn key(id: &str, scope: ApiKeyScope, now: Timestamp) -> ApiKeyInsertParams {
    ApiKeyInsertParams {
        id: id.to_owned(),
        name: format!("key {id}"),
        scope,
        secret_hash: hash(id.len() as u8),
        now,
    }
}

fn row_of(p: &ApiKeyInsertParams) -> ApiKeyRow {
    ApiKeyRow {
        id: p.id.clone(),
        name: p.name.clone(),
        scope: p.scope,
        secret_hash: p.secret_hash.clone(),
        created_at: p.now,
        revoked_at: None,
    }
}

async fn insert(driver: &Arc<dyn Driver>, params: &ApiKeyInsertParams) -> ApiKeyRow {
    driver
        .api_key_insert(params)
        .await
        .unwrap_or_else(|e| panic!("api_key_insert({params:?}) failed: {e}"))
}

async fn get(driver: &Arc<dyn Driver>, id: &str) -> Option<ApiKeyRow> {
    driver
        .api_key_get(id)
        .await
        .unwrap_or_else(|e| panic!("api_key_get({id}) failed: {e}"))
}

async fn list(driver: &Arc<dyn Driver>) -> Vec<ApiKeyRow> {
    driver
        .api_key_list()
        .await
        .unwrap_or_else(|e| panic!("api_key_list failed: {e}"))
}

async fn revoke(driver: &Arc<dyn Driver>, id: &str, now: Timestamp) -> ApiKeyRow {
    driver
        .api_key_revoke(id, now)
        .await
        .unwrap_or_else(|e| panic!("api_key_revoke({id}, {now}) failed: {e}"))
}

/// An inserted key comes back as given (`created_at = now`, not revoked),
/// from the insert and from `api_key_get`, for every scope; the secret hash
/// round-trips exactly. An unknown id is `None`.
pub async fn api_key_insert_and_get_round_trip(driver: Arc<dyn Driver>) {
    assert!(list(&driver).await.is_empty(), "a fresh store has no keys");
    let scopes = [ApiKeyScope::Read, ApiKeyScope::Write, ApiKeyScope::Admin];
    for (i, scope) in scopes.into_iter().enumerate() {
        let secs = i64::try_from(i).unwrap_or_else(|_| unreachable!());
        let params = ApiKeyInsertParams {
            id: format!("rk_{}", scope.as_str()),
            name: format!("CI deploy ({})", scope.as_str()),
            scope,
            secret_hash: format!(
                "9f86d081884c7d65{:048x}",
                0xabcdef_u64 + secs.unsigned_abs()
            ),
            now: at(secs),
        };
        let expected = row_of(&params);
        assert_eq!(
            insert(&driver, &params).await,
            expected,
            "api_key_insert returns the stored key"
        );
        assert_eq!(
            get(&driver, &params.id).await,
            Some(expected.clone()),
            "api_key_get returns the stored key"
        );
        assert_eq!(
            get(&driver, &params.id)
                .await
                .map(|k| k.secret_hash)
                .as_deref(),
            Some(params.secret_hash.as_str()),
            "the secret hash round-trips"
        );
    }
    assert_eq!(get(&driver, "rk_unknown").await, None, "unknown id");
    assert_eq!(list(&driver).await.len(), 3);
}

/// `api_key_list` returns every key, revoked ones included, ordered by
/// creation time (not by id or insertion order).
pub async fn api_key_list_by_created_at(driver: Arc<dyn Driver>) {
    let c = key("k-c", ApiKeyScope::Read, at(1));
    let a = key("k-a", ApiKeyScope::Admin, at(3));
    let b = key("k-b", ApiKeyScope::Write, at(2));
    for p in [&a, &c, &b] {
        insert(&driver, p).await;
    }
    revoke(&driver, "k-b", at(4)).await;
    let listed = list(&driver).await;
    assert_eq!(
        listed,
        vec![
            row_of(&c),
            ApiKeyRow {
                revoked_at: Some(at(4)),
                ..row_of(&b)
            },
            row_of(&a),
        ],
        "api_key_list is ordered by created_at and includes revoked keys"
    );
}

/// `api_key_revoke` sets `revoked_at = now` once: revoking again keeps the
/// first time; other keys are not affected; the revoked key stays readable.
/// Revoking an unknown id is `NotFound` with entity `api_key`.
pub async fn api_key_revoke_is_idempotent_and_keeps_first_revoked_at(driver: Arc<dyn Driver>) {
    let a = key("k-a", ApiKeyScope::Admin, at(1));
    let b = key("k-b", ApiKeyScope::Read, at(2));
    insert(&driver, &a).await;
    insert(&driver, &b).await;
    let revoked = ApiKeyRow {
        revoked_at: Some(at(5)),
        ..row_of(&a)
    };
    assert_eq!(revoke(&driver, "k-a", at(5)).await, revoked);
    assert_eq!(
        revoke(&driver, "k-a", at(9)).await,
        revoked,
        "a second revoke keeps the first revoked_at"
    );
    assert_eq!(get(&driver, "k-a").await, Some(revoked));
    assert_eq!(
        get(&driver, "k-b").await,
        Some(row_of(&b)),
        "other keys stay valid"
    );

    match driver.api_key_revoke("k-missing", at(10)).await {
        Err(DriverError::NotFound { entity, id }) => {
            assert_eq!(entity, "api_key", "NotFound names the entity");
            assert_eq!(id, "k-missing", "NotFound names the id");
        }
        other => panic!("revoke of an unknown key: expected NotFound, got {other:?}"),
    }
    assert_eq!(get(&driver, "k-missing").await, None, "revoke adds no key");
}

/// Inserting a key whose id exists (revoked or not) is `Conflict`, and the
/// stored key is unchanged.
pub async fn api_key_duplicate_id_is_conflict(driver: Arc<dyn Driver>) {
    let original = key("k-dup", ApiKeyScope::Read, at(1));
    insert(&driver, &original).await;
    let again = ApiKeyInsertParams {
        name: "impostor".into(),
        scope: ApiKeyScope::Admin,
        secret_hash: hash(0xee),
        ..key("k-dup", ApiKeyScope::Admin, at(2))
    };
    match driver.api_key_insert(&again).await {
        Err(DriverError::Conflict(_)) => {}
        other => panic!("duplicate API key id: expected Conflict, got {other:?}"),
    }
    assert_eq!(
        get(&driver, "k-dup").await,
        Some(row_of(&original)),
        "the stored key is unchanged"
    );

    revoke(&driver, "k-dup", at(3)).await;
    match driver.api_key_insert(&again).await {
        Err(DriverError::Conflict(_)) => {}
        other => panic!("reusing a revoked key's id: expected Conflict, got {other:?}"),
    }
    assert_eq!(list(&driver).await.len(), 1);
}
