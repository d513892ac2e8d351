//! Printing results: tables and messages for people, JSON for programs.
//!
//! Results go to stdout, messages and logs to stderr, so `-o json | jq`
//! always sees a clean document. Colour goes through `anstream`, which
//! strips it when `--color never`, `NO_COLOR` is set, or the stream is not a
//! terminal (`--color always` / `CLICOLOR_FORCE` force it).

use std::io::Write;

use anstyle::{AnsiColor, Style};
use comfy_table::{ContentArrangement, Table, presets};
use jiff::Timestamp;
use rota::JobState;
use serde::Serialize;

/// Style of the headers.
const HEADER: Style = Style::new().bold();
/// Style of the `error:` prefix.
const ERROR: Style = AnsiColor::Red.on_default().bold();
/// Style of the `warning:` prefix.
const WARNING: Style = AnsiColor::Yellow.on_default().bold();

/// `text` in `style` (the escape codes are removed later when colour is
/// off).
pub(crate) fn paint(text: &str, style: Style) -> String {
    format!("{style}{text}{style:#}")
}

/// The colour of a job state.
pub(crate) fn state_style(state: JobState) -> Style {
    match state {
        JobState::Succeeded => AnsiColor::Green.on_default(),
        JobState::Failed => AnsiColor::Red.on_default(),
        JobState::Canceled => AnsiColor::Magenta.on_default(),
        JobState::Running => AnsiColor::Cyan.on_default(),
        JobState::Retrying => AnsiColor::Yellow.on_default(),
        JobState::Scheduled | JobState::Available => Style::new(),
    }
}

/// A job state, coloured.
pub(crate) fn state(state: JobState) -> String {
    paint(state.as_str(), state_style(state))
}

/// Prints a JSON document on stdout.
pub(crate) fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Prints a line on stdout (colour stripped as configured).
pub(crate) fn line(text: &str) -> anyhow::Result<()> {
    let mut out = anstream::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(())
}

/// Prints raw bytes on stdout as they come (job output: passed through
/// untouched, escape codes and all) and flushes, so followers see it live.
pub(crate) fn raw(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// A message for people on stderr. Failing to write it is not worth
/// failing the command for.
pub(crate) fn note(text: &str) {
    let _ = writeln!(anstream::stderr().lock(), "{text}");
}

/// `warning: ...` on stderr.
pub(crate) fn warn(text: &str) {
    note(&format!("{} {text}", paint("warning:", WARNING)));
}

/// `error: ...` on stderr.
pub(crate) fn error(text: &str) {
    note(&format!("{} {text}", paint("error:", ERROR)));
}

/// A borderless table with bold headers, like `kubectl get`.
pub(crate) fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| paint(h, HEADER)));
    t
}

/// Prints a table on stdout, without the trailing blanks of its padding.
pub(crate) fn print_table(t: &Table) -> anyhow::Result<()> {
    let mut out = anstream::stdout().lock();
    for l in t.to_string().lines() {
        writeln!(out, "{}", l.trim_end())?;
    }
    Ok(())
}

/// `key=value,...` of a map.
pub(crate) fn pairs<'a>(m: impl IntoIterator<Item = (&'a String, impl ToString)>) -> String {
    m.into_iter()
        .map(|(k, v)| format!("{k}={}", v.to_string()))
        .collect::<Vec<_>>()
        .join(",")
}

/// A time to the second, UTC.
pub(crate) fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// How long ago `t` was, short: `4s`, `3m`, `2h`, `5d`.
pub(crate) fn ago(t: Timestamp) -> String {
    age(Timestamp::now().duration_since(t).as_secs_f64())
}

/// A number of seconds, short.
pub(crate) fn age(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 60.0 {
        format!("{s:.0}s")
    } else if s < 3600.0 {
        format!("{:.0}m", s / 60.0)
    } else if s < 86_400.0 {
        format!("{:.0}h", s / 3600.0)
    } else {
        format!("{:.0}d", s / 86_400.0)
    }
}

/// A colour for a status word of executions, runs and deliveries (the
/// job states' colours, by name).
pub(crate) fn status(word: &str) -> String {
    let style = match word {
        "succeeded" | "delivered" | "fired" | "active" => AnsiColor::Green.on_default(),
        "failed" | "error" | "dead" => AnsiColor::Red.on_default(),
        "canceled" => AnsiColor::Magenta.on_default(),
        "running" => AnsiColor::Cyan.on_default(),
        "pending" | "paused" | "skipped" => AnsiColor::Yellow.on_default(),
        _ => Style::new(),
    };
    paint(word, style)
}

/// `t` relative to now, short: `in 4s`, `3m ago`.
pub(crate) fn relative(t: Timestamp) -> String {
    let secs = t.duration_since(Timestamp::now()).as_secs_f64();
    if secs >= 0.0 {
        format!("in {}", age(secs.ceil()))
    } else {
        format!("{} ago", age(-secs))
    }
}

/// A run time: `12ms`, `2.5s`, `3m`, `2h`.
pub(crate) fn duration(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 1.0 {
        format!("{:.0}ms", s * 1000.0)
    } else if s < 10.0 {
        format!("{s:.1}s")
    } else {
        age(s)
    }
}

/// Prints `name value` rows, names in bold (`show` commands).
pub(crate) fn print_fields(rows: Vec<(&str, String)>) -> anyhow::Result<()> {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    for (k, v) in rows {
        t.add_row(vec![paint(k, HEADER), v]);
    }
    print_table(&t)
}

/// `-` for nothing.
pub(crate) fn or_dash(s: Option<String>) -> String {
    s.filter(|s| !s.is_empty()).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(age(4.2), "4s");
        assert_eq!(age(180.0), "3m");
        assert_eq!(age(7200.0), "2h");
        assert_eq!(age(-1.0), "0s");
        assert_eq!(duration(0.0049), "5ms");
        assert_eq!(duration(2.54), "2.5s");
        assert_eq!(duration(125.0), "2m");
    }

    #[test]
    fn tables_have_headers_and_no_borders() {
        let mut t = table(&["ID", "STATE"]);
        t.add_row(vec!["1".to_owned(), "running".to_owned()]);
        let s = t.to_string();
        assert!(s.contains("ID") && s.contains("running"), "{s}");
        assert!(!s.contains('|') && !s.contains('│'), "{s}");
    }
}
