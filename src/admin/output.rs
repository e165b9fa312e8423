//! What the storage admin commands print: a table for people, or JSON (`--json`) for scripts.
//!
//! Both come from one [`Table`]: named columns and rows of [`Cell`]s. The text form is one
//! header line of the column names and one line per row, columns separated by two spaces and
//! padded to the widest cell; an unknown or unlimited value prints as `-`, a flag as
//! `yes`/`no`. The JSON form is an array with one object per row, keyed by the column names,
//! with numbers as numbers, flags as booleans and `-` as `null`.

use serde_json::{Map, Value};

/// One value of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// Text (a mailbox name, a UID set).
    Text(String),
    /// A number.
    Int(u64),
    /// A yes/no value.
    Bool(bool),
    /// Nothing: unknown, or unlimited for a limit.
    Null,
}

impl Cell {
    /// A text cell.
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    /// A number, or [`Cell::Null`] for `None`.
    pub fn opt(n: Option<u64>) -> Cell {
        n.map_or(Cell::Null, Cell::Int)
    }

    fn to_text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Bool(true) => "yes".into(),
            Cell::Bool(false) => "no".into(),
            Cell::Null => "-".into(),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Int(n) => Value::from(*n),
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Null => Value::Null,
        }
    }
}

/// Rows under named columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    columns: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(columns: &[&'static str]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (as many cells as columns).
    pub fn push(&mut self, row: Vec<Cell>) {
        self.rows.push(row);
    }

    /// The text form: a header line, then a line per row.
    pub fn to_text(&self) -> String {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(Cell::to_text).collect())
            .collect();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let header: Vec<String> = self.columns.iter().map(|c| (*c).to_string()).collect();
        let mut out = String::new();
        for row in std::iter::once(&header).chain(cells.iter()) {
            let mut line = String::new();
            for (i, (c, w)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(c);
                if i + 1 < row.len() {
                    line.extend(std::iter::repeat_n(
                        ' ',
                        w.saturating_sub(c.chars().count()),
                    ));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// The JSON form: an array of one object per row.
    pub fn to_json(&self) -> String {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let obj: Map<String, Value> = self
                    .columns
                    .iter()
                    .zip(r)
                    .map(|(c, v)| ((*c).to_string(), v.to_json()))
                    .collect();
                Value::Object(obj)
            })
            .collect();
        let mut s = serde_json::to_string_pretty(&Value::Array(rows)).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Prints the table to stdout in the chosen form.
    pub fn print(&self, json: bool) {
        if json {
            print!("{}", self.to_json());
        } else {
            print!("{}", self.to_text());
        }
    }
}

/// UIDs in ascending order as an IMAP sequence set (`1:3,7`); empty for none.
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while let Some(&start) = uids.get(i) {
        let mut end = start;
        while uids.get(i + 1) == Some(&end.wrapping_add(1)) {
            end += 1;
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if end == start {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_pads_columns_and_json_keeps_types() {
        let mut t = Table::new(&["mailbox", "messages", "limit", "subscribed"]);
        t.push(vec![
            Cell::text("INBOX"),
            Cell::Int(12),
            Cell::Null,
            Cell::Bool(true),
        ]);
        t.push(vec![
            Cell::text("Archive/2025"),
            Cell::Int(3),
            Cell::Int(100),
            Cell::Bool(false),
        ]);
        assert_eq!(
            t.to_text(),
            "mailbox       messages  limit  subscribed\n\
             INBOX         12        -      yes\n\
             Archive/2025  3         100    no\n"
        );
        let v: Value = serde_json::from_str(&t.to_json()).unwrap_or(Value::Null);
        assert_eq!(
            v,
            serde_json::json!([
                {"mailbox": "INBOX", "messages": 12, "limit": null, "subscribed": true},
                {"mailbox": "Archive/2025", "messages": 3, "limit": 100, "subscribed": false},
            ])
        );
    }

    #[test]
    fn uid_sets_join_runs() {
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[u32::MAX - 1, u32::MAX]), "4294967294:4294967295");
    }
}
