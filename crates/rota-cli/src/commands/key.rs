//! `rota key create|list|revoke`, directly against the store: the first
//! key has to exist before a server may listen beyond loopback, so these
//! cannot depend on the API.

use rota::{ApiKeyScope, Client};
use rota_server::dto::{ApiKeyList, ApiKeyView, CreatedKey};

use super::Ctx;
use crate::cli::{Format, KeyCommand, Scope};
use crate::engine;
use crate::exit::{Exit, Fail};
use crate::output;

fn scope(s: Scope) -> ApiKeyScope {
    match s {
        Scope::Read => ApiKeyScope::Read,
        Scope::Write => ApiKeyScope::Write,
        Scope::Admin => ApiKeyScope::Admin,
    }
}

pub(crate) async fn run(cmd: KeyCommand, ctx: &Ctx) -> anyhow::Result<Exit> {
    let store = engine::open_store(&ctx.cfg.database()?).await?;
    // No queues and never started: only used to reach the key table.
    let client = Client::builder(store).build()?;
    match cmd {
        KeyCommand::Create { name, scope: s, .. } => {
            let created = client.create_api_key(&name, scope(s)).await?;
            let key = ApiKeyView::from(created.key);
            match ctx.format {
                Format::Json => output::json(&CreatedKey {
                    key,
                    token: created.token,
                })?,
                Format::Table => {
                    // The token alone on stdout (for `$(rota key create ...)`),
                    // the explanation on stderr.
                    output::line(&created.token)?;
                    output::note(&format!(
                        "created API key {} ({:?}, scope {}); the token above is shown only now",
                        key.id,
                        key.name,
                        key.scope.as_str()
                    ));
                }
            }
        }
        KeyCommand::List { .. } => {
            let keys: Vec<ApiKeyView> = client
                .api_keys()
                .await?
                .into_iter()
                .map(Into::into)
                .collect();
            match ctx.format {
                Format::Json => output::json(&ApiKeyList { keys })?,
                Format::Table => {
                    let mut t = output::table(&["ID", "NAME", "SCOPE", "CREATED", "REVOKED"]);
                    for k in &keys {
                        t.add_row(vec![
                            k.id.clone(),
                            k.name.clone(),
                            k.scope.as_str().to_owned(),
                            output::time(k.created_at),
                            output::or_dash(k.revoked_at.map(output::time)),
                        ]);
                    }
                    output::print_table(&t)?;
                }
            }
        }
        KeyCommand::Revoke { id, .. } => {
            let key = match client.revoke_api_key(&id).await {
                Ok(k) => ApiKeyView::from(k),
                Err(rota::Error::Lifecycle(_)) => {
                    return Err(
                        Fail::new(Exit::Failure, format!("no API key with id {id:?}")).into(),
                    );
                }
                Err(e) => return Err(e.into()),
            };
            match ctx.format {
                Format::Json => output::json(&key)?,
                Format::Table => output::line(&format!("API key {} revoked", key.id))?,
            }
        }
    }
    Ok(Exit::Success)
}
