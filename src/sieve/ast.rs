//! The typed AST the compiler builds and the interpreter runs: one variant per command and per
//! test, with its checked arguments.

use super::comparators::Comparator;

/// A piece of a string that may hold variable references (RFC 5229 section 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrPart {
    /// Literal text.
    Lit(String),
    /// `${name}` (lowercased; `global.x` for the global namespace of RFC 6609).
    Var(String),
    /// `${N}`: a match variable.
    Match(usize),
}

/// A string argument: a constant, or a template when `variables` is required and the string
/// contains references.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Str {
    /// The parts, in order.
    pub parts: Vec<StrPart>,
}

impl Str {
    /// A constant string.
    pub fn lit(s: impl Into<String>) -> Str {
        Str {
            parts: vec![StrPart::Lit(s.into())],
        }
    }

    /// The text when the string holds no variable reference.
    pub fn constant(&self) -> Option<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                StrPart::Lit(s) => out.push_str(s),
                _ => return None,
            }
        }
        Some(out)
    }
}

/// A string list argument.
pub type StrList = Vec<Str>;

/// RFC 5231 relational operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// `gt`
    Gt,
    /// `ge`
    Ge,
    /// `lt`
    Lt,
    /// `le`
    Le,
    /// `eq`
    Eq,
    /// `ne`
    Ne,
}

impl Relation {
    /// The relation named by a `:value`/`:count` argument.
    pub fn parse(s: &str) -> Option<Relation> {
        Some(match s.to_ascii_lowercase().as_str() {
            "gt" => Relation::Gt,
            "ge" => Relation::Ge,
            "lt" => Relation::Lt,
            "le" => Relation::Le,
            "eq" => Relation::Eq,
            "ne" => Relation::Ne,
            _ => return None,
        })
    }

    /// Whether `ord` (value compared to key) satisfies the relation.
    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Relation::Gt => ord == Greater,
            Relation::Ge => ord != Less,
            Relation::Lt => ord == Less,
            Relation::Le => ord != Greater,
            Relation::Eq => ord == Equal,
            Relation::Ne => ord != Equal,
        }
    }
}

/// The match type of a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchKind {
    /// `:is`
    Is,
    /// `:contains`
    Contains,
    /// `:matches` (wildcards `*`, `?`)
    Matches,
    /// `:regex` (draft-ietf-sieve-regex)
    Regex,
    /// `:value` (RFC 5231)
    Value(Relation),
    /// `:count` (RFC 5231)
    Count(Relation),
}

/// Comparator and match type of a test, and the keys' regexes compiled ahead when constant.
#[derive(Debug, Clone)]
pub struct MatchSpec {
    /// The comparator.
    pub comparator: Comparator,
    /// The match type.
    pub kind: MatchKind,
    /// For `:regex`: the compiled key for each constant key (same order as the keys).
    pub regexes: Vec<Option<regex::Regex>>,
}

/// Which part of an address a test looks at (RFC 5228 section 2.7.4, RFC 5233).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressPart {
    /// `:all`
    All,
    /// `:localpart`
    Localpart,
    /// `:domain`
    Domain,
    /// `:user` (subaddress)
    User,
    /// `:detail` (subaddress)
    Detail,
}

/// RFC 5260 section 6 `:index`/`:last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    /// 1-based field number.
    pub n: u64,
    /// Count from the last field.
    pub last: bool,
}

/// RFC 5260 `:zone` / `:originalzone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// Neither: the server's zone (UTC here).
    Local,
    /// `:zone "+hhmm"`: offset in minutes east of UTC.
    Fixed(i32),
    /// `:originalzone`.
    Original,
}

/// RFC 5173 body transforms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyTransform {
    /// `:raw`
    Raw,
    /// `:content <types>`
    Content(StrList),
    /// `:text` (the default)
    Text,
}

/// What `duplicate` tracks (RFC 7352).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DupSource {
    /// The Message-ID header (default).
    MessageId,
    /// `:header NAME`.
    Header(Str),
    /// `:uniqueid VALUE`.
    UniqueId(Str),
}

