//! `rota migrate [up|status]` against `--database`.

use std::sync::Arc;

use anyhow::Context as _;
use rota::Driver;
use rota::drivers::postgres::{PgDriver, PgOptions};
use rota::drivers::sqlite::{SqliteDriver, SqliteOptions};

use super::Ctx;
use crate::cli::{Format, MigrateAction};
use crate::config::redact_url;
use crate::exit::{Exit, Fail};
use crate::output;

/// Opens the store *without* applying migrations (`Store::open` always
/// applies them, which would make `status` useless).
async fn open_driver(url: &str) -> anyhow::Result<Arc<dyn Driver>> {
    let ctx = || format!("cannot open the store {}", redact_url(url));
    if url.starts_with("sqlite:") {
        let opts = SqliteOptions {
            migrate: false,
            ..SqliteOptions::default()
        };
        let d = SqliteDriver::open(url, opts).await.with_context(ctx)?;
        return Ok(Arc::new(d));
    }
    let (url, schema) = split_rota_params(url);
    let opts = PgOptions {
        schema,
        max_connections: 2,
        migrate: false,
        ..PgOptions::default()
    };
    let d = PgDriver::connect(&url, opts).await.with_context(ctx)?;
    Ok(Arc::new(d))
}

/// Removes Rota's own `rota_schema` / `rota_pool` query parameters from a
/// PostgreSQL URL (as `Store::open` does).
fn split_rota_params(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut schema = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| match p.split_once('=') {
            Some(("rota_schema", v)) => {
                schema = Some(v.to_owned());
                false
            }
            Some(("rota_pool", _)) => false,
            _ => !p.is_empty(),
        })
        .collect();
    if kept.is_empty() {
        (base.to_owned(), schema)
    } else {
        (format!("{base}?{}", kept.join("&")), schema)
    }
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

#[cfg(test)]
mod tests {
    #[test]
    fn rota_params_are_split_off() {
        assert_eq!(
            super::split_rota_params("postgres://h/db?sslmode=disable&rota_schema=s&rota_pool=3"),
            (
                "postgres://h/db?sslmode=disable".to_owned(),
                Some("s".to_owned())
            )
        );
        assert_eq!(
            super::split_rota_params("postgres://h/db"),
            ("postgres://h/db".to_owned(), None)
        );
    }
}
