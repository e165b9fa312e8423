//! The `i;unicode-casemap` comparator of RFC 5051, the default collation of I18NLEVEL=1
//! (RFC 5255 section 4.1) that SORT and THREAD must use (RFC 5256 section 7).
//!
//! RFC 5051 section 2: each character is replaced by its titlecase mapping (the simple
//! mapping of UnicodeData.txt, one character to one), the result is decomposed with NFKD, and
//! the resulting strings are compared as octets of their UTF-8 (i;octet). [`casemap`] produces
//! that canonical form once per string, so sorting compares plain byte strings.
//!
//! The standard library has no titlecase table, only the (full) uppercase one. The simple
//! titlecase mapping equals the simple uppercase mapping except for the characters in
//! [`title_exception`] (the Latin digraphs, Georgian Mkhedruli, Greek with ypogegrammeni); where
//! the full uppercase mapping is more than one character (`ß` -> `SS`) UnicodeData has no simple
//! mapping and the character stays itself. NFKD comes from the `unicode-normalization` crate.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::{canonical_combining_class, decompose_compatible};

/// The simple titlecase mapping where it differs from the simple uppercase one, or where the
/// full uppercase mapping has more than one character but a simple titlecase mapping exists.
fn title_exception(c: char) -> Option<char> {
    Some(match c {
        // Latin digraphs: DŽ Dž dž -> Dž, LJ Lj lj -> Lj, NJ Nj nj -> Nj, DZ Dz dz -> Dz.
        '\u{1c4}'..='\u{1c6}' => '\u{1c5}',
        '\u{1c7}'..='\u{1c9}' => '\u{1c8}',
        '\u{1ca}'..='\u{1cc}' => '\u{1cb}',
        '\u{1f1}'..='\u{1f3}' => '\u{1f2}',
        // Georgian Mkhedruli letters title-case to themselves (Unicode 11), although they
        // upper-case to Mtavruli.
        '\u{10d0}'..='\u{10fa}' | '\u{10fd}'..='\u{10ff}' => c,
        // Greek with ypogegrammeni: full uppercase is two characters, titlecase is the
        // prosgegrammeni form.
        '\u{1f80}'..='\u{1f87}' | '\u{1f90}'..='\u{1f97}' | '\u{1fa0}'..='\u{1fa7}' => {
            char::from_u32(u32::from(c) + 8)?
        }
        '\u{1fb3}' => '\u{1fbc}',
        '\u{1fc3}' => '\u{1fcc}',
        '\u{1ff3}' => '\u{1ffc}',
        _ => return None,
    })
}

