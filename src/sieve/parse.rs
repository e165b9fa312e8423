//! The command grammar of RFC 5228 section 8.2, into an untyped tree of commands, arguments and
//! tests; [`super::compile`] checks it against each command's signature and builds the typed
//! AST. Nesting is bounded by [`SIEVE_MAX_NESTING`] so that neither this parser nor the
//! interpreter can be driven into deep recursion.

use super::CompileError;
use super::lexer::{Pos, Token, tokenize};
use crate::limits::{SIEVE_MAX_NESTING, SIEVE_MAX_STRING_LIST};

/// One argument as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// `string-list`: one string (`list == false`) or a bracketed list.
    Strings {
        /// The strings.
        values: Vec<String>,
        /// Written as `[ ... ]`.
        list: bool,
    },
    /// `number`.
    Number(u64),
    /// `tag` (lowercased, without the colon).
    Tag(String),
}

/// `test = identifier arguments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTest {
    /// The lowercased identifier.
    pub name: String,
    /// Where it starts.
    pub pos: Pos,
    /// Its arguments.
    pub args: Vec<(Arg, Pos)>,
    /// A test or test list after the arguments.
    pub tests: Vec<RawTest>,
}

/// `command = identifier arguments (";" / block)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCommand {
    /// The lowercased identifier.
    pub name: String,
    /// Where it starts.
    pub pos: Pos,
    /// Its arguments.
    pub args: Vec<(Arg, Pos)>,
    /// A test or test list after the arguments (`if`, `elsif`).
    pub tests: Vec<RawTest>,
    /// The block, if the command ends with one.
    pub block: Option<Vec<RawCommand>>,
}

/// Parses a whole script into its commands.
pub fn parse(src: &str) -> Result<Vec<RawCommand>, CompileError> {
    let toks = tokenize(src)?;
    let end = toks.last().map_or(Pos { line: 1, column: 1 }, |t| t.1);
    let mut p = Parser { toks, i: 0, end };
    let cmds = p.commands(0)?;
    if let Some((t, pos)) = p.toks.get(p.i) {
        return Err(pos.error(format!("unexpected {}", t.describe())));
    }
    Ok(cmds)
}

