//! The keyword table: 26 letters in `dovecot-keywords` (carried in file names), the rest in
//! `mailcove-keywords` (carried in the index).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::limits::{
    MAILDIR_KEYWORD_LETTERS, MAX_KEYWORD_BYTES, MAX_KEYWORDS_FILE_BYTES, MAX_KEYWORDS_PER_MAILBOX,
    MAX_SMALL_FILE_BYTES,
};
use crate::storage::maildir::dovecot::{self, KEYWORDS_FILE};
use crate::storage::maildir::filename;
use crate::storage::maildir::fsutil::{append_durable, read_small, write_atomic};
use crate::storage::maildir::index;
use crate::storage::{Flags, KeywordSet, Result, StorageError};

use super::{Ctx, Inner, stamp_of};

impl Inner {
    /// The keywords named `names` (ASCII case-insensitive), as a set of table indexes. With
    /// `create`, names the table lacks are added first: all of them, or none when one is not a
    /// valid keyword or they would not fit ([`MAX_KEYWORDS_PER_MAILBOX`]). New names are on
    /// disk before this returns (`dovecot-keywords` for the 26 file-name letters,
    /// `mailcove-keywords` beyond), so no record can name a keyword that another process
    /// cannot find. Without `create`, unknown names are left out.
    pub(super) fn intern_keywords(
        &mut self,
        ctx: &Ctx<'_>,
        names: &[String],
        create: bool,
    ) -> Result<KeywordSet> {
        if create {
            let lookup = self.keyword_lookup();
            let mut new: Vec<&str> = Vec::new();
            let mut seen: HashSet<String> = HashSet::new();
            for n in names {
                let lower = n.to_ascii_lowercase();
                if !lookup.contains_key(&lower) && seen.insert(lower) {
                    check_keyword_name(n)?;
                    new.push(n);
                }
            }
            if !new.is_empty() {
                if self.keywords.len() + new.len() > MAX_KEYWORDS_PER_MAILBOX {
                    return Err(StorageError::Invalid(TOO_MANY_KEYWORDS));
                }
                let first_new = self.keywords.len();
                self.keywords.extend(new.into_iter().map(str::to_owned));
                self.keywords_arc = None;
                // The lookup map grows with the table instead of being rebuilt (rebuilding it
                // for every keyword-creating STORE made 10,000 keywords quadratic).
                if let Some(map) = self.keyword_lookup.as_mut() {
                    for (i, k) in self.keywords.iter().enumerate().skip(first_new) {
                        map.entry(k.to_ascii_lowercase()).or_insert(i);
                    }
                }
                self.version += 1;
                if first_new < MAILDIR_KEYWORD_LETTERS {
                    let path = ctx.dir.join(KEYWORDS_FILE);
                    let text = dovecot::format_keywords(&self.keywords, 0..MAILDIR_KEYWORD_LETTERS);
                    write_atomic(&path, &text, ctx.fsync)?;
                    self.keywords_stamp = stamp_of(&path);
                }
                if self.keywords.len() > MAILDIR_KEYWORD_LETTERS {
                    self.write_more_keywords(ctx, first_new)?;
                }
            }
        }
        let lookup = self.keyword_lookup();
        Ok(names
            .iter()
            .filter_map(|n| lookup.get(&n.to_ascii_lowercase()).copied())
            .collect())
    }

    /// Puts the keywords from `first_new` on (those from index 26) into `mailcove-keywords`,
    /// durably: appended when the file already holds every earlier one and ends with a whole
    /// line, so a STORE creating keywords writes what it adds, not the whole table again (with
    /// 10,000 keywords of up to 128 bytes that was up to 1.3 MB per STORE). Otherwise (no file
    /// yet, a torn tail, a file changed by someone else) the whole table is written atomically.
    /// We hold the flock, and every reader does too, so no reader sees half an append; a crash
    /// mid-append leaves a last line without its newline, which readers ignore (it was never
    /// acknowledged) and the next writer replaces.
    fn write_more_keywords(&mut self, ctx: &Ctx<'_>, first_new: usize) -> Result<()> {
        let path = ctx.dir.join(index::KEYWORDS_FILE);
        let from = first_new.max(MAILDIR_KEYWORD_LETTERS);
        if self.more_keywords_whole
            && self.more_keywords_stamp.is_some()
            && stamp_of(&path) == self.more_keywords_stamp
        {
            let text = dovecot::format_keywords(&self.keywords, from..MAX_KEYWORDS_PER_MAILBOX);
            append_durable(&path, &text, ctx.fsync)?;
        } else {
            let beyond = MAILDIR_KEYWORD_LETTERS..MAX_KEYWORDS_PER_MAILBOX;
            let text = dovecot::format_keywords(&self.keywords, beyond);
            write_atomic(&path, &text, ctx.fsync)?;
            // A hole in the table (a name lost from a damaged file) is not written: the file
            // then lacks an index, and the next new keyword rewrites it again.
            let mut beyond_names = self.keywords.iter().skip(MAILDIR_KEYWORD_LETTERS);
            self.more_keywords_whole = beyond_names.all(|k| !k.is_empty());
        }
        self.more_keywords_stamp = stamp_of(&path);
        Ok(())
    }

