//! Rows copied off a statement as they are, to be decoded on another
//! thread: the single writer thread is the SQLite store's bound, and
//! decoding claimed jobs (JSON, times, states) was 8.1k of its 60.5k
//! instructions per job (callgrind, `rota bench --phases process`).

use rota_driver::{DriverError, Result};
use rusqlite::types::ValueRef;

use crate::error::map_native;
use crate::row::{Columns, int_value, text_value};

/// One copied value; text lives in [`RawRows::text`].
#[derive(Debug, Clone, Copy)]
enum Raw {
    Null,
    Int(i64),
    /// Byte range in the shared text buffer.
    Text(usize, usize),
}

/// Rows of `width` columns (NULL, INTEGER or TEXT), their texts' bytes in
/// one buffer: one copy per value, no allocation per value. Texts are
/// checked to be UTF-8 when decoded, as for a live row.
#[derive(Debug)]
pub(crate) struct RawRows {
    width: usize,
    values: Vec<Raw>,
    text: Vec<u8>,
}

impl RawRows {
    /// Room for `rows` rows of `width` columns.
    pub(crate) fn with_capacity(width: usize, rows: usize) -> Self {
        RawRows {
            width,
            values: Vec::with_capacity(width * rows),
            // A no-op job's texts take ~150 bytes.
            text: Vec::with_capacity(160 * rows),
        }
    }

    /// Copies the first `width` columns of `row`.
    pub(crate) fn push(&mut self, row: &rusqlite::Row<'_>) -> Result<()> {
        for i in 0..self.width {
            let value = match row.get_ref(i).map_err(map_native)? {
                ValueRef::Null => Raw::Null,
                ValueRef::Integer(v) => Raw::Int(v),
                ValueRef::Text(bytes) => {
                    let start = self.text.len();
                    self.text.extend_from_slice(bytes);
                    Raw::Text(start, self.text.len())
                }
                other => {
                    return Err(DriverError::Corrupt(format!(
                        "column {i}: unexpected {:?}",
                        other.data_type()
                    )));
                }
            };
            self.values.push(value);
        }
        Ok(())
    }

    /// How many rows.
    pub(crate) fn len(&self) -> usize {
        self.values.len().checked_div(self.width).unwrap_or(0)
    }

    /// Row `k` (`k < len()`), for decoding.
    pub(crate) fn row(&self, k: usize) -> RawRow<'_> {
        RawRow {
            rows: self,
            start: k * self.width,
        }
    }
}

/// One row of [`RawRows`].
pub(crate) struct RawRow<'a> {
    rows: &'a RawRows,
    start: usize,
}

impl RawRow<'_> {
    /// Column `i` as rusqlite would have read it from the live row.
    fn value(&self, i: usize, name: &str) -> Result<ValueRef<'_>> {
        if i >= self.rows.width {
            return Err(DriverError::Corrupt(format!("{name}: no column {i}")));
        }
        let raw = self
            .rows
            .values
            .get(self.start + i)
            .ok_or_else(|| DriverError::Corrupt(format!("{name}: no row")))?;
        Ok(match *raw {
            Raw::Null => ValueRef::Null,
            Raw::Int(v) => ValueRef::Integer(v),
            Raw::Text(start, end) => ValueRef::Text(
                self.rows
                    .text
                    .get(start..end)
                    .ok_or_else(|| DriverError::Corrupt(format!("{name}: text out of range")))?,
            ),
        })
    }
}

impl Columns for RawRow<'_> {
    fn int(&self, i: usize, name: &str) -> Result<Option<i64>> {
        int_value(self.value(i, name)?, name)
    }

    fn with_text<R>(
        &self,
        i: usize,
        name: &str,
        f: impl FnOnce(Option<&str>) -> Result<R>,
    ) -> Result<R> {
        text_value(self.value(i, name)?, name, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_back_as_copied() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut st = conn
            .prepare("SELECT 1, 'a', NULL UNION ALL SELECT 2, 'bc', 'd'")
            .unwrap();
        let mut rows = st.query([]).unwrap();
        let mut raw = RawRows::with_capacity(3, 2);
        while let Some(r) = rows.next().unwrap() {
            raw.push(r).unwrap();
        }
        assert_eq!(raw.len(), 2);
        let second = raw.row(1);
        assert_eq!(second.int(0, "n").unwrap(), Some(2));
        assert_eq!(second.opt_text(1, "t").unwrap().as_deref(), Some("bc"));
        assert_eq!(second.opt_text(2, "u").unwrap().as_deref(), Some("d"));
        assert_eq!(raw.row(0).opt_text(2, "u").unwrap(), None);
        assert!(raw.row(0).int(1, "t").is_err(), "text is not an integer");
        assert!(raw.row(0).int(3, "x").is_err(), "no such column");
    }
}
