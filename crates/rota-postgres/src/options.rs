//! Connection options and the schema-qualified names derived from them.

use std::time::Duration;

use rota_driver::{DriverError, Result};

/// Longest schema name accepted: the wake-up channel `rota_jobs_<schema>` must
/// fit PostgreSQL's 63-byte identifier limit.
pub const MAX_SCHEMA_LEN: usize = 53;

/// How [`PgDriver::connect`](crate::PgDriver::connect) sets up its pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Put Rota's tables in this schema (created if missing). `None` uses the
    /// connection's default `search_path` (normally `public`). Letters,
    /// digits and `_` only, not starting with a digit, at most
    /// [`MAX_SCHEMA_LEN`] bytes; case-sensitive.
    pub schema: Option<String>,
    /// Largest number of pooled connections. From five up, the driver
    /// keeps one of them checked out while inserts keep coming, and hands
    /// it back within half a second of the last (sqlx tests every
    /// connection handed back to its pool with a round trip), so
    /// [`PgDriver::pool`](crate::PgDriver::pool) may have one fewer for
    /// other uses meanwhile.
    pub max_connections: u32,
    /// How long a call waits for a free pooled connection before failing
    /// with [`DriverError::PoolTimedOut`]. Connecting waits as long for the
    /// first connection, then up to two seconds more to find out why it
    /// failed.
    pub acquire_timeout: Duration,
    /// Apply pending migrations while connecting.
    pub migrate: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            schema: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            migrate: true,
        }
    }
}

impl PgOptions {
    /// Default options with Rota's tables in `schema`.
    pub fn with_schema(schema: impl Into<String>) -> Self {
        Self {
            schema: Some(schema.into()),
            ..Self::default()
        }
    }
}

/// Checks a schema name so that it can be double-quoted safely.
pub fn validate_schema(name: &str) -> Result<()> {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let ok_start = name.chars().next().is_some_and(|c| !c.is_ascii_digit());
    if name.is_empty() || name.len() > MAX_SCHEMA_LEN || !ok_chars || !ok_start {
        return Err(DriverError::Database(format!(
            "invalid schema name {name:?}: use 1..={MAX_SCHEMA_LEN} ASCII letters, digits or '_', \
             not starting with a digit"
        )));
    }
    Ok(())
}

/// The names of Rota's objects, qualified with the schema when one is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tables {
    /// `rota_jobs`.
    pub(crate) jobs: String,
    /// `rota_jobs_id_seq`.
    pub(crate) jobs_seq: String,
    /// `rota_queues`.
    pub(crate) queues: String,
    /// `rota_leader`.
    pub(crate) leader: String,
    /// `rota_leader_terms`.
    pub(crate) leader_terms: String,
    /// `rota_nodes`.
    pub(crate) nodes: String,
    /// `rota_api_keys`.
    pub(crate) api_keys: String,
    /// `rota_migrations`.
    pub(crate) migrations: String,
    /// `rota_executions`.
    pub(crate) executions: String,
    /// `rota_schedules`.
    pub(crate) schedules: String,
    /// `rota_schedule_fires`.
    pub(crate) schedule_fires: String,
    /// `rota_webhooks`.
    pub(crate) webhooks: String,
    /// `rota_webhooks_active`: a view that exists exactly while webhooks
    /// exist; the event triggers' `WHEN` clauses test for it.
    pub(crate) webhooks_active: String,
    /// `rota_events`.
    pub(crate) events: String,
    /// `rota_events_seq`: the published ids of events, handed out when an
    /// event is first listed (so they increase in commit order).
    pub(crate) events_seq: String,
    /// `rota_deliveries`.
    pub(crate) deliveries: String,
    /// `rota_claim(queue, labels, kinds, max, token, expires, now, node)`:
    /// the claim, planned without the table's statistics.
    pub(crate) claim: String,
    /// `rota_due_candidates(now, max)`: the promotion's candidate rows,
    /// locked, planned without the table's statistics.
    pub(crate) due_candidates: String,
    /// The NOTIFY channel (unquoted): `rota_jobs` or `rota_jobs_<schema>`.
    pub(crate) channel: String,
    /// The schema, validated.
    pub(crate) schema: Option<String>,
}

impl Tables {
    /// Names for `schema` (validated here).
    pub(crate) fn new(schema: Option<&str>) -> Result<Self> {
        if let Some(s) = schema {
            validate_schema(s)?;
        }
        let q = |name: &str| match schema {
            Some(s) => format!("\"{s}\".{name}"),
            None => name.to_owned(),
        };
        Ok(Self {
            jobs: q("rota_jobs"),
            jobs_seq: match schema {
                Some(s) => format!("\"{s}\".rota_jobs_id_seq"),
                None => "rota_jobs_id_seq".to_owned(),
            },
            queues: q("rota_queues"),
            leader: q("rota_leader"),
            leader_terms: q("rota_leader_terms"),
            nodes: q("rota_nodes"),
            api_keys: q("rota_api_keys"),
            migrations: q("rota_migrations"),
            executions: q("rota_executions"),
            schedules: q("rota_schedules"),
            schedule_fires: q("rota_schedule_fires"),
            webhooks: q("rota_webhooks"),
            webhooks_active: q("rota_webhooks_active"),
            events: q("rota_events"),
            events_seq: q("rota_events_seq"),
            deliveries: q("rota_deliveries"),
            claim: q("rota_claim"),
            due_candidates: q("rota_due_candidates"),
            channel: match schema {
                Some(s) => format!("rota_jobs_{s}"),
                None => "rota_jobs".to_owned(),
            },
            schema: schema.map(str::to_owned),
        })
    }

    /// The schema double-quoted, if set.
    pub(crate) fn quoted_schema(&self) -> Option<String> {
        self.schema.as_ref().map(|s| format!("\"{s}\""))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        for ok in ["rota", "Rota_2", "_x", &"a".repeat(MAX_SCHEMA_LEN)] {
            assert!(validate_schema(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "a-b",
            "a\"b",
            "a b",
            "é",
            &"a".repeat(MAX_SCHEMA_LEN + 1),
        ] {
            assert!(validate_schema(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn qualified_names() {
        let t = Tables::new(Some("s1")).unwrap();
        assert_eq!(t.jobs, "\"s1\".rota_jobs");
        assert_eq!(t.channel, "rota_jobs_s1");
        assert_eq!(t.nodes, "\"s1\".rota_nodes");
        assert_eq!(t.api_keys, "\"s1\".rota_api_keys");
        assert_eq!(t.executions, "\"s1\".rota_executions");
        assert_eq!(t.schedules, "\"s1\".rota_schedules");
        assert_eq!(t.schedule_fires, "\"s1\".rota_schedule_fires");
        assert_eq!(t.webhooks, "\"s1\".rota_webhooks");
        assert_eq!(t.webhooks_active, "\"s1\".rota_webhooks_active");
        assert_eq!(t.events, "\"s1\".rota_events");
        assert_eq!(t.events_seq, "\"s1\".rota_events_seq");
        assert_eq!(t.deliveries, "\"s1\".rota_deliveries");
        let t = Tables::new(None).unwrap();
        assert_eq!(t.jobs, "rota_jobs");
        assert_eq!(t.channel, "rota_jobs");
    }
}
