//! Where in the file a problem is: the line of a dotted key path, and serde_ignored's paths in the
//! same dotted form.

/// Finds the line of a dotted key path (`listener[1].tls`) in the parsed document: the deepest
/// part of the path that exists, so a missing key points at its table.
pub(super) struct KeyLocator<'a> {
    pub(super) text: &'a str,
    pub(super) doc: toml_edit::Document<String>,
}

impl KeyLocator<'_> {
    pub(super) fn line(&self, key: &str) -> Option<usize> {
        let mut item: &toml_edit::Item = self.doc.as_item();
        let mut best = None;
        for part in key.split('.') {
            let (name, index) = match part.split_once('[') {
                Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
                None => (part, None),
            };
            let Some((k, v)) = item.as_table_like().and_then(|t| t.get_key_value(name)) else {
                break;
            };
            best = k.span().map(|s| s.start).or(best);
            item = v;
            if let Some(i) = index {
                match item {
                    toml_edit::Item::ArrayOfTables(a) => match a.get(i) {
                        Some(t) => {
                            best = t.span().map(|s| s.start).or(best);
                            // Walk on inside this element; Item::Table borrows are not available for
                            // array elements, so continue with the table directly.
                            return self.line_in(t, key, part, best);
                        }
                        None => break,
                    },
                    _ => break,
                }
            }
        }
        best.map(|b| line_of(self.text, b))
    }

    fn line_in(
        &self,
        t: &toml_edit::Table,
        key: &str,
        part: &str,
        mut best: Option<usize>,
    ) -> Option<usize> {
        let rest = key
            .split_once(&format!("{part}."))
            .map(|x| x.1)
            .unwrap_or("");
        let mut table: &dyn toml_edit::TableLike = t;
        for name in rest.split('.').filter(|p| !p.is_empty()) {
            let Some((k, v)) = table.get_key_value(name) else {
                break;
            };
            best = k.span().map(|s| s.start).or(best);
            match v.as_table_like() {
                Some(next) => table = next,
                None => break,
            }
        }
        best.map(|b| line_of(self.text, b))
    }
}

/// serde_ignored paths look like `listener.1.tlz`; report them as `listener[1].tlz`.
pub(super) fn normalise_path(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.') {
        if !out.is_empty() && part.parse::<usize>().is_ok() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
