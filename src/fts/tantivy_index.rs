//! [`FtsIndex`] on tantivy: one index per user, in a directory (Maildir) or in RAM (memory
//! backend).
//!
//! Schema: `mbox` (the [`super::mailbox_key`], raw), `doc` (mailbox key and UID, raw: what a
//! replacement or removal deletes by), `uid` (fast field) and `text`, tokenized into trigrams
//! with tantivy's n-gram tokenizer, indexed without frequencies, positions or field norms (only
//! "does this message have the trigram" is asked), nothing stored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use tantivy::collector::DocSetCollector;
use tantivy::directory::MmapDirectory;
use tantivy::indexer::IndexWriterOptions;
use tantivy::query::{BooleanQuery, Occur, Query, RegexQuery, TermQuery};
use tantivy::schema::{
    Field, INDEXED, IndexRecordOption, NumericOptions, STRING, Schema, TextFieldIndexing,
    TextOptions,
};
use tantivy::tokenizer::NgramTokenizer;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

use super::{FtsDoc, FtsIndex, FtsStatus, NGRAM_CHARS, trigrams};
use crate::limits::FTS_WRITER_LOCK_WAIT;
use crate::storage::{Result, StorageError};

const TOKENIZER: &str = "mailcove_trigram";

/// tantivy's smallest writer budget (`MEMORY_BUDGET_NUM_BYTES_MIN`, not exported).
const TANTIVY_MIN_WRITER_BYTES: usize = 15_000_000;

fn err(context: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Temporary(format!("full-text index: {context}: {e}"))
}

struct Fields {
    mbox: Field,
    doc: Field,
    uid: Field,
    text: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let mbox = b.add_text_field("mbox", STRING);
    let doc = b.add_text_field("doc", STRING);
    let uid = b.add_u64_field("uid", NumericOptions::default().set_fast() | INDEXED);
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(TOKENIZER)
        .set_index_option(IndexRecordOption::Basic)
        .set_fieldnorms(false);
    let text = b.add_text_field(
        "text",
        TextOptions::default().set_indexing_options(indexing),
    );
    (
        b.build(),
        Fields {
            mbox,
            doc,
            uid,
            text,
        },
    )
}

/// A user's full-text index on tantivy.
pub struct TantivyFts {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// The directory, or `None` in RAM.
    dir: Option<PathBuf>,
    /// Memory the writer may buffer before it writes a segment
    /// ([`crate::limits::FTS_WRITER_MEMORY_BYTES`]).
    memory: usize,
    /// One writer at a time in this process (tantivy's lock file keeps other processes out).
    writing: Mutex<()>,
    /// The covered UIDs of recently searched mailboxes, with the segments (and their deletes)
    /// they were read from: every search asks for them, and they only change with a commit.
    covered: Mutex<HashMap<String, (Segments, Vec<u32>)>>,
}

/// What identifies the contents of a searcher: each segment and its deleted-document count.
type Segments = Vec<(tantivy::index::SegmentId, u32)>;

/// Mailboxes whose covered UIDs [`TantivyFts`] keeps (per user).
const COVERED_CACHE: usize = 16;

fn segments(s: &Searcher) -> Segments {
    s.segment_readers()
        .iter()
        .map(|r| (r.segment_id(), r.num_deleted_docs()))
        .collect()
}

/// A regular expression for the `mbox` terms ([`super::mailbox_key`]) of storage `identity`
/// under any UIDVALIDITY; every character but letters and digits escaped (identities are paths).
fn mailbox_pattern(identity: &str) -> String {
    let mut p = String::with_capacity(identity.len() * 2 + 16);
    for c in identity.chars() {
        if c.is_alphanumeric() {
            p.push(c);
        } else {
            p.push_str(&format!("\\x{{{:x}}}", u32::from(c)));
        }
    }
    p.push_str("\\x{1}[0-9]+");
    p
}

fn doc_id(key: &str, uid: u32) -> String {
    format!("{key}\u{2}{uid}")
}

impl TantivyFts {
    /// An empty index in RAM.
    pub fn in_ram(memory: usize) -> Result<TantivyFts> {
        let (schema, fields) = schema();
        Self::with_index(Index::create_in_ram(schema), fields, None, memory)
    }