/// The simple titlecase mapping of one character.
fn titlecase(c: char) -> char {
    if let Some(t) = title_exception(c) {
        return t;
    }
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// Appends the `i;unicode-casemap` canonical form of `s` to `out`.
pub fn casemap_into(s: &str, out: &mut String) {
    if s.is_ascii() {
        // ASCII: titlecase is uppercase and NFKD changes nothing.
        let from = out.len();
        out.push_str(s);
        if let Some(pushed) = out.get_mut(from..) {
            pushed.make_ascii_uppercase();
        }
        return;
    }
    out.extend(s.chars().map(titlecase).nfkd());
}

/// [`casemap`] of an owned string, for long text (SEARCH BODY/TEXT): in place when it is ASCII;
/// otherwise runs of ASCII are copied and upper-cased in bulk and only the other runs go
/// through the tables. Cutting before an ASCII character is safe for NFKD: it is a starter,
/// and canonical reordering only moves non-starters among themselves.
pub fn fold(mut s: String) -> String {
    if s.is_ascii() {
        s.make_ascii_uppercase();
        return s;
    }
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    let mut rest = s.as_str();
    while !rest.is_empty() {
        let ascii = rest.bytes().take_while(u8::is_ascii).count();
        let (run, tail) = rest.split_at(ascii);
        casemap_into(run, &mut out);
        let other = tail.bytes().take_while(|b| !b.is_ascii()).count();
        let (run, tail) = tail.split_at(other);
        push_run(run, &mut out);
        rest = tail;
    }
    out
}

/// Appends the canonical form of a run of non-ASCII text. Characters are decomposed one by one
/// (a table lookup each) as long as every decomposition starts with a starter: then no
/// combining mark can need reordering across two characters, and the concatenation is the
/// NFKD of the run. Otherwise (a combining mark of its own, or the rare character that
/// decomposes to a leading non-starter) the run goes through the normalizing iterator.
fn push_run(run: &str, out: &mut String) {
    let start = out.len();
    let mut simple = true;
    for c in run.chars() {
        let mut first = true;
        decompose_compatible(titlecase(c), |d| {
            if first && canonical_combining_class(d) != 0 {
                simple = false;
            }
            first = false;
            out.push(d);
        });
        if !simple {
            break;
        }
    }
    if !simple {
        out.truncate(start);
        out.extend(run.chars().map(titlecase).nfkd());
    }
}

/// The `i;unicode-casemap` canonical form of `s`: two strings are equal under the comparator
/// when their forms are equal, and order as their forms' bytes do.
pub fn casemap(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    casemap_into(s, &mut out);
    out
}

/// Whether `needle` occurs in `haystack` under `i;unicode-casemap` (RFC 5051 section 2,
/// "substring" operation): both are brought to the canonical form first. An empty needle
/// matches everything.
pub fn casemap_contains(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    casemap(haystack).contains(casemap(needle).as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_is_upper_cased() {
        assert_eq!(casemap("Hello, World 42"), "HELLO, WORLD 42");
        assert_eq!(casemap(""), "");
    }

    #[test]
    fn titlecase_then_nfkd() {
        // Ä: titlecase Ä, NFKD A + combining diaeresis.
        assert_eq!(casemap("ärger"), "A\u{308}RGER");
        assert_eq!(casemap("Ärger"), casemap("ÄRGER"));
        // Precomposed and decomposed input compare equal.
        assert_eq!(casemap("A\u{308}"), casemap("\u{c4}"));
        // ß has no simple titlecase mapping: it stays (and NFKD keeps it).
        assert_eq!(casemap("straße"), "STRAßE");
        // Compatibility decomposition: the fi ligature and full-width letters.
        // The fi ligature has no simple titlecase mapping (only the full one, "Fi"), so it is
        // decomposed after the titlecase step and stays lower case: RFC 5051 to the letter.
        assert_eq!(casemap("\u{fb01}x"), "fiX");
        assert_eq!(casemap("ｒｅ"), "RE");
        // Digraphs take their titlecase form, not their uppercase one.
        assert_eq!(casemap("\u{1c6}"), casemap("\u{1c4}"));
        assert_eq!(casemap("\u{1c6}"), "Dz\u{30c}");
        // Greek final sigma and sigma are the same letter.
        assert_eq!(casemap("ς"), casemap("σ"));
        assert_eq!(casemap("ς"), "Σ");
        // Georgian Mkhedruli titlecases to itself.
        assert_eq!(casemap("\u{10d0}"), "\u{10d0}");
        // Ypogegrammeni: titlecase is prosgegrammeni, then NFKD.
        assert_eq!(casemap("\u{1fb3}"), casemap("\u{1fbc}"));
    }

    #[test]
    fn order_is_by_octets_of_the_form() {
        let mut v = vec!["Zebra", "apfel", "Ärger", "zebra", "Apfel"];
        v.sort_by_key(|s| casemap(s));
        // A < A+U+0308 (as octets "A" is a prefix) < Z.
        assert_eq!(v, ["apfel", "Apfel", "Ärger", "Zebra", "zebra"]);
    }

    #[test]
    fn fold_is_casemap() {
        for t in [
            "",
            "ABC def",
            "Grüße aus KÖLN, ÀÉÎ",
            "a\u{301}\u{323}b e\u{323}\u{301}",
            "ΟΔΟΣ ΣΟΦΟΣ ς.",
            "日本語テキスト ABC ｆｕｌｌ",
            "\u{1c6}x\u{fb01}",
            // Combining marks out of canonical order, after precomposed letters and alone.
            "\u{e9}\u{323} a\u{e9}\u{301}\u{323}\u{e9} \u{301}\u{323}x",
            // Tibetan U+0F73 has combining class 0 but decomposes to two non-starters.
            "\u{f40}\u{f74}\u{f73}\u{f71}",
            "\u{ac00}\u{d7a3} Hangul, \u{fdfa} ligature, \u{1f82}\u{345}",
        ] {
            assert_eq!(fold(t.to_owned()), casemap(t), "{t}");
        }
    }

    #[test]
    fn substring() {
        assert!(casemap_contains("Grüße aus KÖLN", "köln"));
        assert!(casemap_contains("abc", ""));
        assert!(!casemap_contains("abc", "abd"));
    }
}