struct Parser {
    toks: Vec<(Token, Pos)>,
    i: usize,
    end: Pos,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.i).map(|t| &t.0)
    }

    fn pos(&self) -> Pos {
        self.toks.get(self.i).map_or(self.end, |t| t.1)
    }

    fn unexpected(&self, wanted: &str) -> CompileError {
        match self.toks.get(self.i) {
            Some((t, pos)) => pos.error(format!("expected {wanted}, found {}", t.describe())),
            None => self
                .end
                .error(format!("expected {wanted}, found the end of the script")),
        }
    }

    fn commands(&mut self, depth: usize) -> Result<Vec<RawCommand>, CompileError> {
        let mut out = Vec::new();
        while let Some(Token::Identifier(_)) = self.peek() {
            out.push(self.command(depth)?);
        }
        Ok(out)
    }

    fn command(&mut self, depth: usize) -> Result<RawCommand, CompileError> {
        let pos = self.pos();
        let Some(Token::Identifier(name)) = self.peek().cloned() else {
            return Err(self.unexpected("a command"));
        };
        self.i += 1;
        let (args, tests) = self.arguments(depth)?;
        let block = match self.peek() {
            Some(Token::Semicolon) => {
                self.i += 1;
                None
            }
            Some(Token::LBrace) => {
                if depth + 1 > SIEVE_MAX_NESTING {
                    return Err(self.pos().error("blocks are nested too deeply"));
                }
                self.i += 1;
                let cmds = self.commands(depth + 1)?;
                if self.peek() != Some(&Token::RBrace) {
                    return Err(self.unexpected("'}' or a command"));
                }
                self.i += 1;
                Some(cmds)
            }
            _ => return Err(self.unexpected("';' or '{'")),
        };
        Ok(RawCommand {
            name,
            pos,
            args,
            tests,
            block,
        })
    }

    /// `arguments = *argument [ test / test-list ]`
    #[allow(clippy::type_complexity)]
    fn arguments(&mut self, depth: usize) -> Result<(Vec<(Arg, Pos)>, Vec<RawTest>), CompileError> {
        let mut args = Vec::new();
        loop {
            let pos = self.pos();
            match self.peek().cloned() {
                Some(Token::Str(s)) => {
                    self.i += 1;
                    args.push((
                        Arg::Strings {
                            values: vec![s],
                            list: false,
                        },
                        pos,
                    ));
                }
                Some(Token::Number(n)) => {
                    self.i += 1;
                    args.push((Arg::Number(n), pos));
                }
                Some(Token::Tag(t)) => {
                    self.i += 1;
                    args.push((Arg::Tag(t), pos));
                }
                Some(Token::LBracket) => {
                    self.i += 1;
                    let mut values = Vec::new();
                    loop {
                        match self.peek().cloned() {
                            Some(Token::Str(s)) => {
                                self.i += 1;
                                values.push(s);
                                if values.len() > SIEVE_MAX_STRING_LIST {
                                    return Err(pos.error("string list too long"));
                                }
                            }
                            _ => return Err(self.unexpected("a string")),
                        }
                        match self.peek() {
                            Some(Token::Comma) => self.i += 1,
                            Some(Token::RBracket) => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.unexpected("',' or ']'")),
                        }
                    }
                    args.push((Arg::Strings { values, list: true }, pos));
                }
                _ => break,
            }
        }
        let tests = match self.peek() {
            Some(Token::Identifier(_)) => vec![self.test(depth + 1)?],
            Some(Token::LParen) => self.test_list(depth + 1)?,
            _ => Vec::new(),
        };
        Ok((args, tests))
    }

    fn test(&mut self, depth: usize) -> Result<RawTest, CompileError> {
        let pos = self.pos();
        if depth > SIEVE_MAX_NESTING {
            return Err(pos.error("tests are nested too deeply"));
        }
        let Some(Token::Identifier(name)) = self.peek().cloned() else {
            return Err(self.unexpected("a test"));
        };
        self.i += 1;
        let (args, tests) = self.arguments(depth)?;
        Ok(RawTest {
            name,
            pos,
            args,
            tests,
        })
    }

    /// `test-list = "(" test *("," test) ")"`
    fn test_list(&mut self, depth: usize) -> Result<Vec<RawTest>, CompileError> {
        if depth > SIEVE_MAX_NESTING {
            return Err(self.pos().error("tests are nested too deeply"));
        }
        self.i += 1;
        let mut out = vec![self.test(depth)?];
        loop {
            match self.peek() {
                Some(Token::Comma) => {
                    self.i += 1;
                    out.push(self.test(depth)?);
                }
                Some(Token::RParen) => {
                    self.i += 1;
                    return Ok(out);
                }
                _ => return Err(self.unexpected("',' or ')'")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_of_if_with_test_list() {
        let c = parse("if anyof (header :is \"a\" [\"b\",\"c\"], true) { keep; } else { stop; }")
            .expect("parses");
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].name, "if");
        assert_eq!(c[0].tests[0].name, "anyof");
        assert_eq!(c[0].tests[0].tests.len(), 2);
        assert_eq!(c[1].name, "else");
    }

    #[test]
    fn errors_have_positions() {
        let e = parse("keep;\nfileinto \"x\"\n").expect_err("missing ;");
        assert_eq!(e.line, 2);
        let e = parse("if true { keep; ").expect_err("missing }");
        assert!(e.message.contains("'}'"), "{e}");
        let deep = "if true {".repeat(100) + &"}".repeat(100);
        assert!(parse(&deep).is_err());
        let deep = "if ".to_string() + &"not ".repeat(100) + "true {}";
        assert!(parse(&deep).is_err());
    }
}
