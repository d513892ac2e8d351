//! Migrations and reachability.

use std::sync::Arc;

use rota_driver::Driver;

/// `migrate` is idempotent, also when run concurrently; afterwards every
/// known migration is applied, `ping` succeeds and `store_info` names the
/// same store as `name()`.
pub async fn migrate_is_idempotent_and_store_reachable(driver: Arc<dyn Driver>) {
    driver
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("second migrate failed: {e}"));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let d = Arc::clone(&driver);
        tasks.push(tokio::spawn(async move { d.migrate().await }));
    }
    for t in tasks {
        let r = t
            .await
            .unwrap_or_else(|e| panic!("migrate task panicked: {e}"));
        r.unwrap_or_else(|e| panic!("concurrent migrate failed: {e}"));
    }
    let status = driver
        .migration_status()
        .await
        .unwrap_or_else(|e| panic!("migration_status failed: {e}"));
    assert!(!status.is_empty(), "a migrated store lists its migrations");
    for m in &status {
        assert!(
            m.applied_at.is_some(),
            "migration {} ({}) not applied after migrate()",
            m.version,
            m.name
        );
    }
    let versions: Vec<i64> = status.iter().map(|m| m.version).collect();
    let mut sorted = versions.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        versions, sorted,
        "migration versions are listed once each, in order"
    );

    driver
        .ping()
        .await
        .unwrap_or_else(|e| panic!("ping failed: {e}"));
    let info = driver
        .store_info()
        .await
        .unwrap_or_else(|e| panic!("store_info failed: {e}"));
    assert_eq!(
        info.store,
        driver.name(),
        "store_info().store matches name()"
    );
    assert!(!driver.name().is_empty(), "name() is a short store name");
    assert!(!info.version.is_empty(), "store_info reports a version");

    // The store is usable and still empty.
    let none = driver
        .job_get(1)
        .await
        .unwrap_or_else(|e| panic!("job_get failed: {e}"));
    assert!(none.is_none(), "a fresh store has no jobs");
}
