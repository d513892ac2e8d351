//! The arguments of a `shell` job and their validation.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rota::ValidationError;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// The fields a `shell` job's args may carry, for error messages.
const FIELDS: &str = "command, script, stdin, env, cwd, user, timeout";

/// Longest timeout accepted (ten years): anything longer is a mistake.
const MAX_TIMEOUT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Arguments of a `shell` job.
///
/// Exactly one of [`command`](Self::command) (an argv, run directly,
/// without a shell) and [`script`](Self::script) (run by `/bin/sh -c`) is
/// set. Check with [`validate`](Self::validate), or decode and check at once
/// with [`parse`](Self::parse).
///
/// ```json
/// {"command": ["pg_dump", "-Fc", "app"], "env": {"PGHOST": "db"}, "timeout": "30m"}
/// {"script": "tar czf /backup/x.tgz /srv && echo done", "timeout": 600}
/// ```
///
/// `Debug` never shows `env` values or `stdin` (they may hold secrets).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellArgs {
    /// The program and its arguments, executed directly (no shell, so no
    /// interpolation). The program is looked up in the child's `PATH`
    /// unless it contains a `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// A script run by `/bin/sh -c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Text written to the process's standard input, which is then closed.
    /// Without it, standard input is `/dev/null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// Environment variables set for the process, on top of the small base
    /// environment described in the crate docs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Absolute working directory; default: the worker's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Run as this user (uid and primary gid from the user database,
    /// supplementary groups dropped). Only on workers running as root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Per-attempt time limit enforced by the shell kind itself (the
    /// process group is terminated): seconds as a number, or a string such
    /// as `"90s"`, `"5m"`, `"1h30m"`, `"PT10M"` or `"2.5"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<ShellTimeout>,
}

impl fmt::Debug for ShellArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShellArgs")
            .field("command", &self.command)
            .field("script", &self.script)
            .field("stdin", &self.stdin.as_ref().map(|s| Redacted(s.len())))
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .field("user", &self.user)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Shows only the length of a secret.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

impl ShellArgs {
    /// Runs `argv` directly.
    pub fn command<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            command: Some(argv.into_iter().map(Into::into).collect()),
            ..Self::default()
        }
    }

    /// Runs `script` with `/bin/sh -c`.
    pub fn script(script: impl Into<String>) -> Self {
        Self {
            script: Some(script.into()),
            ..Self::default()
        }
    }

    /// Decodes job args and validates them. Errors name the field at fault
    /// (`args` when the value is not an object).
    pub fn parse(value: &serde_json::Value) -> Result<Self, ValidationError> {
        let args = match Self::deserialize(value) {
            Ok(args) => args,
            Err(e) => return Err(diagnose(value, &e)),
        };
        args.validate()?;
        Ok(args)
    }

    /// Checks every rule; names the first field at fault.
    ///
    /// - exactly one of `command` and `script`; `command` non-empty with a
    ///   non-empty program; `script` non-empty;
    /// - no NUL byte in any string;
    /// - `env` names are `[A-Za-z_][A-Za-z0-9_]*`;
    /// - `cwd` is an absolute path; `user` is a plausible user name;
    /// - `timeout` is a positive duration of at most ten years.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match (&self.command, &self.script) {
            (Some(_), Some(_)) => {
                return Err(ValidationError::new(
                    "command",
                    "set exactly one of `command` and `script`, not both",
                ));
            }
            (None, None) => {
                return Err(ValidationError::new(
                    "command",
                    "one of `command` (an argv) or `script` is required",
                ));
            }
            (Some(argv), None) => {
                let Some(program) = argv.first() else {
                    return Err(ValidationError::new(
                        "command",
                        "must not be empty: give at least the program",
                    ));
                };
                if program.is_empty() {
                    return Err(ValidationError::new(
                        "command[0]",
                        "the program must not be empty",
                    ));
                }
                for (i, arg) in argv.iter().enumerate() {
                    no_nul(&format!("command[{i}]"), arg)?;
                }
            }
            (None, Some(script)) => {
                if script.trim().is_empty() {
                    return Err(ValidationError::new("script", "must not be empty"));
                }
                no_nul("script", script)?;
            }
        }
        if let Some(stdin) = &self.stdin {
            no_nul("stdin", stdin)?;
        }
        for (name, value) in &self.env {
            validate_env_name(name)?;
            if value.contains('\0') {
                // Never echo the value: it may be a secret.
                return Err(ValidationError::new(
                    format!("env.{name}"),
                    "value must not contain NUL bytes",
                ));
            }
        }
        if let Some(cwd) = &self.cwd {
            no_nul("cwd", cwd)?;
            if !cwd.starts_with('/') {
                return Err(ValidationError::new(
                    "cwd",
                    "must be an absolute path (starting with /)",
                ));
            }
        }
        if let Some(user) = &self.user {
            validate_user(user)?;
        }
        self.timeout_duration()?;
        Ok(())
    }

    /// The `timeout` as a duration, if set and valid.
    pub fn timeout_duration(&self) -> Result<Option<Duration>, ValidationError> {
        self.timeout
            .as_ref()
            .map(ShellTimeout::to_duration)
            .transpose()
    }
}

