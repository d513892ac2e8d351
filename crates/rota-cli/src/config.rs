//! Settings: defaults < TOML file (`--config`) < `ROTA_*` environment <
//! flags.
//!
//! figment merges the layers and tags every value with the layer it came
//! from, so a bad value is reported with its source ("invalid listen
//! address \"x\" from environment variable ROTA_LISTEN"). Values are read
//! and checked lazily, per key, by the command that uses them: a stray
//! `ROTA_LISTEN` must not break `rota job list`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format as _, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use rota::QueueConfig;

/// Every setting key (config file keys; `ROTA_<KEY>` in the environment;
/// `--<key-with-dashes>` as a flag).
pub(crate) const KEYS: &[&str] = &[
    "database",
    "listen",
    "server",
    "api_key",
    "queues",
    "labels",
    "node_id",
    "allow_shell",
    "shutdown_grace",
    "lease",
    "output_cap",
    "shell_timeout",
    "shell_kill_grace",
    "body_limit",
    "accept_unknown_kinds",
    "log",
];

/// Default store.
pub(crate) const DEFAULT_DATABASE: &str = "sqlite://rota.db";
/// Default listen address: loopback only, so a fresh install is not
/// reachable from the network.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:7070";
/// Default server for CLI commands.
pub(crate) const DEFAULT_SERVER: &str = "http://127.0.0.1:7070";
/// Default queues of a node.
pub(crate) const DEFAULT_QUEUES: &str = "default=10";
/// Worker-pool size of a queue named without `=N`.
pub(crate) const DEFAULT_CONCURRENCY: u32 = 10;

const ENV_PREFIX: &str = "ROTA_";
/// The name of the flags layer's metadata (how a value is known to come
/// from a flag).
const FLAG_LAYER: &str = "command-line flag";

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Built-in default.
    Default,
    /// The `--config` file.
    File(PathBuf),
    /// An environment variable (its full name).
    Env(String),
    /// A flag (its name without dashes).
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the default"),
            Origin::File(p) => write!(f, "config file {}", p.display()),
            Origin::Env(v) => write!(f, "environment variable {v}"),
            Origin::Flag(k) => write!(f, "flag --{k}"),
        }
    }
}

/// A bad setting; always a usage error (exit 2).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// A value that does not parse or breaks a rule.
    #[error("invalid {what} {value:?} from {origin}: {why}")]
    Invalid {
        what: &'static str,
        value: String,
        origin: Origin,
        why: String,
    },
    /// The config file is missing, unreadable or malformed.
    #[error("config file {}: {why}", path.display())]
    File { path: PathBuf, why: String },
}

/// Values given as flags: the top layer.
#[derive(Debug, Default, Clone)]
pub(crate) struct Flags(Dict);

impl Flags {
    /// Sets `key` when the flag was given.
    pub(crate) fn set(&mut self, key: &'static str, value: &Option<String>) {
        if let Some(v) = value {
            self.0.insert(key.to_owned(), Value::from(v.clone()));
        }
    }

    /// Sets a boolean `key`.
    pub(crate) fn set_bool(&mut self, key: &'static str, value: bool) {
        self.0.insert(key.to_owned(), Value::from(value));
    }
}

impl Provider for Flags {
    fn metadata(&self) -> Metadata {
        Metadata::named(FLAG_LAYER)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}

/// The merged settings.
#[derive(Debug)]
pub(crate) struct Config {
    fig: Figment,
}

impl Config {
    /// Merges the file (if any), the `ROTA_*` environment and `flags`.
    /// Unknown keys in the file are errors (a typo would otherwise be
    /// silently ignored); unknown `ROTA_*` variables are ignored, since
    /// other tools share the prefix.
    pub(crate) fn load(file: Option<&Path>, flags: Flags) -> Result<Config, ConfigError> {
        let mut fig = Figment::new();
        if let Some(path) = file {
            let file_err = |why: String| ConfigError::File {
                path: path.to_owned(),
                why,
            };
            if !path.is_file() {
                return Err(file_err("not found".into()));
            }
            let toml = Toml::file_exact(path);
            let data = toml.data().map_err(|e| file_err(e.kind.to_string()))?;
            for key in data.values().flat_map(|d| d.keys()) {
                if !KEYS.contains(&key.as_str()) {
                    return Err(file_err(format!(
                        "unknown key {key:?}; known keys: {}",
                        KEYS.join(", ")
                    )));
                }
            }
            fig = fig.merge(toml);
        }
        let fig = fig.merge(Env::prefixed(ENV_PREFIX).only(KEYS)).merge(flags);
        Ok(Config { fig })
    }

