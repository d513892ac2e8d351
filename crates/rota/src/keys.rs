//! API keys: `rota_<id>_<secret>`. Only the SHA-256 of the secret is
//! stored; verification compares hashes in constant time.

use rota_driver::{ApiKeyInsertParams, ApiKeyRow, ApiKeyScope};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::client::Client;
use crate::error::Result;

/// A freshly created key: the only time its secret is visible.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The stored row.
    pub key: ApiKeyRow,
    /// The full token to hand to the user (`rota_<id>_<secret>`).
    pub token: String,
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Splits `rota_<id>_<secret>`.
fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("rota_")?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

impl Client {
    /// Creates an API key with `scope`; returns its token once.
    pub async fn create_api_key(&self, name: &str, scope: ApiKeyScope) -> Result<NewApiKey> {
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err(rota_core::ValidationError::new(
                "name",
                "must be 1..=128 printable characters",
            )
            .into());
        }
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let key = self
            .driver()
            .api_key_insert(&ApiKeyInsertParams {
                id: id.clone(),
                name: name.to_owned(),
                scope,
                secret_hash: hash(&secret),
                now: self.config().clock.now(),
            })
            .await?;
        Ok(NewApiKey {
            key,
            token: format!("rota_{id}_{secret}"),
        })
    }

    /// Every API key (without secrets).
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRow>> {
        Ok(self.driver().api_key_list().await?)
    }

    /// Revokes a key.
    pub async fn revoke_api_key(&self, id: &str) -> Result<ApiKeyRow> {
        Ok(self
            .driver()
            .api_key_revoke(id, self.config().clock.now())
            .await?)
    }

    /// Checks a bearer token; returns the key when it is valid and not
    /// revoked. Malformed tokens and unknown ids are simply `None`.
    pub async fn verify_api_key(&self, token: &str) -> Result<Option<ApiKeyRow>> {
        let Some((id, secret)) = parse(token) else {
            return Ok(None);
        };
        let Some(key) = self.driver().api_key_get(id).await? else {
            return Ok(None);
        };
        let ok: bool = hash(secret)
            .as_bytes()
            .ct_eq(key.secret_hash.as_bytes())
            .into();
        Ok((ok && key.revoked_at.is_none()).then_some(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_format() {
        assert_eq!(parse("rota_abc_def"), Some(("abc", "def")));
        assert_eq!(parse("rota__def"), None);
        assert_eq!(parse("nope_abc_def"), None);
        assert_eq!(parse("rota_abc_"), None);
        assert_eq!(hash("x").len(), 64);
    }
}