    /// The index in directory `dir`, created when missing. One that cannot be opened (damaged,
    /// or of another schema) is removed and created empty: searches scan until the background
    /// indexer has filled it again.
    pub fn open_dir(dir: &Path, memory: usize) -> Result<TantivyFts> {
        match Self::try_open_dir(dir, memory) {
            Ok(f) => Ok(f),
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "full-text index unusable; starting it again");
                std::fs::remove_dir_all(dir).map_err(|e| err("remove damaged index", e))?;
                Self::try_open_dir(dir, memory)
            }
        }
    }

    fn try_open_dir(dir: &Path, memory: usize) -> Result<TantivyFts> {
        std::fs::create_dir_all(dir).map_err(|e| err("create index directory", e))?;
        let (schema, fields) = schema();
        let mmap = MmapDirectory::open(dir).map_err(|e| err("open", e))?;
        let index = Index::open_or_create(mmap, schema).map_err(|e| err("open", e))?;
        Self::with_index(index, fields, Some(dir.to_path_buf()), memory)
    }

    fn with_index(
        index: Index,
        fields: Fields,
        dir: Option<PathBuf>,
        memory: usize,
    ) -> Result<TantivyFts> {
        let ngrams = NgramTokenizer::all_ngrams(NGRAM_CHARS, NGRAM_CHARS)
            .map_err(|e| err("tokenizer", e))?;
        index.tokenizers().register(TOKENIZER, ngrams);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| err("reader", e))?;
        Ok(TantivyFts {
            index,
            reader,
            fields,
            dir,
            // tantivy refuses a budget under 15 MB per writer thread.
            memory: memory.max(TANTIVY_MIN_WRITER_BYTES),
            writing: Mutex::new(()),
            covered: Mutex::new(HashMap::new()),
        })
    }

    /// A searcher on the last commit (by this process or another one, e.g. the admin CLI).
    fn searcher(&self) -> Result<Searcher> {
        self.reader.reload().map_err(|e| err("reload", e))?;
        Ok(self.reader.searcher())
    }

    /// Runs `f` with a writer, commits, lets merges finish and makes the result visible.
    fn write(&self, f: impl FnOnce(&IndexWriter, &Fields) -> Result<()>) -> Result<()> {
        let _one = self.writing.lock();
        let options = IndexWriterOptions::builder()
            .memory_budget_per_thread(self.memory)
            .num_worker_threads(1)
            .num_merge_threads(1)
            .build();
        // Another process (the admin CLI, or the daemon while the CLI writes) may hold tantivy's
        // writer lock for a moment: wait for it, within a bound.
        let deadline = std::time::Instant::now() + FTS_WRITER_LOCK_WAIT;
        let mut w: IndexWriter = loop {
            match self.index.writer_with_options(options.clone()) {
                Ok(w) => break w,
                Err(tantivy::TantivyError::LockFailure(..))
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(err("writer (another process may be writing)", e)),
            }
        };
        f(&w, &self.fields)?;
        w.commit().map_err(|e| err("commit", e))?;
        w.wait_merging_threads().map_err(|e| err("merge", e))?;
        self.reader.reload().map_err(|e| err("reload", e))
    }

    /// The UIDs of the documents `query` finds, ascending.
    fn uids(&self, searcher: &Searcher, query: &dyn Query) -> Result<Vec<u32>> {
        let found = searcher
            .search(query, &DocSetCollector)
            .map_err(|e| err("search", e))?;
        let mut columns = HashMap::new();
        let mut out = Vec::with_capacity(found.len());
        for a in found {
            let col = match columns.entry(a.segment_ord) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(
                    searcher
                        .segment_reader(a.segment_ord)
                        .fast_fields()
                        .u64("uid")
                        .map_err(|e| err("uid column", e))?,
                ),
            };
            if let Some(uid) = col.first(a.doc_id).and_then(|u| u32::try_from(u).ok()) {
                out.push(uid);
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn mbox_query(&self, key: &str) -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(self.fields.mbox, key),
            IndexRecordOption::Basic,
        ))
    }
}

impl FtsIndex for TantivyFts {
    fn covered(&self, key: &str) -> Result<Vec<u32>> {
        let s = self.searcher()?;
        let now = segments(&s);
        if let Some((seen, uids)) = self.covered.lock().get(key)
            && *seen == now
        {
            return Ok(uids.clone());
        }
        let uids = self.uids(&s, self.mbox_query(key).as_ref())?;
        let mut cache = self.covered.lock();
        if cache.len() >= COVERED_CACHE {
            cache.clear();
        }
        cache.insert(key.to_owned(), (now, uids.clone()));
        Ok(uids)
    }