fn no_nul(field: &str, s: &str) -> Result<(), ValidationError> {
    if s.contains('\0') {
        return Err(ValidationError::new(field, "must not contain NUL bytes"));
    }
    Ok(())
}

fn validate_env_name(name: &str) -> Result<(), ValidationError> {
    let mut chars = name.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        _ => false,
    };
    if ok && name.len() <= 256 {
        Ok(())
    } else {
        Err(ValidationError::new(
            "env",
            format!(
                "invalid variable name {:?}: must match [A-Za-z_][A-Za-z0-9_]* (at most 256 bytes)",
                truncate(name, 64)
            ),
        ))
    }
}

fn validate_user(user: &str) -> Result<(), ValidationError> {
    no_nul("user", user)?;
    let ok = !user.is_empty()
        && user.len() <= 256
        && !user.starts_with('-')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$' | '@'));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "user",
            "must be a user name (letters, digits, _ - . @ $; not starting with -)",
        ))
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Turns a decoding error into one naming the field at fault, by decoding
/// each field on its own.
fn diagnose(value: &serde_json::Value, err: &serde_json::Error) -> ValidationError {
    let Some(obj) = value.as_object() else {
        return ValidationError::new("args", "must be a JSON object");
    };
    for (key, v) in obj {
        let res = match key.as_str() {
            "command" => Option::<Vec<String>>::deserialize(v).err(),
            "script" | "stdin" | "cwd" | "user" => Option::<String>::deserialize(v).err(),
            "env" => BTreeMap::<String, String>::deserialize(v).err(),
            "timeout" => Option::<ShellTimeout>::deserialize(v).err(),
            other => {
                return ValidationError::new(
                    truncate(other, 64),
                    format!("unknown field; expected one of: {FIELDS}"),
                );
            }
        };
        if let Some(e) = res {
            return ValidationError::new(key.as_str(), e.to_string());
        }
    }
    ValidationError::new("args", err.to_string())
}

/// A timeout as given in job args: a number of seconds or a duration string.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ShellTimeout {
    /// Seconds (fractions allowed).
    Seconds(f64),
    /// A duration string: `"90s"`, `"5m"`, `"1h30m"`, `"PT10M"`, `"2.5"`.
    Text(String),
}

impl ShellTimeout {
    /// The duration; errors (for field `timeout`) unless positive, finite
    /// and at most ten years.
    pub fn to_duration(&self) -> Result<Duration, ValidationError> {
        let d = match self {
            Self::Seconds(s) => seconds(*s)?,
            Self::Text(t) => {
                let t = t.trim();
                if let Ok(s) = t.parse::<f64>() {
                    seconds(s)?
                } else {
                    let sd: jiff::SignedDuration = t.parse().map_err(|e| {
                        ValidationError::new(
                            "timeout",
                            format!(
                                "cannot parse {:?} as a duration (e.g. \"90s\", \"5m\", \"1h30m\"): {e}",
                                truncate(t, 64)
                            ),
                        )
                    })?;
                    Duration::try_from(sd)
                        .map_err(|_| ValidationError::new("timeout", "must be positive"))?
                }
            }
        };
        if d.is_zero() {
            return Err(ValidationError::new("timeout", "must be positive"));
        }
        if d > MAX_TIMEOUT {
            return Err(ValidationError::new("timeout", "must be at most ten years"));
        }
        Ok(d)
    }
}