    /// The `keyword_lookup` map, built if the table changed since.
    fn keyword_lookup(&mut self) -> &HashMap<String, usize> {
        self.keyword_lookup.get_or_insert_with(|| {
            let mut m = HashMap::with_capacity(self.keywords.len());
            for (i, k) in self.keywords.iter().enumerate() {
                if !k.is_empty() {
                    m.entry(k.to_ascii_lowercase()).or_insert(i);
                }
            }
            m
        })
    }

    /// Rereads the keyword table when `dovecot-keywords` or `mailcove-keywords` changed.
    pub(super) fn reload_keywords(&mut self, dir: &Path) -> Result<bool> {
        let path = dir.join(KEYWORDS_FILE);
        let more_path = dir.join(index::KEYWORDS_FILE);
        let stamp = stamp_of(&path);
        let more_stamp = stamp_of(&more_path);
        if stamp == self.keywords_stamp && more_stamp == self.more_keywords_stamp {
            return Ok(false);
        }
        let data = read_small(&path, MAX_SMALL_FILE_BYTES)?.unwrap_or_default();
        let mut k = dovecot::parse_keywords(&data, 0..MAILDIR_KEYWORD_LETTERS);
        let more = read_small(&more_path, MAX_KEYWORDS_FILE_BYTES)?.unwrap_or_default();
        // Only whole lines: a last line without its newline is a torn append (see
        // `write_more_keywords`), and a cut name must not become a keyword.
        let whole = more.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let torn = whole < more.len();
        let more = dovecot::parse_keywords(
            more.get(..whole).unwrap_or_default(),
            MAILDIR_KEYWORD_LETTERS..MAX_KEYWORDS_PER_MAILBOX,
        );
        // Names the file gives, from 26 on, with no hole.
        let file_names = more.len().max(MAILDIR_KEYWORD_LETTERS);
        let no_hole = more
            .iter()
            .skip(MAILDIR_KEYWORD_LETTERS)
            .all(|s| !s.is_empty());
        if more.len() > MAILDIR_KEYWORD_LETTERS {
            k.resize(MAILDIR_KEYWORD_LETTERS, String::new());
            k.extend(more.into_iter().skip(MAILDIR_KEYWORD_LETTERS));
        }
        // Never shrink: bits already handed out keep their meaning.
        if k.len() < self.keywords.len() {
            k.resize(self.keywords.len(), String::new());
        }
        for (i, old) in self.keywords.iter().enumerate() {
            if let Some(slot) = k.get_mut(i)
                && slot.is_empty()
            {
                slot.clone_from(old);
            }
        }
        let changed = k != self.keywords;
        // Appending is safe only when the file names every keyword from 26 on itself.
        self.more_keywords_whole = !torn && no_hole && k.len() <= file_names;
        self.keywords = k;
        self.keywords_stamp = stamp;
        self.more_keywords_stamp = more_stamp;
        if changed {
            self.keywords_arc = None;
            self.keyword_lookup = None;
            self.reparse_flags();
        }
        Ok(changed)
    }

    /// Recomputes keyword bits from file names after the table grew (the keywords beyond
    /// the letters come from the index and stay).
    fn reparse_flags(&mut self) {
        let n = self.keywords.len();
        for (i, f) in self.files.iter().enumerate() {
            let Some(m) = self.list.get(i) else { continue };
            let flags = name_flags(&f.name, n, &m.flags.keywords);
            if m.flags != flags {
                self.list.update(i, |m| m.flags = flags);
            }
        }
        self.version += 1;
    }
}

/// What a client is told past [`MAX_KEYWORDS_PER_MAILBOX`] (a unit test keeps the number true).
const TOO_MANY_KEYWORDS: &str = "too many keywords in this mailbox (at most 10000)";

/// The keywords of `set` that a file name cannot carry (index 26 and up): the index keeps them.
pub(super) fn beyond_letters(set: &KeywordSet) -> KeywordSet {
    set.split_at(MAILDIR_KEYWORD_LETTERS).1
}

/// The flags a file name carries, plus the keywords beyond the letters of `keywords` (which
/// the name cannot carry, so a rename by anyone leaves them as they were).
pub(super) fn name_flags(name: &str, keyword_count: usize, keywords: &KeywordSet) -> Flags {
    let mut flags = filename::flags_of(name, keyword_count);
    flags.keywords.union_with(&beyond_letters(keywords));
    flags
}

/// Refuses a keyword name that IMAP could not send back as an atom, or that is too long.
fn check_keyword_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > MAX_KEYWORD_BYTES
        || name.starts_with('\\')
        || name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "(){%*\"]".contains(c))
    {
        return Err(StorageError::Invalid("bad keyword"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{MAX_KEYWORDS_PER_MAILBOX, TOO_MANY_KEYWORDS};

    #[test]
    fn the_keyword_limit_message_names_the_limit() {
        let n = MAX_KEYWORDS_PER_MAILBOX.to_string();
        assert!(TOO_MANY_KEYWORDS.ends_with(&format!("(at most {n})")));
    }
}
