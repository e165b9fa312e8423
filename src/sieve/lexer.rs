//! The lexical grammar of RFC 5228 section 8.1: identifiers, tags, numbers with the `K`/`M`/`G`
//! quantifiers, quoted strings, multi-line `text:` strings (dot-stuffed), bracket comments and
//! hash comments. Line ends may be CRLF or a bare LF (scripts uploaded from Unix editors have
//! bare LFs; Pigeonhole accepts them too).

use super::CompileError;

/// Where a token starts: 1-based line and column (in bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line.
    pub line: u32,
    /// Column.
    pub column: u32,
}

impl Pos {
    /// An error at this position.
    pub fn error(self, message: impl Into<String>) -> CompileError {
        CompileError {
            line: self.line,
            column: self.column,
            message: message.into(),
        }
    }
}

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// `identifier = (ALPHA / "_") *(ALPHA / DIGIT / "_")`, lowercased (identifiers are
    /// case-insensitive, RFC 5228 section 2.3).
    Identifier(String),
    /// `tag = ":" identifier`, lowercased, without the colon.
    Tag(String),
    /// `number = 1*DIGIT [ QUANTIFIER ]`, already multiplied.
    Number(u64),
    /// A quoted or multi-line string, escapes and dot-stuffing undone.
    Str(String),
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `,`
    Comma,
    /// `;`
    Semicolon,
}

impl Token {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Token::Identifier(s) => format!("identifier '{s}'"),
            Token::Tag(s) => format!("tag ':{s}'"),
            Token::Number(n) => format!("number {n}"),
            Token::Str(_) => "string".to_string(),
            Token::LBracket => "'['".to_string(),
            Token::RBracket => "']'".to_string(),
            Token::LParen => "'('".to_string(),
            Token::RParen => "')'".to_string(),
            Token::LBrace => "'{'".to_string(),
            Token::RBrace => "'}'".to_string(),
            Token::Comma => "','".to_string(),
            Token::Semicolon => "';'".to_string(),
        }
    }
}

/// Splits `src` into tokens with their positions.
pub fn tokenize(src: &str) -> Result<Vec<(Token, Pos)>, CompileError> {
    let mut lx = Lexer {
        s: src.as_bytes(),
        src,
        i: 0,
        line: 1,
        line_start: 0,
    };
    let mut out = Vec::new();
    while let Some(t) = lx.next()? {
        out.push(t);
    }
    Ok(out)
}

struct Lexer<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
    line: u32,
    line_start: usize,
}

