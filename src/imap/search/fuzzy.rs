//! SEARCH FUZZY (RFC 6203): word matching within a small edit distance, and the RELEVANCY
//! score of a matching message.
//!
//! RFC 6203 section 3 leaves the algorithm to the server; mailcove's is deterministic and the
//! same with or without the full-text index (the index is not consulted for fuzzy keys):
//! - The key string and the searched text (the same text the non-fuzzy key searches: the
//!   decoded header value for SUBJECT/FROM/TO/CC/BCC/HEADER, the decoded body for BODY, header,
//!   body and part headers for TEXT) are casemapped (`i;unicode-casemap`) and split into words
//!   at every character that is not a letter or digit.
//! - A message matches when **every** word of the key is within Levenshtein distance 1 (key
//!   words of 5 or more characters: 2) of some word of the text. A key without words matches
//!   every message, as the empty substring does.
//! - Score (section 4, 1..100): per key word, the smallest distance `d` found and the number
//!   `n` of text words at that distance give `base(d) - 10 + min(n, 10)`, with base 100, 70
//!   and 40 for `d` 0, 1 and 2: one exact occurrence scores 91, ten or more 100, one word one
//!   edit away 61, two edits 31. A key scores its worst word (all of them must match).

/// A compiled fuzzy string key: its casemapped words as characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fuzzy {
    words: Vec<Vec<char>>,
}

/// The words of `s`: maximal runs of letters and digits.
fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// How many edits a key word of `len` characters may be away from a text word.
fn allowed(len: usize) -> usize {
    if len >= 5 { 2 } else { 1 }
}

/// Levenshtein distance of `a` and `b` (characters), or `None` when it is above `max`.
fn distance(a: &[char], b: &str, max: usize) -> Option<usize> {
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        let mut row_min = cur[0];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
            row_min = row_min.min(cur[j + 1]);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().filter(|d| *d <= max)
}

impl Fuzzy {
    /// The key from its casemapped string.
    pub(crate) fn new(needle: &str) -> Fuzzy {
        Fuzzy {
            words: words(needle).map(|w| w.chars().collect()).collect(),
        }
    }

    /// The score (1..=100) of `texts` (casemapped), or `None` when they do not match.
    pub(crate) fn score<'a>(&self, texts: impl IntoIterator<Item = &'a str> + Clone) -> Option<u8> {
        let mut worst = 100u8;
        for key in &self.words {
            let max = allowed(key.len());
            // (best distance, occurrences at it)
            let mut best: Option<(usize, usize)> = None;
            for w in texts.clone().into_iter().flat_map(words) {
                let Some(d) = distance(key, w, max) else {
                    continue;
                };
                best = match best {
                    Some((bd, n)) if bd == d => Some((bd, n + 1)),
                    Some((bd, n)) if bd < d => Some((bd, n)),
                    _ => Some((d, 1)),
                };
            }
            let (d, n) = best?;
            let base: usize = [100, 70, 40].get(d).copied().unwrap_or(40);
            let s = base - 10 + n.min(10);
            worst = worst.min(u8::try_from(s).unwrap_or(100));
        }
        Some(worst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::casemap::casemap;

    fn f(s: &str) -> Fuzzy {
        Fuzzy::new(&casemap(s))
    }

    #[test]
    fn distance_is_levenshtein_with_a_cap() {
        let k: Vec<char> = "zanzibr".chars().collect();
        assert_eq!(distance(&k, "zanzibar", 2), Some(1));
        assert_eq!(distance(&k, "zanzibr", 2), Some(0));
        assert_eq!(distance(&k, "tanzibra", 2), Some(2));
        assert_eq!(distance(&k, "zebra", 2), None);
        let k: Vec<char> = "abc".chars().collect();
        assert_eq!(distance(&k, "acb", 1), None);
        assert_eq!(distance(&k, "ab", 1), Some(1));
        assert_eq!(distance(&k, "", 3), Some(3));
    }

    #[test]
    fn every_key_word_must_match_and_scores_follow_the_rule() {
        let text = casemap("The Meeting about Zanzibar, zanzibar and ZANZIBAR!");
        assert_eq!(f("zanzibr").score([text.as_str()]), Some(70 - 10 + 3));
        assert_eq!(f("Meeting").score([text.as_str()]), Some(91));
        assert_eq!(f("meetng zanzibar").score([text.as_str()]), Some(61));
        assert_eq!(f("meetng xylophone").score([text.as_str()]), None);
        // Four letters: one edit only.
        assert_eq!(f("abot").score([text.as_str()]), Some(61));
        assert_eq!(f("abxx").score([text.as_str()]), None);
        assert_eq!(f("").score([text.as_str()]), Some(100));
        // Ten occurrences or more reach 100; the texts are searched together.
        let many = casemap(&"the ".repeat(11));
        assert_eq!(f("the").score(["a", many.as_str()]), Some(100));
        let one = casemap("the");
        assert_eq!(f("the").score([one.as_str(), one.as_str()]), Some(92));
        assert_eq!(f("the").score(["", ""]), None);
    }
}
