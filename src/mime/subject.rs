//! The "base subject" of RFC 5256 section 2.1, used by SORT (SUBJECT) and THREAD, and whether
//! the subject marks a reply or forward (RFC 5256 section 4, REFERENCES: "a message is
//! considered to be a reply or forward if the base subject extraction rules, applied to the
//! original subject, remove any of the following: a subj-refwd, a "(fwd)" subj-trailer, or a
//! subj-fwd-hdr and subj-fwd-trl").
//!
//! The ABNF (RFC 5256 section 5) this follows:
//!
//! ```text
//! subj-refwd      = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
//! subj-blob       = "[" *BLOBCHAR "]" *WSP
//! subj-fwd-hdr    = "[fwd:"
//! subj-fwd-trl    = "]"
//! subj-leader     = (*subj-blob subj-refwd) / WSP
//! subj-trailer    = "(fwd)" / WSP
//! subj-base       = NONWSP *(*WSP NONWSP)
//! ```
//!
//! All of the syntax is ASCII and matched case-insensitively (ABNF strings are). The text is
//! UTF-8, so cutting at the ASCII characters these rules match never splits a character.

use super::search::decode_header_value;

/// Step (1): RFC 2047 words decoded to UTF-8, tabs and line breaks made spaces, runs of spaces
/// made one.
fn normalize_space(decoded: &str) -> String {
    let mut out = String::with_capacity(decoded.len());
    let mut space = false;
    for c in decoded.chars() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    out
}

fn starts_with_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix))
}

fn skip_wsp(s: &[u8], mut i: usize) -> usize {
    while matches!(s.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

/// `subj-blob` at `i`: the index after it (its trailing WSP included).
fn blob(s: &[u8], i: usize) -> Option<usize> {
    if s.get(i) != Some(&b'[') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match s.get(j)? {
            b']' => return Some(skip_wsp(s, j + 1)),
            // BLOBCHAR excludes '[' (and NUL, which a decoded header does not hold usefully).
            b'[' => return None,
            _ => j += 1,
        }
    }
}

/// `subj-refwd` at `i`: the index after its colon.
fn refwd(s: &[u8], i: usize) -> Option<usize> {
    let rest = s.get(i..)?;
    let word = if starts_with_ci(rest, b"re") {
        2
    } else if starts_with_ci(rest, b"fwd") {
        3
    } else if starts_with_ci(rest, b"fw") {
        2
    } else {
        return None;
    };
    let mut j = skip_wsp(s, i + word);
    if let Some(after) = blob(s, j) {
        j = after;
    }
    (s.get(j) == Some(&b':')).then_some(j + 1)
}

/// `*subj-blob subj-refwd` at the start: the index after it.
fn leader(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        if let Some(end) = refwd(s, i) {
            return Some(end);
        }
        i = blob(s, i)?;
    }
}

/// Step (2): trailing `(fwd)` and WSP removed, repeatedly; true when a `(fwd)` went.
fn strip_trailers(s: &mut String) -> bool {
    let mut fwd = false;
    loop {
        if s.ends_with([' ', '\t']) {
            s.pop();
        } else if s.len() >= 5
            && s.as_bytes()
                .get(s.len() - 5..)
                .is_some_and(|t| t.eq_ignore_ascii_case(b"(fwd)"))
        {
            s.truncate(s.len() - 5);
            fwd = true;
        } else {
            return fwd;
        }
    }
}

/// Steps (3) to (5): leaders and blobs removed from the front until none match; true when a
/// `subj-refwd` went.
fn strip_leaders(s: &mut String) -> bool {
    let mut refwd_seen = false;
    loop {
        let b = s.as_bytes();
        let cut = if matches!(b.first(), Some(b' ' | b'\t')) {
            1
        } else if let Some(end) = leader(b) {
            refwd_seen = true;
            end
        } else if let Some(end) = blob(b, 0)
            // Only when a non-empty subj-base remains.
            && b.get(end..).is_some_and(|r| r.iter().any(|&c| c != b' ' && c != b'\t'))
        {
            end
        } else {
            return refwd_seen;
        };
        s.drain(..cut);
    }
}