    fn origin(&self, v: &Value, key: &str) -> Origin {
        let Some(md) = self.fig.get_metadata(v.tag()) else {
            return Origin::Default;
        };
        if md.name == FLAG_LAYER {
            return Origin::Flag(key.replace('_', "-"));
        }
        match &md.source {
            Some(Source::File(p)) => Origin::File(p.clone()),
            _ => Origin::Env(format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())),
        }
    }

    fn lookup(&self, key: &str) -> Option<(Value, Origin)> {
        let v = self.fig.find_value(key).ok()?;
        let origin = self.origin(&v, key);
        Some((v, origin))
    }

    /// A scalar setting as text, with its origin.
    fn text(&self, key: &str, what: &'static str) -> Result<Option<(String, Origin)>, ConfigError> {
        let Some((v, origin)) = self.lookup(key) else {
            return Ok(None);
        };
        match scalar_text(&v) {
            Some(s) => Ok(Some((s, origin))),
            None => Err(ConfigError::Invalid {
                what,
                value: describe(&v),
                origin,
                why: "expected a single value".into(),
            }),
        }
    }

    /// Parses a scalar setting with `parse`, or `default` when unset.
    fn parsed<T>(
        &self,
        key: &str,
        what: &'static str,
        default: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let (s, origin) = self
            .text(key, what)?
            .unwrap_or_else(|| (default.to_owned(), Origin::Default));
        parse(&s).map_err(|why| ConfigError::Invalid {
            what,
            value: s,
            origin,
            why,
        })
    }