/// A test.
#[derive(Debug, Clone)]
pub enum Test {
    /// `true`
    True,
    /// `false`
    False,
    /// `not`
    Not(Box<Test>),
    /// `allof`
    AllOf(Vec<Test>),
    /// `anyof`
    AnyOf(Vec<Test>),
    /// `address`
    Address {
        /// Comparator and match type.
        m: MatchSpec,
        /// Address part.
        part: AddressPart,
        /// `:index`.
        index: Option<Index>,
        /// Header names.
        headers: StrList,
        /// Keys.
        keys: StrList,
    },
    /// `envelope`
    Envelope {
        /// Comparator and match type.
        m: MatchSpec,
        /// Address part.
        part: AddressPart,
        /// Envelope parts ("from", "to", "auth").
        parts: StrList,
        /// Keys.
        keys: StrList,
    },
    /// `header`
    Header {
        /// Comparator and match type.
        m: MatchSpec,
        /// `:index`.
        index: Option<Index>,
        /// Header names.
        headers: StrList,
        /// Keys.
        keys: StrList,
    },
    /// `exists`
    Exists(StrList),
    /// `size`
    Size {
        /// `:over` (else `:under`).
        over: bool,
        /// The limit.
        limit: u64,
    },
    /// `body`
    Body {
        /// Comparator and match type.
        m: MatchSpec,
        /// Transform.
        transform: BodyTransform,
        /// Keys.
        keys: StrList,
    },
    /// `date`
    Date {
        /// Comparator and match type.
        m: MatchSpec,
        /// Zone.
        zone: Zone,
        /// `:index`.
        index: Option<Index>,
        /// Header name.
        header: Str,
        /// Date part.
        part: Str,
        /// Keys.
        keys: StrList,
    },
    /// `currentdate`
    CurrentDate {
        /// Comparator and match type.
        m: MatchSpec,
        /// Zone.
        zone: Zone,
        /// Date part.
        part: Str,
        /// Keys.
        keys: StrList,
    },
    /// `string` (variables)
    String {
        /// Comparator and match type.
        m: MatchSpec,
        /// Source strings.
        sources: StrList,
        /// Keys.
        keys: StrList,
    },
    /// `hasflag` (imap4flags)
    HasFlag {
        /// Comparator and match type.
        m: MatchSpec,
        /// Variables to look in (default: the internal flags variable).
        vars: Option<StrList>,
        /// Flags (keys).
        flags: StrList,
    },
    /// `mailboxexists` (mailbox)
    MailboxExists(StrList),
    /// `environment`
    Environment {
        /// Comparator and match type.
        m: MatchSpec,
        /// Item name.
        name: Str,
        /// Keys.
        keys: StrList,
    },
    /// `spamtest`
    SpamTest {
        /// Comparator and match type.
        m: MatchSpec,
        /// `:percent` (spamtestplus).
        percent: bool,
        /// The value key.
        value: Str,
    },
    /// `virustest`
    VirusTest {
        /// Comparator and match type.
        m: MatchSpec,
        /// The value key.
        value: Str,
    },
    /// `duplicate`
    Duplicate {
        /// `:handle`.
        handle: Option<Str>,
        /// What is tracked.
        source: DupSource,
        /// `:seconds`.
        seconds: Option<u64>,
        /// `:last`.
        last: bool,
    },
    /// `metadata` (mboxmetadata) and `servermetadata` (servermetadata, `mailbox: None`).
    Metadata {
        /// Comparator and match type.
        m: MatchSpec,
        /// The mailbox; `None` for server annotations.
        mailbox: Option<Str>,
        /// The annotation name (`/private/comment`).
        entry: Str,
        /// Keys.
        keys: StrList,
    },
    /// `metadataexists` / `servermetadataexists`: all the annotations exist.
    MetadataExists {
        /// The mailbox; `None` for server annotations.
        mailbox: Option<Str>,
        /// The annotation names.
        entries: StrList,
    },
    /// `specialuse_exists` (special-use)
    SpecialUseExists {
        /// The mailbox, if given.
        mailbox: Option<Str>,
        /// The special-use attributes.
        uses: StrList,
    },
}

