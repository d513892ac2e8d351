//! The progress channel: stdout lines `::progress:: <json>`.

/// Prefix of a progress line on stdout.
pub const PROGRESS_PREFIX: &str = "::progress:: ";

/// Longest progress line kept (JSON after the prefix); longer ones are
/// ignored as progress (they stay in the output).
pub(crate) const MAX_PROGRESS_LINE: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a line start, the bytes so far (in `line`) match the prefix.
    Start,
    /// Past the prefix: collecting the JSON until the newline.
    Capture,
    /// Not a progress line: skipping to the newline.
    Skip,
}

/// Finds progress lines in a byte stream that arrives in arbitrary chunks.
#[derive(Debug)]
pub(crate) struct ProgressScanner {
    state: State,
    line: Vec<u8>,
}

impl Default for ProgressScanner {
    fn default() -> Self {
        Self {
            state: State::Start,
            line: Vec::new(),
        }
    }
}

impl ProgressScanner {
    /// Feeds the next chunk; pushes the JSON of each complete progress line
    /// onto `found`.
    pub(crate) fn feed(&mut self, mut bytes: &[u8], found: &mut Vec<serde_json::Value>) {
        let prefix = PROGRESS_PREFIX.as_bytes();
        while !bytes.is_empty() {
            match self.state {
                State::Skip => match newline(bytes) {
                    Some(i) => {
                        bytes = &bytes[i + 1..];
                        self.reset();
                    }
                    None => return,
                },
                State::Start => {
                    let take = (prefix.len() - self.line.len()).min(bytes.len());
                    let chunk = &bytes[..take];
                    if let Some(i) = newline(chunk) {
                        bytes = &bytes[i + 1..];
                        self.reset();
                        continue;
                    }
                    bytes = &bytes[take..];
                    if prefix[self.line.len()..].starts_with(chunk) {
                        self.line.extend_from_slice(chunk);
                        if self.line.len() == prefix.len() {
                            self.line.clear();
                            self.state = State::Capture;
                        }
                    } else {
                        self.line.clear();
                        self.state = State::Skip;
                    }
                }
                State::Capture => match newline(bytes) {
                    Some(i) => {
                        self.line.extend_from_slice(&bytes[..i]);
                        bytes = &bytes[i + 1..];
                        if self.line.len() <= MAX_PROGRESS_LINE {
                            found.extend(parse(&self.line));
                        }
                        self.reset();
                    }
                    None => {
                        self.line.extend_from_slice(bytes);
                        if self.line.len() > MAX_PROGRESS_LINE {
                            self.line = Vec::new();
                            self.state = State::Skip;
                        }
                        return;
                    }
                },
            }
        }
    }

    /// At end of stream: a last progress line without a newline.
    pub(crate) fn finish(&mut self) -> Option<serde_json::Value> {
        let v = (self.state == State::Capture)
            .then(|| parse(&self.line))
            .flatten();
        self.reset();
        v
    }

    fn reset(&mut self) {
        self.line.clear();
        self.state = State::Start;
    }
}

fn newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

fn parse(line: &[u8]) -> Option<serde_json::Value> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match serde_json::from_slice(line) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!(error = %e, "ignoring a progress line that is not JSON");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scan_in_chunks(input: &[u8], size: usize) -> Vec<serde_json::Value> {
        let mut s = ProgressScanner::default();
        let mut found = Vec::new();
        for chunk in input.chunks(size) {
            s.feed(chunk, &mut found);
        }
        found.extend(s.finish());
        found
    }

    #[test]
    fn finds_progress_lines_across_any_chunking() {
        let input = b"hello\n::progress:: {\"pct\": 10}\nnot ::progress:: 1\n::progress:: bad json\n::progres\n::progress:: [1,2]\r\n::progress:: 3";
        for size in 1..input.len() + 1 {
            assert_eq!(
                scan_in_chunks(input, size),
                vec![json!({"pct": 10}), json!([1, 2]), json!(3)],
                "chunk size {size}"
            );
        }
    }

    #[test]
    fn overlong_lines_are_skipped() {
        let mut input = b"::progress:: \"".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_PROGRESS_LINE + 10));
        input.extend(b"\"\n::progress:: 7\n");
        assert_eq!(scan_in_chunks(&input, 4096), vec![json!(7)]);
    }
}
