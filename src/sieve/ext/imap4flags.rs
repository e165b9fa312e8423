//! RFC 5232 `imap4flags`: flag lists as space-separated strings, and the operations of
//! `setflag`/`addflag`/`removeflag`. Flag names compare without regard to case (IMAP flags
//! do); the first spelling is kept.

/// The flags of a list of strings, each of which may hold several space-separated flags,
/// without duplicates.
pub fn split(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in list {
        for f in s.split_ascii_whitespace() {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(f)) {
                out.push(f.to_string());
            }
        }
    }
    out
}

/// `addflag`: `current` with `add` appended.
pub fn add(current: &str, add: &[String]) -> String {
    let mut all = vec![current.to_string()];
    all.extend_from_slice(add);
    split(&all).join(" ")
}

/// `removeflag`: `current` without `remove`.
pub fn remove(current: &str, remove: &[String]) -> String {
    let gone = split(remove);
    split(&[current.to_string()])
        .into_iter()
        .filter(|f| !gone.iter().any(|g| g.eq_ignore_ascii_case(f)))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5232_examples() {
        // RFC 5232 section 3.
        let v = add("", &["\\Seen \\Deleted".into(), "\\Answered".into()]);
        assert_eq!(v, "\\Seen \\Deleted \\Answered");
        assert_eq!(add(&v, &["\\seen".into()]), v);
        assert_eq!(remove(&v, &["\\Deleted".into()]), "\\Seen \\Answered");
    }
}
