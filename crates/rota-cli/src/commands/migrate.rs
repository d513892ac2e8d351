//! `rota migrate [up|status]` against `--database`.

use std::sync::Arc;

use anyhow::Context as _;
use rota::Driver;

use super::Ctx;
use crate::cli::{Format, MigrateAction};
use crate::config::redact_url;
use crate::exit::{Exit, Fail};
use crate::output;

/// Opens the store *without* applying migrations, so `status` changes
/// nothing.
async fn open_driver(url: &str) -> anyhow::Result<Arc<dyn Driver>> {
    let store = rota::Store::open_with(url, false)
        .await
        .with_context(|| format!("cannot open the store {}", redact_url(url)))?;
    Ok(store.driver().clone())
}

pub(crate) async fn run(action: Option<MigrateAction>, ctx: &Ctx) -> anyhow::Result<Exit> {
    let url = ctx.cfg.database()?;
    let driver = open_driver(&url).await?;
    let action = action.unwrap_or(MigrateAction::Up);
    let before = driver
        .migration_status()
        .await
        .context("reading migrations")?;
    if matches!(action, MigrateAction::Up) {
        driver.migrate().await.context("applying migrations")?;
    }
    let after = driver
        .migration_status()
        .await
        .context("reading migrations")?;
    match ctx.format {
        Format::Json => output::json(&after)?,
        Format::Table => {
            let mut t = output::table(&["VERSION", "NAME", "APPLIED"]);
            for m in &after {
                t.add_row(vec![
                    m.version.to_string(),
                    m.name.clone(),
                    output::or_dash(m.applied_at.map(output::time)),
                ]);
            }
            output::print_table(&t)?;
            if matches!(action, MigrateAction::Up) {
                let applied = after
                    .iter()
                    .filter(|m| m.applied_at.is_some())
                    .count()
                    .saturating_sub(before.iter().filter(|m| m.applied_at.is_some()).count());
                output::note(&format!("{applied} migration(s) applied"));
            }
        }
    }
    let pending = after.iter().filter(|m| m.applied_at.is_none()).count();
    if matches!(action, MigrateAction::Status) && pending > 0 {
        output::note(&format!(
            "{pending} migration(s) pending: run `rota migrate up`"
        ));
    }
    if matches!(action, MigrateAction::Up) && pending > 0 {
        return Err(Fail::new(
            Exit::Failure,
            format!("{pending} migration(s) still pending"),
        )
        .into());
    }
    Ok(Exit::Success)
}