/// The RFC 5256 base subject of a Subject: header value as stored (raw, possibly folded and
/// RFC 2047 encoded), and whether the subject marks a reply or forward. The base subject keeps
/// its case: compare it with [`super::casemap`].
pub fn base_subject(raw: &[u8]) -> (String, bool) {
    base_subject_of(&decode_header_value(raw))
}

/// [`base_subject`] of a subject already decoded to UTF-8.
pub fn base_subject_of(decoded: &str) -> (String, bool) {
    let mut s = normalize_space(decoded);
    let mut reply = false;
    loop {
        // (2)
        reply |= strip_trailers(&mut s);
        // (3), (4), (5)
        reply |= strip_leaders(&mut s);
        // (6): "[fwd:" ... "]" around the whole: removed, and again from (2).
        if starts_with_ci(s.as_bytes(), b"[fwd:") && s.ends_with(']') {
            s.truncate(s.len() - 1);
            s.drain(..5);
            reply = true;
            continue;
        }
        return (s, reply);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> (String, bool) {
        base_subject(s.as_bytes())
    }

    #[test]
    fn plain_subjects_only_get_spaces_normalized() {
        assert_eq!(base("Hello world"), ("Hello world".into(), false));
        // (1) tabs, continuations and runs of spaces become one space; leading/trailing go.
        assert_eq!(
            base("  Hello\t \r\n  world  "),
            ("Hello world".into(), false)
        );
        assert_eq!(base(""), (String::new(), false));
        // "re" without a colon is text.
        assert_eq!(base("Regarding x"), ("Regarding x".into(), false));
        assert_eq!(base("Re x"), ("Re x".into(), false));
    }

    #[test]
    fn refwd_leaders_are_removed_and_mark_replies() {
        assert_eq!(base("Re: hello"), ("hello".into(), true));
        assert_eq!(base("RE: Re: re:hello"), ("hello".into(), true));
        assert_eq!(base("Fw: hello"), ("hello".into(), true));
        assert_eq!(base("FWD: hello"), ("hello".into(), true));
        // *WSP and an optional blob between the word and the colon.
        assert_eq!(base("Re [2]: hello"), ("hello".into(), true));
        assert_eq!(base("Re  : hello"), ("hello".into(), true));
        // Blobs before the refwd belong to the leader.
        assert_eq!(base("[list] Re: hello"), ("hello".into(), true));
        assert_eq!(base("Re: [list] Re: hello"), ("hello".into(), true));
    }

    #[test]
    fn blobs_go_only_when_something_remains() {
        assert_eq!(base("[list] hello"), ("hello".into(), false));
        assert_eq!(base("[a][b] hello"), ("hello".into(), false));
        // (4): removing the blob would leave an empty subj-base: it is the base.
        assert_eq!(base("[list]"), ("[list]".into(), false));
        assert_eq!(base("[a] [b]"), ("[b]".into(), false));
        assert_eq!(base("Re: [list]"), ("[list]".into(), true));
        // An unclosed bracket is not a blob.
        assert_eq!(base("[open hello"), ("[open hello".into(), false));
    }

    #[test]
    fn trailers_and_fwd_wrappers() {
        // (2): "(fwd)" trailers, repeatedly, mark a forward.
        assert_eq!(base("hello (fwd)"), ("hello".into(), true));
        assert_eq!(base("hello (FWD) (fwd)  "), ("hello".into(), true));
        assert_eq!(base("hello(fwd)"), ("hello".into(), true));
        // (6): "[fwd: ... ]" wrapping the whole subject, then again from (2).
        assert_eq!(base("[Fwd: hello]"), ("hello".into(), true));
        assert_eq!(base("[fwd: Re: hello (fwd)]"), ("hello".into(), true));
        assert_eq!(base("Re: [fwd: [fwd: hello]]"), ("hello".into(), true));
        // Not around the whole: "[fwd: x] y" is a blob, then base "y".
        assert_eq!(base("[fwd: x] y"), ("y".into(), false));
    }

    #[test]
    fn encoded_words_are_decoded_first() {
        assert_eq!(base("=?utf-8?q?Re=3A_=C3=84rger?="), ("Ärger".into(), true));
        assert_eq!(
            base("Re: =?iso-8859-1?q?caf=E9?=\r\n =?iso-8859-1?q?_cr=E8me?="),
            ("café crème".into(), true)
        );
    }
}