impl Lexer<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: u32::try_from(self.i - self.line_start + 1).unwrap_or(u32::MAX),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<u8> {
        self.s.get(self.i + k).copied()
    }

    /// Advances one byte, counting lines.
    fn bump(&mut self) {
        if self.peek() == Some(b'\n') {
            self.line += 1;
            self.line_start = self.i + 1;
        }
        self.i += 1;
    }

    fn next(&mut self) -> Result<Option<(Token, Pos)>, CompileError> {
        loop {
            match self.peek() {
                None => return Ok(None),
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.bump(),
                Some(b'#') => {
                    while !matches!(self.peek(), None | Some(b'\n')) {
                        self.bump();
                    }
                }
                Some(b'/') if self.peek_at(1) == Some(b'*') => {
                    let start = self.pos();
                    self.bump();
                    self.bump();
                    loop {
                        match self.peek() {
                            None => return Err(start.error("unterminated /* comment")),
                            Some(b'*') if self.peek_at(1) == Some(b'/') => {
                                self.bump();
                                self.bump();
                                break;
                            }
                            Some(_) => self.bump(),
                        }
                    }
                }
                Some(_) => break,
            }
        }
        let pos = self.pos();
        let c = self.peek().unwrap_or(0);
        let single = match c {
            b'[' => Some(Token::LBracket),
            b']' => Some(Token::RBracket),
            b'(' => Some(Token::LParen),
            b')' => Some(Token::RParen),
            b'{' => Some(Token::LBrace),
            b'}' => Some(Token::RBrace),
            b',' => Some(Token::Comma),
            b';' => Some(Token::Semicolon),
            _ => None,
        };
        if let Some(t) = single {
            self.bump();
            return Ok(Some((t, pos)));
        }
        if c == b'"' {
            return Ok(Some((Token::Str(self.quoted(pos)?), pos)));
        }
        if c.is_ascii_digit() {
            return Ok(Some((self.number(pos)?, pos)));
        }
        if c == b':' {
            self.bump();
            if !self
                .peek()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            {
                return Err(pos.error("a tag needs a name after ':'"));
            }
            return Ok(Some((Token::Tag(self.ident()), pos)));
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let id = self.ident();
            if id == "text" && self.peek() == Some(b':') {
                self.bump();
                return Ok(Some((Token::Str(self.multiline(pos)?), pos)));
            }
            return Ok(Some((Token::Identifier(id), pos)));
        }
        let ch = self
            .src
            .get(self.i..)
            .and_then(|r| r.chars().next())
            .unwrap_or('?');
        Err(pos.error(format!("unexpected character '{}'", ch.escape_default())))
    }

    fn ident(&mut self) -> String {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.i += 1;
        }
        self.src
            .get(start..self.i)
            .unwrap_or("")
            .to_ascii_lowercase()
    }

    fn number(&mut self, pos: Pos) -> Result<Token, CompileError> {
        let mut n: u64 = 0;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or_else(|| pos.error("number too large"))?;
            self.i += 1;
        }
        let mult: u64 = match self.peek() {
            Some(b'K' | b'k') => 1 << 10,
            Some(b'M' | b'm') => 1 << 20,
            Some(b'G' | b'g') => 1 << 30,
            _ => 1,
        };
        if mult != 1 {
            self.i += 1;
        }
        if self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(pos.error("a number is followed by letters"));
        }
        n.checked_mul(mult)
            .map(Token::Number)
            .ok_or_else(|| pos.error("number too large"))
    }

    /// `quoted-string = DQUOTE quoted-text DQUOTE`: `\\` and `\"` stand for the character,
    /// any other backslash is dropped (RFC 5228 section 2.4.2).
    fn quoted(&mut self, pos: Pos) -> Result<String, CompileError> {
        self.bump();
        let mut out: Vec<u8> = Vec::new();
        loop {
            match self.peek() {
                None => return Err(pos.error("unterminated string")),
                Some(b'"') => {
                    self.bump();
                    break;
                }
                Some(b'\\') => {
                    self.bump();
                    match self.peek() {
                        None => return Err(pos.error("unterminated string")),
                        Some(b) => {
                            out.push(b);
                            self.bump();
                        }
                    }
                }
                Some(b) => {
                    out.push(b);
                    self.bump();
                }
            }
        }
        Ok(normalize_crlf(out))
    }

    /// `multi-line = "text:" *(SP / HTAB) (hash-comment / CRLF) *(multiline-literal /
    /// multiline-dotstart) "." CRLF`.
    fn multiline(&mut self, pos: Pos) -> Result<String, CompileError> {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.bump();
        }
        if self.peek() == Some(b'#') {
            while !matches!(self.peek(), None | Some(b'\n')) {
                self.bump();
            }
        }
        if self.peek() == Some(b'\r') {
            self.bump();
        }
        if self.peek() != Some(b'\n') {
            return Err(pos.error("text: must be followed by a line end"));
        }
        self.bump();
        let mut out: Vec<u8> = Vec::new();
        loop {
            if self.i >= self.s.len() {
                return Err(pos.error("unterminated text: string (no line with a single '.')"));
            }
            let start = self.i;
            let rest = self.s.get(start..).unwrap_or(&[]);
            let end = memchr::memchr(b'\n', rest).map_or(self.s.len(), |k| start + k + 1);
            let line = self.s.get(start..end).unwrap_or(&[]);
            let content = line.strip_suffix(b"\n").unwrap_or(line);
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            while self.i < end {
                self.bump();
            }
            if content == b"." {
                break;
            }
            // Dot-stuffing: a line starting with "." had one more "." put in front.
            let content = content.strip_prefix(b".").unwrap_or(content);
            out.extend_from_slice(content);
            out.extend_from_slice(b"\r\n");
        }
        Ok(String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into()))
    }
}

/// Strings keep their line ends as CRLF (a bare LF in the script becomes CRLF), so a reason or
/// header value reads the same whatever editor wrote the script.
fn normalize_crlf(v: Vec<u8>) -> String {
    let mut out = Vec::with_capacity(v.len());
    let mut prev = 0u8;
    for b in v {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Token> {
        tokenize(s)
            .expect("tokenizes")
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    #[test]
    fn numbers_with_quantifiers() {
        assert_eq!(
            toks("1 10K 2m 1G"),
            vec![
                Token::Number(1),
                Token::Number(10 * 1024),
                Token::Number(2 << 20),
                Token::Number(1 << 30)
            ]
        );
        assert!(tokenize("99999999999999999999").is_err());
        assert!(tokenize("18446744073709551615G").is_err());
    }

    #[test]
    fn quoted_escapes_and_comments() {
        assert_eq!(
            toks("# c\n\"a\\\"b\\\\c\\d\" /* x\n */ :Is"),
            vec![Token::Str("a\"b\\cd".into()), Token::Tag("is".into())]
        );
    }

    #[test]
    fn multiline_dot_stuffing() {
        let t = toks("text: # comment\r\nline1\r\n..dot\r\n.x\r\n.\r\n;");
        assert_eq!(
            t,
            vec![
                Token::Str("line1\r\n.dot\r\nx\r\n".into()),
                Token::Semicolon
            ]
        );
    }

    #[test]
    fn positions() {
        let t = tokenize("keep;\n  stop ;").expect("ok");
        assert_eq!(t[2].1, Pos { line: 2, column: 3 });
        let e = tokenize("keep;\n \"open").expect_err("unterminated");
        assert_eq!((e.line, e.column), (2, 2));
    }
}