    fn add(&self, key: &str, docs: Vec<FtsDoc>) -> Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        self.write(|w, f| {
            for d in docs {
                let id = doc_id(key, d.uid);
                w.delete_term(Term::from_field_text(f.doc, &id));
                let mut doc = TantivyDocument::default();
                doc.add_text(f.mbox, key);
                doc.add_text(f.doc, &id);
                doc.add_u64(f.uid, u64::from(d.uid));
                doc.add_text(f.text, &d.text);
                w.add_document(doc).map_err(|e| err("add", e))?;
            }
            Ok(())
        })
    }

    fn candidates(&self, key: &str, needle: &str) -> Result<Option<Vec<u32>>> {
        let grams = trigrams(needle);
        if grams.is_empty() {
            return Ok(None);
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, self.mbox_query(key))];
        for g in grams {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(self.fields.text, &g),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        let s = self.searcher()?;
        self.uids(&s, &BooleanQuery::new(clauses)).map(Some)
    }

    fn remove(&self, key: &str, uids: &[u32]) -> Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        self.write(|w, f| {
            for &uid in uids {
                w.delete_term(Term::from_field_text(f.doc, &doc_id(key, uid)));
            }
            Ok(())
        })
    }

    fn remove_mailbox(&self, identity: &str) -> Result<()> {
        let pattern = mailbox_pattern(identity);
        self.write(|w, f| {
            let q = RegexQuery::from_pattern(&pattern, f.mbox).map_err(|e| err("purge", e))?;
            w.delete_query(Box::new(q)).map_err(|e| err("purge", e))?;
            Ok(())
        })
    }

    fn clear(&self) -> Result<()> {
        self.write(|w, _| {
            w.delete_all_documents().map_err(|e| err("clear", e))?;
            Ok(())
        })
    }

    fn status(&self) -> Result<FtsStatus> {
        let s = self.searcher()?;
        let disk_bytes = match &self.dir {
            Some(d) => Some(dir_size(d).map_err(|e| err("size", e))?),
            None => None,
        };
        Ok(FtsStatus {
            messages: s.num_docs(),
            disk_bytes,
        })
    }
}

fn dir_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let m = e?.metadata()?;
        if m.is_file() {
            total += m.len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::FTS_WRITER_MEMORY_BYTES;

    fn doc(uid: u32, text: &str) -> FtsDoc {
        FtsDoc {
            uid,
            text: crate::mime::casemap::casemap(text),
        }
    }

    fn check(f: &TantivyFts) {
        let k = super::super::mailbox_key("m", 1);
        let other = super::super::mailbox_key("m", 2);
        let add = f.add(
            &k,
            vec![
                doc(1, "Trip to Zanzibar"),
                doc(2, "Grüße aus Köln"),
                doc(5, "zan z"),
            ],
        );
        assert!(add.is_ok(), "{add:?}");
        assert!(f.add(&other, vec![doc(1, "zanzibar too")]).is_ok());
        assert_eq!(f.covered(&k).ok(), Some(vec![1, 2, 5]));
        let c = |n: &str| f.candidates(&k, &crate::mime::casemap::casemap(n)).ok();
        assert_eq!(c("zanz"), Some(Some(vec![1])));
        assert_eq!(c("KÖLN"), Some(Some(vec![2])));
        assert_eq!(c("grüß"), Some(Some(vec![2])));
        assert_eq!(c("zz"), Some(None));
        assert_eq!(c("xyz"), Some(Some(vec![])));
        // Replacing a message keeps one document for it; removing forgets it.
        assert!(f.add(&k, vec![doc(2, "now zanzibar")]).is_ok());
        assert_eq!(c("zanz"), Some(Some(vec![1, 2])));
        assert!(f.remove(&k, &[1]).is_ok());
        assert_eq!(c("zanz"), Some(Some(vec![2])));
        assert_eq!(f.status().ok().map(|s| s.messages), Some(3));
        // A deleted mailbox is forgotten under every UIDVALIDITY, and only it.
        let odd_id = "m.[x]+(y)\\ü*";
        let odd = super::super::mailbox_key(odd_id, 3);
        assert!(f.add(&odd, vec![doc(7, "x")]).is_ok());
        assert!(f.remove_mailbox("m").is_ok());
        assert_eq!(f.covered(&k).ok(), Some(vec![]));
        assert_eq!(f.covered(&other).ok(), Some(vec![]));
        assert_eq!(f.covered(&odd).ok(), Some(vec![7]));
        assert!(f.remove_mailbox(odd_id).is_ok());
        assert_eq!(f.covered(&odd).ok(), Some(vec![]));
        assert!(f.add(&k, vec![doc(1, "again")]).is_ok());
        assert!(f.clear().is_ok());
        assert_eq!(f.covered(&k).ok(), Some(vec![]));
    }

    #[test]
    fn ram_index_finds_candidates_per_mailbox() {
        match TantivyFts::in_ram(FTS_WRITER_MEMORY_BYTES) {
            Ok(f) => check(&f),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn dir_index_survives_reopen_and_damage() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path().join("fts");
        let k = super::super::mailbox_key("m", 1);
        {
            let f = TantivyFts::open_dir(&dir, FTS_WRITER_MEMORY_BYTES)
                .unwrap_or_else(|e| panic!("{e}"));
            check(&f);
            assert!(f.add(&k, vec![doc(9, "kept")]).is_ok());
        }
        let f =
            TantivyFts::open_dir(&dir, FTS_WRITER_MEMORY_BYTES).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.covered(&k).ok(), Some(vec![9]));
        assert!(
            f.status()
                .ok()
                .and_then(|s| s.disk_bytes)
                .is_some_and(|b| b > 0)
        );
        drop(f);
        // A damaged meta.json: opened again empty.
        assert!(std::fs::write(dir.join("meta.json"), b"{not json").is_ok());
        let f =
            TantivyFts::open_dir(&dir, FTS_WRITER_MEMORY_BYTES).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.covered(&k).ok(), Some(vec![]));
    }
}