fn seconds(s: f64) -> Result<Duration, ValidationError> {
    if !s.is_finite() || s <= 0.0 {
        return Err(ValidationError::new(
            "timeout",
            "must be a positive number of seconds",
        ));
    }
    Duration::try_from_secs_f64(s)
        .map_err(|_| ValidationError::new("timeout", "must be at most ten years"))
}

impl<'de> Deserialize<'de> for ShellTimeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ShellTimeout;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of seconds or a duration string such as \"90s\"")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ShellTimeout, E> {
                Ok(ShellTimeout::Seconds(v as f64))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ShellTimeout, E> {
                Ok(ShellTimeout::Seconds(v as f64))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ShellTimeout, E> {
                Ok(ShellTimeout::Seconds(v))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ShellTimeout, E> {
                Ok(ShellTimeout::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn field(v: serde_json::Value) -> String {
        ShellArgs::parse(&v).unwrap_err().field
    }

    #[test]
    fn good_args_parse() {
        let a = ShellArgs::parse(&json!({"command": ["echo", "hi"], "timeout": "1m30s"})).unwrap();
        assert_eq!(a.timeout_duration().unwrap(), Some(Duration::from_secs(90)));
        let a =
            ShellArgs::parse(&json!({"script": "echo hi", "timeout": 2.5, "env": {"A_1": "x"}}))
                .unwrap();
        assert_eq!(
            a.timeout_duration().unwrap(),
            Some(Duration::from_millis(2500))
        );
        for (t, secs) in [("PT10M", 600), ("45", 45), ("2h", 7200), ("500ms", 0)] {
            let d = ShellTimeout::Text(t.into()).to_duration().unwrap();
            assert_eq!(d.as_secs(), secs, "{t}");
        }
    }

    #[test]
    fn bad_args_name_the_field() {
        assert_eq!(field(json!({"command": ["a"], "script": "b"})), "command");
        assert_eq!(field(json!({})), "command");
        assert_eq!(field(json!({"command": []})), "command");
        assert_eq!(field(json!({"command": [""]})), "command[0]");
        assert_eq!(field(json!({"command": ["a", "b\u{0}"]})), "command[1]");
        assert_eq!(field(json!({"script": "  "})), "script");
        assert_eq!(field(json!({"script": "x", "stdin": "\u{0}"})), "stdin");
        assert_eq!(field(json!({"script": "x", "env": {"1A": "x"}})), "env");
        assert_eq!(field(json!({"script": "x", "env": {"A=B": "x"}})), "env");
        assert_eq!(
            field(json!({"script": "x", "env": {"A": "\u{0}"}})),
            "env.A"
        );
        assert_eq!(field(json!({"script": "x", "env": {"A": 1}})), "env");
        assert_eq!(field(json!({"script": "x", "cwd": "rel"})), "cwd");
        assert_eq!(field(json!({"script": "x", "user": "-r"})), "user");
        assert_eq!(field(json!({"script": "x", "timeout": 0})), "timeout");
        assert_eq!(field(json!({"script": "x", "timeout": -1})), "timeout");
        assert_eq!(field(json!({"script": "x", "timeout": "soon"})), "timeout");
        assert_eq!(field(json!({"script": "x", "timeout": "-5s"})), "timeout");
        assert_eq!(field(json!({"script": "x", "timeout": true})), "timeout");
        assert_eq!(field(json!({"script": "x", "bogus": 1})), "bogus");
        assert_eq!(field(json!({"command": "echo hi"})), "command");
        assert_eq!(field(json!(["echo"])), "args");
    }

    #[test]
    fn debug_hides_secrets() {
        let mut a = ShellArgs::script("env");
        a.env.insert("TOKEN".into(), "s3cret".into());
        a.stdin = Some("password".into());
        let s = format!("{a:?}");
        assert!(s.contains("TOKEN"));
        assert!(!s.contains("s3cret") && !s.contains("password"), "{s}");
    }

    #[test]
    fn round_trips_through_json() {
        let mut a = ShellArgs::command(["ls", "-l"]);
        a.timeout = Some(ShellTimeout::Seconds(3.0));
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v, json!({"command": ["ls", "-l"], "timeout": 3.0}));
        assert_eq!(ShellArgs::parse(&v).unwrap(), a);
    }
}