    /// The store URL.
    pub(crate) fn database(&self) -> Result<String, ConfigError> {
        self.parsed("database", "database URL", DEFAULT_DATABASE, |s| {
            let ok = ["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|p| s.starts_with(p));
            if ok {
                Ok(s.to_owned())
            } else {
                Err("expected sqlite://PATH or postgres://USER@HOST/DB".into())
            }
        })
        .map_err(redact_database)
    }

    /// The address(es) to listen on (a host name may resolve to several;
    /// the first is used) and the text they came from.
    pub(crate) fn listen(&self) -> Result<(Vec<SocketAddr>, String), ConfigError> {
        self.parsed("listen", "listen address", DEFAULT_LISTEN, |s| {
            parse_listen(s).map(|a| (a, s.to_owned()))
        })
    }

    /// The API server's base URL for CLI commands.
    pub(crate) fn server(&self) -> Result<reqwest::Url, ConfigError> {
        self.parsed("server", "server URL", DEFAULT_SERVER, parse_server_url)
    }

    /// The API key for CLI commands (empty means none).
    pub(crate) fn api_key(&self) -> Result<Option<String>, ConfigError> {
        let key = self.text("api_key", "API key").map_err(|e| match e {
            ConfigError::Invalid { what, origin, .. } => ConfigError::Invalid {
                what,
                value: "(hidden)".into(),
                origin,
                why: "expected a single value".into(),
            },
            other => other,
        })?;
        Ok(key
            .map(|(k, _)| k.trim().to_owned())
            .filter(|k| !k.is_empty()))
    }

    /// Queues with their concurrency. Accepts `"a=4,b"`, a TOML list of
    /// such items, or a TOML table `{ a = 4, b = 10 }`.
    pub(crate) fn queues(&self) -> Result<Vec<QueueConfig>, ConfigError> {
        let what = "queue list";
        let Some((v, origin)) = self.lookup("queues") else {
            return parse_queues(DEFAULT_QUEUES).map_err(|why| ConfigError::Invalid {
                what,
                value: DEFAULT_QUEUES.into(),
                origin: Origin::Default,
                why,
            });
        };
        let text = match &v {
            Value::Dict(_, d) => d
                .iter()
                .map(|(k, v)| match scalar_text(v) {
                    Some(n) => format!("{k}={n}"),
                    None => format!("{k}=?"),
                })
                .collect::<Vec<_>>()
                .join(","),
            Value::Array(_, items) => items
                .iter()
                .map(|i| scalar_text(i).unwrap_or_else(|| "?".into()))
                .collect::<Vec<_>>()
                .join(","),
            other => scalar_text(other).unwrap_or_default(),
        };
        parse_queues(&text).map_err(|why| ConfigError::Invalid {
            what,
            value: text,
            origin,
            why,
        })
    }

    /// Node labels. Accepts `"k=v,k2=v2"` or a TOML table.
    pub(crate) fn labels(&self) -> Result<BTreeMap<String, String>, ConfigError> {
        let what = "label list";
        let Some((v, origin)) = self.lookup("labels") else {
            return Ok(BTreeMap::new());
        };
        let text = match &v {
            Value::Dict(_, d) => d
                .iter()
                .map(|(k, v)| format!("{k}={}", scalar_text(v).unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(","),
            other => scalar_text(other).unwrap_or_default(),
        };
        parse_labels(&text).map_err(|why| ConfigError::Invalid {
            what,
            value: text,
            origin,
            why,
        })
    }

    /// An optional text setting (empty means unset).
    pub(crate) fn opt_text(
        &self,
        key: &str,
        what: &'static str,
    ) -> Result<Option<String>, ConfigError> {
        Ok(self
            .text(key, what)?
            .map(|(s, _)| s.trim().to_owned())
            .filter(|s| !s.is_empty()))
    }

    /// A yes/no setting; `None` when unset.
    pub(crate) fn flag(&self, key: &str, what: &'static str) -> Result<Option<bool>, ConfigError> {
        let Some((s, origin)) = self.text(key, what)? else {
            return Ok(None);
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "no" | "off" => Ok(Some(false)),
            _ => Err(ConfigError::Invalid {
                what,
                value: s,
                origin,
                why: "expected true or false".into(),
            }),
        }
    }

    /// A duration setting, `default` when unset.
    pub(crate) fn duration(
        &self,
        key: &str,
        what: &'static str,
        default: &str,
    ) -> Result<Duration, ConfigError> {
        self.parsed(key, what, default, parse_duration)
    }

    /// An optional duration setting.
    pub(crate) fn opt_duration(
        &self,
        key: &str,
        what: &'static str,
    ) -> Result<Option<Duration>, ConfigError> {
        match self.text(key, what)? {
            None => Ok(None),
            Some((s, _)) if s.trim().is_empty() => Ok(None),
            Some(_) => self.duration(key, what, "").map(Some),
        }
    }

    /// A byte-size setting, `default` when unset.
    pub(crate) fn size(
        &self,
        key: &str,
        what: &'static str,
        default: &str,
    ) -> Result<usize, ConfigError> {
        self.parsed(key, what, default, |s| {
            parse_size(s).and_then(|n| usize::try_from(n).map_err(|_| "too large".into()))
        })
    }
}

/// Never prints a database password in an error.
fn redact_database(e: ConfigError) -> ConfigError {
    match e {
        ConfigError::Invalid {
            what,
            value,
            origin,
            why,
        } => ConfigError::Invalid {
            what,
            value: redact_url(&value),
            origin,
            why,
        },
        other => other,
    }
}

/// `scheme://user:secret@host/...` → `scheme://user:***@host/...`, for
/// logs and messages.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// A scalar value as text (numbers and booleans from env vars or TOML
/// become their usual spelling).
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(_, s) => Some(s.clone()),
        Value::Char(_, c) => Some(c.to_string()),
        Value::Bool(_, b) => Some(b.to_string()),
        Value::Num(_, n) => n
            .to_u128()
            .map(|u| u.to_string())
            .or_else(|| n.to_i128().map(|i| i.to_string()))
            .or_else(|| n.to_f64().map(|f| f.to_string())),
        Value::Empty(..) => Some(String::new()),
        Value::Dict(..) | Value::Array(..) => None,
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Dict(..) => "(a table)".into(),
        Value::Array(..) => "(a list)".into(),
        other => scalar_text(other).unwrap_or_default(),
    }
}

/// `30s`, `10m`, `1h30m`, `2d`, `PT10M`, or whole seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("expected a duration such as 30s, 10m or 1h30m".into());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let signed = match t.parse::<jiff::SignedDuration>() {
        Ok(d) => d,
        // Days ("2d") only parse as a span; a day is 24 hours here.
        Err(_) => t
            .parse::<jiff::Span>()
            .ok()
            .and_then(|s| {
                s.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                    .ok()
            })
            .ok_or_else(|| "expected a duration such as 30s, 10m or 1h30m".to_owned())?,
    };
    Duration::try_from(signed).map_err(|_| "must not be negative".to_owned())
}

/// `1048576`, `64KiB`, `1MiB`, `1MB`, `2G` (binary multiples either way:
/// these are buffer sizes, not disk marketing).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| "expected a size such as 65536, 64KiB or 1MiB".to_owned())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown unit {other:?}; use B, KiB, MiB or GiB")),
    };
    n.checked_mul(mult).ok_or_else(|| "too large".to_owned())
}