/// `addflag`/`setflag`/`removeflag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    /// `setflag`
    Set,
    /// `addflag`
    Add,
    /// `removeflag`
    Remove,
}

/// `set` modifiers (RFC 5229 section 4.1, draft regex `:quoteregex`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Modifier {
    /// `:lower` (precedence 40)
    Lower,
    /// `:upper` (40)
    Upper,
    /// `:lowerfirst` (30)
    LowerFirst,
    /// `:upperfirst` (30)
    UpperFirst,
    /// `:quotewildcard` (20)
    QuoteWildcard,
    /// `:quoteregex` (20)
    QuoteRegex,
    /// `:length` (10)
    Length,
}

impl Modifier {
    /// RFC 5229 precedence: higher is applied first.
    pub fn precedence(self) -> u8 {
        match self {
            Modifier::Lower | Modifier::Upper => 40,
            Modifier::LowerFirst | Modifier::UpperFirst => 30,
            Modifier::QuoteWildcard | Modifier::QuoteRegex => 20,
            Modifier::Length => 10,
        }
    }
}

/// `vacation`'s arguments.
#[derive(Debug, Clone)]
pub struct Vacation {
    /// `:days`.
    pub days: Option<u64>,
    /// `:seconds` (vacation-seconds).
    pub seconds: Option<u64>,
    /// `:subject`.
    pub subject: Option<Str>,
    /// `:from`.
    pub from: Option<Str>,
    /// `:addresses`.
    pub addresses: StrList,
    /// `:mime`.
    pub mime: bool,
    /// `:handle`.
    pub handle: Option<Str>,
    /// The reason.
    pub reason: Str,
}

/// A command.
#[derive(Debug, Clone)]
pub enum Cmd {
    /// `if` / `elsif` ... / `else`, joined into one.
    If {
        /// Each test with its block.
        branches: Vec<(Test, Vec<Cmd>)>,
        /// The `else` block.
        otherwise: Option<Vec<Cmd>>,
    },
    /// `stop`
    Stop,
    /// `keep [:flags]`
    Keep {
        /// `:flags` (imap4flags).
        flags: Option<StrList>,
    },
    /// `discard`
    Discard,
    /// `redirect [:copy]`
    Redirect {
        /// The address.
        address: Str,
        /// `:copy`.
        copy: bool,
    },
    /// `fileinto`
    FileInto {
        /// Mailbox.
        mailbox: Str,
        /// `:flags`.
        flags: Option<StrList>,
        /// `:copy`.
        copy: bool,
        /// `:create`.
        create: bool,
        /// `:specialuse`.
        special_use: Option<Str>,
    },
    /// `reject` / `ereject`
    Reject {
        /// Reason.
        reason: Str,
        /// `ereject`.
        extended: bool,
    },
    /// `setflag` / `addflag` / `removeflag`
    Flag {
        /// Which.
        op: FlagOp,
        /// Variable name (default: the internal variable).
        var: Option<Str>,
        /// Flags.
        flags: StrList,
    },
    /// `set`
    Set {
        /// Variable name (lowercased).
        name: String,
        /// Value.
        value: Str,
        /// Modifiers, sorted by precedence (highest first).
        modifiers: Vec<Modifier>,
    },
    /// `vacation`
    Vacation(Box<Vacation>),
    /// `include`
    Include {
        /// `:global` (else `:personal`).
        global: bool,
        /// `:once`.
        once: bool,
        /// `:optional`.
        optional: bool,
        /// Script name.
        name: Str,
    },
    /// `return`
    Return,
    /// `global`
    Global(Vec<String>),
    /// `addheader`
    AddHeader {
        /// `:last`.
        last: bool,
        /// Field name.
        name: Str,
        /// Field value.
        value: Str,
    },
    /// `deleteheader`
    DeleteHeader {
        /// Comparator and match type (for the value patterns).
        m: MatchSpec,
        /// `:index`.
        index: Option<Index>,
        /// Field name.
        name: Str,
        /// Value patterns; all fields of that name when absent.
        values: Option<StrList>,
    },
    /// `error` (ihave)
    Error(Str),
}
