//! A size-capped output buffer that keeps the head and the tail.
//!
//! Job output can be huge (a command printing gigabytes); storing all of it
//! is not an option and keeping only the start loses the error at the end.
//! The buffer keeps the first half of the cap and a rolling last half, and
//! marks the cut.

use std::collections::VecDeque;

/// The marker inserted where output was cut.
pub const CUT_MARKER: &str = "\n[... rota: output cut ...]\n";

/// Output capped at `cap` bytes: head kept, tail rolling, cut marked.
#[derive(Debug, Clone)]
pub struct OutputBuffer {
    cap: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    dropped: u64,
}

impl OutputBuffer {
    /// A buffer keeping at most `cap` bytes (plus the cut marker).
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            head: Vec::new(),
            tail: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Appends bytes.
    pub fn push(&mut self, mut bytes: &[u8]) {
        let head_cap = self.cap / 2;
        if self.head.len() < head_cap {
            let n = (head_cap - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        let tail_cap = self.cap - head_cap;
        if bytes.len() >= tail_cap {
            self.dropped += (self.tail.len() + bytes.len() - tail_cap) as u64;
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(tail_cap);
        self.tail.drain(..overflow);
        self.dropped += overflow as u64;
        self.tail.extend(bytes);
    }

    /// Whether anything was cut.
    pub fn is_cut(&self) -> bool {
        self.dropped > 0
    }

    /// Bytes dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.head.is_empty() && self.tail.is_empty()
    }

    /// The kept output as text (invalid UTF-8 replaced), with the cut marked.
    pub fn render(&self) -> String {
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if self.is_cut() {
            out.push_str(CUT_MARKER);
        }
        let (a, b) = self.tail.as_slices();
        let mut tail = Vec::with_capacity(a.len() + b.len());
        tail.extend_from_slice(a);
        tail.extend_from_slice(b);
        out.push_str(&String::from_utf8_lossy(&tail));
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn keeps_everything_under_the_cap() {
        let mut b = OutputBuffer::new(100);
        b.push(b"hello ");
        b.push(b"world");
        assert_eq!(b.render(), "hello world");
        assert!(!b.is_cut());
    }

    #[test]
    fn keeps_head_and_tail_and_marks_the_cut() {
        let mut b = OutputBuffer::new(10);
        b.push(b"0123456789abcdefghij");
        assert!(b.is_cut());
        assert_eq!(b.render(), format!("01234{CUT_MARKER}fghij"));
    }

    proptest! {
        #[test]
        fn never_exceeds_cap(cap in 1usize..64, chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..20)) {
            let mut b = OutputBuffer::new(cap);
            let mut total = 0u64;
            for c in &chunks { b.push(c); total += c.len() as u64; }
            let kept = b.head.len() + b.tail.len();
            prop_assert!(kept <= cap);
            prop_assert_eq!(kept as u64 + b.dropped(), total);
        }
    }
}