/// `KEY=VALUE` with a non-empty key.
pub(crate) fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// `name[=concurrency],...`; empty means no queue.
pub(crate) fn parse_queues(s: &str) -> Result<Vec<QueueConfig>, String> {
    let mut out: Vec<QueueConfig> = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, n) = match item.split_once('=') {
            Some((name, n)) => {
                let n = n.trim().parse::<u32>().map_err(|_| {
                    format!(
                        "concurrency of queue {:?} must be a positive integer",
                        name.trim()
                    )
                })?;
                (name.trim(), n)
            }
            None => (item, DEFAULT_CONCURRENCY),
        };
        let q = QueueConfig::new(name, n);
        q.validate()
            .map_err(|e| format!("queue {name:?}: {}", e.message))?;
        if out.iter().any(|o| o.name == q.name) {
            return Err(format!("queue {name:?} is listed twice"));
        }
        out.push(q);
    }
    Ok(out)
}

/// `key=value,...`.
pub(crate) fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(|i| parse_kv(i).map(|(k, v)| (k, v.trim().to_owned())))
        .collect()
}

fn parse_listen(s: &str) -> Result<Vec<SocketAddr>, String> {
    const HINT: &str = "expected HOST:PORT, e.g. 127.0.0.1:7070 or 0.0.0.0:7070";
    if let Ok(a) = s.trim().parse::<SocketAddr>() {
        return Ok(vec![a]);
    }
    // Host names such as localhost:7070 go through the system resolver.
    let addrs: Vec<SocketAddr> = s
        .trim()
        .to_socket_addrs()
        .map_err(|_| HINT.to_owned())?
        .collect();
    if addrs.is_empty() {
        return Err(HINT.into());
    }
    Ok(addrs)
}

fn parse_server_url(s: &str) -> Result<reqwest::Url, String> {
    let t = s.trim();
    // `127.0.0.1:7070` is accepted as `http://127.0.0.1:7070`.
    let with_scheme = if t.contains("://") {
        t.to_owned()
    } else {
        format!("http://{t}")
    };
    let url = reqwest::Url::parse(&with_scheme)
        .map_err(|e| format!("{e}; expected e.g. http://127.0.0.1:7070"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the scheme must be http or https".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("PT1M"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1 MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("1TB").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn queues_and_labels() {
        let q = parse_queues("default, reports=8").unwrap();
        assert_eq!(
            q.iter()
                .map(|q| (q.name.as_str(), q.concurrency))
                .collect::<Vec<_>>(),
            [("default", DEFAULT_CONCURRENCY), ("reports", 8)]
        );
        assert!(parse_queues("").unwrap().is_empty());
        assert!(parse_queues("a=x").is_err());
        assert!(parse_queues("a=0").is_err());
        assert!(parse_queues("a,a").is_err());
        assert!(parse_queues("bad name").is_err());
        let l = parse_labels("region=eu, gpu=true").unwrap();
        assert_eq!(l.get("region").map(String::as_str), Some("eu"));
        assert_eq!(l.len(), 2);
        assert!(parse_labels("novalue").is_err());
        assert!(parse_labels("=v").is_err());
    }

    #[test]
    fn listen_and_server() {
        assert_eq!(parse_listen("127.0.0.1:7070").unwrap().len(), 1);
        assert!(parse_listen("x").is_err());
        assert!(parse_listen("127.0.0.1").is_err());
        assert_eq!(
            parse_server_url("127.0.0.1:1").unwrap().as_str(),
            "http://127.0.0.1:1/"
        );
        assert!(parse_server_url("ftp://h").is_err());
        assert!(parse_server_url("http://").is_err());
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redact_url("sqlite://a.db"), "sqlite://a.db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn flags_win_and_name_themselves() {
        let mut f = Flags::default();
        f.set("listen", &Some("nope".into()));
        let c = Config::load(None, f).unwrap();
        let e = c.listen().unwrap_err().to_string();
        assert!(
            e.starts_with("invalid listen address \"nope\" from flag --listen"),
            "{e}"
        );
        let c = Config::load(None, Flags::default()).unwrap();
        assert_eq!(
            c.duration("x_unset", "x", "30s").unwrap(),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn file_layer_names_the_file_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rota.toml");
        std::fs::write(
            &path,
            "listen = \"bad\"\nqueues = { default = 2, reports = 3 }\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), Flags::default()).unwrap();
        let e = c.listen().unwrap_err().to_string();
        assert!(
            e.contains(&format!("from config file {}", path.display())),
            "{e}"
        );
        let q = c.queues().unwrap();
        assert_eq!(q.len(), 2);
        std::fs::write(&path, "listn = \"x\"\n").unwrap();
        let e = Config::load(Some(&path), Flags::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key \"listn\""), "{e}");
        let e = Config::load(Some(&dir.path().join("missing.toml")), Flags::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not found"), "{e}");
    }
}
