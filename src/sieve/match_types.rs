//! Match types (RFC 5228 section 2.7.1): `:is`, `:contains`, `:matches` with the `*` and `?`
//! wildcards and `\` escapes, and `:regex` (draft-ietf-sieve-regex) on the `regex` crate, whose
//! automata match in linear time; its compile limits are [`SIEVE_REGEX_SIZE_LIMIT`] and
//! [`SIEVE_REGEX_DFA_SIZE_LIMIT`].

use super::comparators::Comparator;
use crate::limits::{SIEVE_REGEX_DFA_SIZE_LIMIT, SIEVE_REGEX_SIZE_LIMIT};

/// The step budget ran out while matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pat {
    Lit(char),
    Star,
    One,
}

fn compile_wildcard(pattern: &str) -> Vec<Pat> {
    let mut out = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        out.push(match c {
            '*' => Pat::Star,
            '?' => Pat::One,
            '\\' => match it.next() {
                Some(e) => Pat::Lit(e),
                None => Pat::Lit('\\'),
            },
            c => Pat::Lit(c),
        });
    }
    out
}

/// `:matches`: whether `value` matches the wildcard `pattern` under `cmp`. On a match, the
/// match variables: index 0 the whole value, then what each wildcard matched, in order. The
/// wildcards match as little as possible (RFC 5229 section 3.2). Each backtracking step costs
/// one unit of `budget`; the algorithm backtracks only to the last `*`, so it is O(len * len).
pub fn wildcard(
    value: &str,
    pattern: &str,
    cmp: Comparator,
    budget: &mut u64,
) -> Result<Option<Vec<String>>, Exhausted> {
    let pat = compile_wildcard(pattern);
    let text: Vec<(usize, char)> = value.char_indices().collect();
    let byte_at = |i: usize| text.get(i).map_or(value.len(), |t| t.0);
    // Wildcard spans in char indices: (start, end).
    let mut caps: Vec<(usize, usize)> = Vec::new();
    let (mut p, mut t) = (0usize, 0usize);
    // The last star: pattern index, text index it started at, text index it now extends to,
    // captures before it.
    let mut back: Option<(usize, usize, usize, usize)> = None;
    loop {
        if *budget == 0 {
            return Err(Exhausted);
        }
        *budget -= 1;
        if p == pat.len() && t == text.len() {
            break;
        }
        match pat.get(p) {
            Some(Pat::Star) => {
                back = Some((p, t, t, caps.len()));
                caps.push((t, t));
                p += 1;
                continue;
            }
            Some(Pat::One) if t < text.len() => {
                caps.push((t, t + 1));
                p += 1;
                t += 1;
                continue;
            }
            Some(Pat::Lit(c)) if text.get(t).is_some_and(|&(_, ch)| cmp.char_eq(ch, *c)) => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        // Mismatch: let the last star take one more character.
        match back {
            Some((sp, start, end, ncap)) if end < text.len() => {
                caps.truncate(ncap);
                caps.push((start, end + 1));
                back = Some((sp, start, end + 1, ncap));
                p = sp + 1;
                t = end + 1;
            }
            _ => return Ok(None),
        }
    }
    let mut out = Vec::with_capacity(caps.len() + 1);
    out.push(value.to_string());
    for (s, e) in caps {
        out.push(value.get(byte_at(s)..byte_at(e)).unwrap_or("").to_string());
    }
    Ok(Some(out))
}

/// Builds the regex for a `:regex` key under `cmp` (`i;ascii-casemap` matches without regard
/// to case; `i;octet` exactly), within the named size limits.
pub fn build_regex(pattern: &str, cmp: Comparator) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(cmp == Comparator::AsciiCasemap)
        .size_limit(SIEVE_REGEX_SIZE_LIMIT)
        .dfa_size_limit(SIEVE_REGEX_DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => "regular expression too big".to_string(),
            other => format!(
                "invalid regular expression: {}",
                first_line(&other.to_string())
            ),
        })
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}

/// `:regex`: the match variables on a match (group 0 and the groups, unmatched ones empty).
pub fn regex_match(value: &str, re: &regex::Regex) -> Option<Vec<String>> {
    let caps = re.captures(value)?;
    Some(
        caps.iter()
            .map(|m| m.map_or(String::new(), |m| m.as_str().to_string()))
            .collect(),
    )
}

/// `set :quotewildcard`: a backslash before `*`, `?` and `\`.
pub fn quote_wildcard(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `set :quoteregex`: a backslash before every regex metacharacter.
pub fn quote_regex(s: &str) -> String {
    regex::escape(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: &str, p: &str) -> Option<Vec<String>> {
        let mut budget = 1_000_000;
        wildcard(v, p, Comparator::AsciiCasemap, &mut budget).expect("budget")
    }

    #[test]
    fn rfc5229_non_greedy_captures() {
        // RFC 5229 section 3.2 example: "*<*@*" on a List-ID.
        let c = m("Sieve discussion <sieve.example.com>", "*<*.*").expect("match");
        assert_eq!(c[1], "Sieve discussion ");
        assert_eq!(c[2], "sieve");
        assert_eq!(c[3], "example.com>");
        let c = m("coyote@example.com", "*@*").expect("match");
        assert_eq!((c[1].as_str(), c[2].as_str()), ("coyote", "example.com"));
        let c = m("abc", "?b?").expect("match");
        assert_eq!((c[1].as_str(), c[2].as_str()), ("a", "c"));
        assert!(m("abc", "a*d").is_none());
        assert!(m("", "*").is_some());
        assert!(m("a*c", "a\\*c").is_some());
        assert!(m("abc", "a\\*c").is_none());
        assert!(m("MAKE MONEY FAST", "*money*").is_some());
    }

    #[test]
    fn budget_stops_matching() {
        let mut budget = 100;
        let v = "a".repeat(1000);
        assert_eq!(
            wildcard(&v, "*a*a*a*b", Comparator::Octet, &mut budget),
            Err(Exhausted)
        );
    }

    #[test]
    fn regex_limits_and_captures() {
        let re = build_regex("^(\\w+)@(.*)$", Comparator::AsciiCasemap).expect("ok");
        let c = regex_match("Joe@Example.org", &re).expect("match");
        assert_eq!((c[1].as_str(), c[2].as_str()), ("Joe", "Example.org"));
        assert!(build_regex("(a{1000}){1000}", Comparator::Octet).is_err());
        assert!(build_regex("(", Comparator::Octet).is_err());
    }
}
