//! Queue names and per-node queue settings.

use serde::{Deserialize, Serialize};

use crate::job::{MAX_NAME_LEN, ValidationError};

/// Most concurrent jobs one node runs for one queue.
pub const MAX_CONCURRENCY: u32 = 10_000;

/// Checks a queue name: 1..=128 bytes of letters, digits, `_`, `-`, `.`, `:`.
pub fn validate_queue_name(name: &str) -> Result<(), ValidationError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(ValidationError::new(
            "queue",
            format!("name must be 1..={MAX_NAME_LEN} bytes"),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
    {
        return Err(ValidationError::new(
            "queue",
            format!("name {name:?} contains {c:?}; use letters, digits, '_', '-', '.', ':'"),
        ));
    }
    Ok(())
}

/// How one node serves one queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// Queue name.
    pub name: String,
    /// Jobs this node runs at once from this queue (its worker pool size).
    pub concurrency: u32,
}

impl QueueConfig {
    /// A queue served with `concurrency` workers.
    pub fn new(name: impl Into<String>, concurrency: u32) -> Self {
        Self {
            name: name.into(),
            concurrency,
        }
    }

    /// Checks the name and the concurrency bounds.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_queue_name(&self.name)?;
        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            return Err(ValidationError::new(
                format!("queues.{}.concurrency", self.name),
                format!("must be between 1 and {MAX_CONCURRENCY}"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_rules() {
        assert!(QueueConfig::new("default", 4).validate().is_ok());
        assert!(QueueConfig::new("reports.eu", 1).validate().is_ok());
        assert!(QueueConfig::new("", 1).validate().is_err());
        assert!(QueueConfig::new("a b", 1).validate().is_err());
        assert!(QueueConfig::new("x'; drop table", 1).validate().is_err());
        assert!(QueueConfig::new("q", 0).validate().is_err());
    }
}
