//! The grammar against hand-written trees: the examples of RFC 5228 and every lexical edge of
//! section 8.1, with the errors (sentence, line, column) a script author sees.

use super::lexical::{multi_line, number, quoted_string, white_space};
use super::*;
use crate::limits::{SIEVE_MAX_NESTING, SIEVE_MAX_STRING_LIST};

// ---- builders for expected trees (positions 0:0 where a test compares shapes only) ----

fn s(v: &str) -> Arg {
    Arg::Strings {
        values: vec![v.to_string()],
        list: false,
    }
}

fn l(v: &[&str]) -> Arg {
    Arg::Strings {
        values: v.iter().map(|x| x.to_string()).collect(),
        list: true,
    }
}

fn tag(v: &str) -> Arg {
    Arg::Tag(v.to_string())
}

fn n(v: u64) -> Arg {
    Arg::Number(v)
}

fn at(args: Vec<Arg>) -> Vec<(Arg, Pos)> {
    args.into_iter().map(|a| (a, Pos::default())).collect()
}

fn test(name: &str, args: Vec<Arg>, tests: Vec<RawTest>) -> RawTest {
    RawTest {
        name: name.to_string(),
        pos: Pos::default(),
        args: at(args),
        tests,
    }
}

fn cmd(name: &str, args: Vec<Arg>, tests: Vec<RawTest>) -> RawCommand {
    RawCommand {
        name: name.to_string(),
        pos: Pos::default(),
        args: at(args),
        tests,
        block: None,
    }
}

fn with_block(mut c: RawCommand, block: Vec<RawCommand>) -> RawCommand {
    c.block = Some(block);
    c
}

fn forget_test_positions(t: &mut RawTest) {
    t.pos = Pos::default();
    t.args.iter_mut().for_each(|a| a.1 = Pos::default());
    t.tests.iter_mut().for_each(forget_test_positions);
}

fn forget_positions(c: &mut RawCommand) {
    c.pos = Pos::default();
    c.args.iter_mut().for_each(|a| a.1 = Pos::default());
    c.tests.iter_mut().for_each(forget_test_positions);
    c.block.iter_mut().flatten().for_each(forget_positions);
}

/// The tree of `src` without positions.
fn shape(src: &str) -> Vec<RawCommand> {
    let mut c = parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
    c.iter_mut().for_each(forget_positions);
    c
}

/// The error of `src` as (line, column, message).
fn err(src: &str) -> (u32, u32, String) {
    let e = parse(src).expect_err(src);
    (e.line, e.column, e.message)
}

fn p(line: u32, column: u32) -> Pos {
    Pos { line, column }
}

// ---- kept from the hand-written parser's tests ----

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

#[test]
fn numbers_with_quantifiers() {
    let num = |s| number(s).map(|(_, n)| n);
    assert_eq!(num("1"), Ok(1));
    assert_eq!(num("10K"), Ok(10 * 1024));
    assert_eq!(num("2m"), Ok(2 << 20));
    assert_eq!(num("1G"), Ok(1 << 30));
    assert!(num("99999999999999999999").is_err());
    assert!(num("18446744073709551615G").is_err());
}

#[test]
fn quoted_escapes_and_comments() {
    let (rest, ()) = white_space("# c\n\"a\\\"b\\\\c\\d\" /* x\n */ :Is").expect("white space");
    let (rest, s) = quoted_string(rest).expect("quoted");
    assert_eq!(s, "a\"b\\cd");
    let (rest, ()) = white_space(rest).expect("comment");
    assert_eq!(rest, ":Is");
    assert_eq!(shape("x :Is;"), [cmd("x", vec![tag("is")], vec![])]);
}

#[test]
fn multiline_dot_stuffing() {
    // RFC 5228 2.4.2: "..dot" is dot-stuffed, ".x" is not ("'.foo' is interpreted as '.foo'").
    let (rest, s) = multi_line("text: # comment\r\nline1\r\n..dot\r\n.x\r\n.\r\n;").expect("ok");
    assert_eq!(s, "line1\r\n.dot\r\n.x\r\n");
    assert_eq!(rest, "\r\n;");
}

#[test]
fn positions() {
    let c = parse("keep;\n  stop ;").expect("ok");
    assert_eq!(c[1].pos, p(2, 3));
    assert_eq!(err("keep;\n \"open"), (2, 2, "unterminated string".into()));
}

// ---- RFC 5228 examples, as trees ----

/// RFC 5228 section 9, the extended example (indentation of the RFC text removed).
const RFC5228_SECTION_9: &str = r#"#
# Example Sieve Filter
# Declare any optional features or extension used by the script
#
require ["fileinto"];
#
# Handle messages from known mailing lists
# Move messages from IETF filter discussion list to filter mailbox
#
if header :is "Sender" "owner-ietf-mta-filters@imc.org"
        {
        fileinto "filter";  # move to "filter" mailbox
        }
#
# Keep all messages to or from people in my company
#
elsif address :DOMAIN :is ["From", "To"] "example.com"
        {
        keep;               # keep in "In" mailbox
        }
#
# Try and catch unsolicited email.  If a message is not to me,
# or it contains a subject known to be spam, file it away.
#
elsif anyof (NOT address :all :contains
               ["To", "Cc", "Bcc"] "me@example.com",
             header :matches "subject"
               ["*make*money*fast*", "*university*dipl*mas*"])
        {
        fileinto "spam";   # move to "spam" mailbox
        }
else
        {
        # Move all other (non-company) mail to "personal"
        # mailbox.
        fileinto "personal";
        }
"#;

#[test]
fn rfc5228_section_9_extended_example() {
    let expected = vec![
        cmd("require", vec![l(&["fileinto"])], vec![]),
        with_block(
            cmd(
                "if",
                vec![],
                vec![test(
                    "header",
                    vec![tag("is"), s("Sender"), s("owner-ietf-mta-filters@imc.org")],
                    vec![],
                )],
            ),
            vec![cmd("fileinto", vec![s("filter")], vec![])],
        ),
        with_block(
            cmd(
                "elsif",
                vec![],
                vec![test(
                    "address",
                    vec![
                        tag("domain"),
                        tag("is"),
                        l(&["From", "To"]),
                        s("example.com"),
                    ],
                    vec![],
                )],
            ),
            vec![cmd("keep", vec![], vec![])],
        ),
        with_block(
            cmd(
                "elsif",
                vec![],
                vec![test(
                    "anyof",
                    vec![],
                    vec![
                        test(
                            "not",
                            vec![],
                            vec![test(
                                "address",
                                vec![
                                    tag("all"),
                                    tag("contains"),
                                    l(&["To", "Cc", "Bcc"]),
                                    s("me@example.com"),
                                ],
                                vec![],
                            )],
                        ),
                        test(
                            "header",
                            vec![
                                tag("matches"),
                                s("subject"),
                                l(&["*make*money*fast*", "*university*dipl*mas*"]),
                            ],
                            vec![],
                        ),
                    ],
                )],
            ),
            vec![cmd("fileinto", vec![s("spam")], vec![])],
        ),
        with_block(
            cmd("else", vec![], vec![]),
            vec![cmd("fileinto", vec![s("personal")], vec![])],
        ),
    ];
    assert_eq!(shape(RFC5228_SECTION_9), expected);
    // The same script with CRLF line ends is the same tree.
    assert_eq!(shape(&RFC5228_SECTION_9.replace('\n', "\r\n")), expected);

    // Positions, counted by hand: lines by LF, columns in bytes from 1.
    let c = parse(RFC5228_SECTION_9).expect("parses");
    assert_eq!(c[0].pos, p(5, 1));
    assert_eq!(c[0].args[0].1, p(5, 9));
    assert_eq!(c[1].pos, p(10, 1));
    assert_eq!(c[1].tests[0].pos, p(10, 4));
    assert_eq!(c[1].tests[0].args[0].1, p(10, 11));
    assert_eq!(c[1].block.as_ref().expect("block")[0].pos, p(12, 9));
    assert_eq!(c[2].pos, p(17, 1));
    assert_eq!(c[2].tests[0].args[0].1, p(17, 15));
    let anyof = &c[3].tests[0];
    assert_eq!(anyof.pos, p(25, 7));
    assert_eq!(anyof.tests[0].pos, p(25, 14));
    assert_eq!(anyof.tests[0].tests[0].args[2].1, p(26, 16));
    assert_eq!(anyof.tests[1].pos, p(27, 14));
    assert_eq!(c[4].pos, p(32, 1));
}

#[test]
fn rfc5228_section_2_3_comments() {
    let expected = vec![with_block(
        cmd(
            "if",
            vec![],
            vec![test("size", vec![tag("over"), n(100 * 1024)], vec![])],
        ),
        vec![cmd("discard", vec![], vec![])],
    )];
    let hash = "if size :over 100k { # this is a comment\n   discard;\n}\n";
    assert_eq!(shape(hash), expected);
    let bracket = "if size :over 100K { /* this is a comment\n   this is still a comment */ \
                   discard /* this is a comment\n   */ ;\n}\n";
    assert_eq!(shape(bracket), expected);
}

#[test]
fn rfc5228_section_2_5_test_list() {
    let src = "if anyof (not exists [\"From\", \"Date\"],\n    \
               header :contains \"from\" \"fool@example.com\") {\n   discard;\n}";
    assert_eq!(
        shape(src),
        [with_block(
            cmd(
                "if",
                vec![],
                vec![test(
                    "anyof",
                    vec![],
                    vec![
                        test(
                            "not",
                            vec![],
                            vec![test("exists", vec![l(&["From", "Date"])], vec![])]
                        ),
                        test(
                            "header",
                            vec![tag("contains"), s("from"), s("fool@example.com")],
                            vec![]
                        ),
                    ],
                )],
            ),
            vec![cmd("discard", vec![], vec![])],
        )]
    );
}

#[test]
fn rfc5228_section_4_3_keep_else() {
    let size = |over| test("size", vec![tag("under"), n(1 << 20)], over);
    assert_eq!(
        shape("if size :under 1M { keep; } else { discard; }"),
        [
            with_block(
                cmd("if", vec![], vec![size(vec![])]),
                vec![cmd("keep", vec![], vec![])]
            ),
            with_block(
                cmd("else", vec![], vec![]),
                vec![cmd("discard", vec![], vec![])]
            ),
        ]
    );
    assert_eq!(
        shape("if not size :under 1M { discard; }"),
        [with_block(
            cmd("if", vec![], vec![test("not", vec![], vec![size(vec![])])]),
            vec![cmd("discard", vec![], vec![])]
        )]
    );
}

// ---- RFC 5228 section 8.1, every lexical edge ----

#[test]
fn crlf_and_lf_scripts_are_the_same_tree() {
    let lf = "require \"reject\";\nif size :over 1K {\n  reject text:\nno\n.\n;\n}\n";
    let crlf = lf.replace('\n', "\r\n");
    assert_eq!(shape(lf), shape(&crlf));
    // A bare LF inside a quoted string becomes CRLF; a CRLF stays one.
    assert_eq!(shape("x \"a\nb\";"), [cmd("x", vec![s("a\r\nb")], vec![])]);
    assert_eq!(
        shape("x \"a\r\nb\";"),
        [cmd("x", vec![s("a\r\nb")], vec![])]
    );
    // Positions count lines by LF either way.
    let c = parse("keep;\r\n  stop;").expect("ok");
    assert_eq!(c[1].pos, p(2, 3));
}

#[test]
fn multi_line_strings() {
    let reject = |body: &str| [cmd("reject", vec![s(body)], vec![])];
    // Hash comment and blanks after "text:" (section 2.4.2); the final CRLF is part of the value.
    assert_eq!(
        shape("reject text: \t# why\nline one\n.\n;"),
        reject("line one\r\n")
    );
    // Dot-stuffed lines lose their first dot; a line of two dots is one dot; a dot and then
    // something else is taken as written.
    assert_eq!(
        shape("reject text:\n..\n...x\n.y\n.\n;"),
        reject(".\r\n..x\r\n.y\r\n")
    );
    // No lines at all: the empty string.
    assert_eq!(shape("reject text:\r\n.\r\n;"), reject(""));
    // "TEXT:" is case-insensitive (ABNF strings are); "texts:" is an identifier and a tag.
    assert_eq!(shape("reject TEXT:\n.\n;"), reject(""));
    assert_eq!(
        err("texts: \"a\";"),
        (1, 6, "a tag needs a name after ':'".into())
    );
    // The "." line may end the script (no line end after it); the command then lacks its ";".
    assert_eq!(
        err("reject text:\nx\n."),
        (
            3,
            2,
            "expected ';' or '{', found the end of the script".into()
        )
    );
}

#[test]
fn quoted_strings() {
    // "\\" and "\"" stand for the character; another escaped character for itself.
    assert_eq!(
        shape(r#"x "a\\b" "c\"d" "\e\\\"" "";"#),
        [cmd(
            "x",
            vec![s(r"a\b"), s("c\"d"), s("e\\\""), s("")],
            vec![]
        )]
    );
    // UTF-8 passes through, escaped or not.
    assert_eq!(
        shape("x \"été \\é\";"),
        [cmd("x", vec![s("été é")], vec![])]
    );
    // Comment markers inside a string are text.
    assert_eq!(
        shape("x \"# /* */\";"),
        [cmd("x", vec![s("# /* */")], vec![])]
    );
}

#[test]
fn comments() {
    // A bracket comment ends at the first "*/"; stars and slashes before it are comment text,
    // and "/*" inside does not nest.
    assert_eq!(
        shape("/* a * b ** / /* c **/ keep; /***/ stop;"),
        [cmd("keep", vec![], vec![]), cmd("stop", vec![], vec![])]
    );
    // A hash comment on the last line needs no line end; comments separate tokens.
    assert_eq!(shape("keep;# done"), [cmd("keep", vec![], vec![])]);
    assert_eq!(
        shape("x/**/:is/**/1;"),
        [cmd("x", vec![tag("is"), n(1)], vec![])]
    );
    // Only white space and comments: no commands.
    assert_eq!(shape(" # a\n/* b */\r\n"), []);
}

#[test]
fn identifiers_tags_and_numbers() {
    assert_eq!(
        shape("_Set_1 :Over_2 0 10k 3M 2g;"),
        [cmd(
            "_set_1",
            vec![tag("over_2"), n(0), n(10 << 10), n(3 << 20), n(2 << 30)],
            vec![]
        )]
    );
    assert_eq!(
        shape(&format!("x {};", u64::MAX)),
        [cmd("x", vec![n(u64::MAX)], vec![])]
    );
    assert_eq!(
        err("x 18446744073709551616;"),
        (1, 3, "number too large".into())
    );
    assert_eq!(err("x 17179869184G;"), (1, 3, "number too large".into()));
    assert_eq!(
        err("x 10KB;"),
        (1, 3, "a number is followed by letters".into())
    );
    assert_eq!(err("x :1;"), (1, 3, "a tag needs a name after ':'".into()));
}

#[test]
fn lexical_errors_name_the_token_start() {
    assert_eq!(
        err("keep;\n  /* open\n\n"),
        (2, 3, "unterminated /* comment".into())
    );
    assert_eq!(err("x \"a\\\""), (1, 3, "unterminated string".into()));
    assert_eq!(err("x \"a\\"), (1, 3, "unterminated string".into()));
    assert_eq!(
        err("keep;\nreject text:\nline\n"),
        (
            2,
            8,
            "unterminated text: string (no line with a single '.')".into()
        )
    );
    assert_eq!(
        err("reject text: /* no */\n.\n;"),
        (1, 8, "text: must be followed by a line end".into())
    );
    assert_eq!(
        err("keep;\n  @x;"),
        (2, 3, "unexpected character '@'".into())
    );
    assert_eq!(
        err("x \"a\" é;"),
        (1, 7, "unexpected character '\\u{e9}'".into())
    );
}

// ---- RFC 5228 section 8.2, grammar errors ----

#[test]
fn grammar_errors() {
    assert_eq!(
        err("keep\n"),
        (
            1,
            5,
            "expected ';' or '{', found the end of the script".into()
        )
    );
    assert_eq!(
        err("if true keep"),
        (
            1,
            13,
            "expected ';' or '{', found the end of the script".into()
        )
    );
    assert_eq!(err("keep; }"), (1, 7, "unexpected '}'".into()));
    assert_eq!(err("keep; \"x\";"), (1, 7, "unexpected string".into()));
    assert_eq!(
        err("if true { keep; \"x\" }"),
        (1, 17, "expected '}' or a command, found string".into())
    );
    assert_eq!(
        err("x [\"a\" \"b\"];"),
        (1, 8, "expected ',' or ']', found string".into())
    );
    assert_eq!(
        err("x [\"a\", 1];"),
        (1, 9, "expected a string, found number 1".into())
    );
    assert_eq!(err("x [];"), (1, 4, "expected a string, found ']'".into()));
    assert_eq!(
        err("if anyof (true; false) {}"),
        (1, 15, "expected ',' or ')', found ';'".into())
    );
    assert_eq!(
        err("if anyof (true, :is) {}"),
        (1, 17, "expected a test, found tag ':is'".into())
    );
    assert_eq!(
        err("if anyof () {}"),
        (1, 11, "expected a test, found ')'".into())
    );
    // The end of a multi-line string is its "." line.
    assert_eq!(
        err("reject text:\nx\n.\n"),
        (
            3,
            2,
            "expected ';' or '{', found the end of the script".into()
        )
    );
    // The first error in the script is the one reported, even when a later token is
    // malformed too.
    assert_eq!(
        err("keep }\n\"open"),
        (1, 6, "expected ';' or '{', found '}'".into())
    );
}

// ---- limits ----

#[test]
fn nesting_is_bounded() {
    // Blocks: SIEVE_MAX_NESTING levels parse, one more does not.
    let blocks = |n: usize| "if true {".repeat(n) + &"}".repeat(n);
    // The test of the innermost `if` is one level deeper than its block's commands.
    assert!(parse(&blocks(SIEVE_MAX_NESTING)).is_ok());
    let e = parse(&blocks(SIEVE_MAX_NESTING + 1)).expect_err("too deep");
    assert_eq!(e.message, "tests are nested too deeply");
    let braces = |n: usize| "x {".repeat(n) + &"}".repeat(n);
    assert!(parse(&braces(SIEVE_MAX_NESTING)).is_ok());
    let e = parse(&braces(SIEVE_MAX_NESTING + 1)).expect_err("too deep");
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (
            1,
            u32::try_from(3 * SIEVE_MAX_NESTING + 3).expect("small"),
            "blocks are nested too deeply"
        )
    );
    // Tests: `not` nests one level per test, test lists one per list.
    let nots = |n: usize| "if ".to_string() + &"not ".repeat(n) + "true {}";
    assert!(parse(&nots(SIEVE_MAX_NESTING - 1)).is_ok());
    assert_eq!(
        parse(&nots(SIEVE_MAX_NESTING)).expect_err("deep").message,
        "tests are nested too deeply"
    );
    let lists =
        |n: usize| "if ".to_string() + &"anyof (".repeat(n) + "true" + &")".repeat(n) + "{}";
    assert!(parse(&lists(SIEVE_MAX_NESTING - 1)).is_ok());
    assert!(parse(&lists(SIEVE_MAX_NESTING)).is_err());
    // Far beyond the limit is refused the same way, without deep recursion.
    assert!(parse(&braces(100_000)).is_err());
    assert!(parse(&("if ".to_string() + &"(".repeat(100_000))).is_err());
}

#[test]
fn string_lists_are_bounded() {
    let list = |n: usize| format!("x [{}];", vec!["\"a\""; n].join(","));
    let c = parse(&list(SIEVE_MAX_STRING_LIST)).expect("at the limit");
    assert_eq!(
        c[0].args[0].0,
        Arg::Strings {
            values: vec!["a".to_string(); SIEVE_MAX_STRING_LIST],
            list: true
        }
    );
    assert_eq!(
        err(&list(SIEVE_MAX_STRING_LIST + 1)),
        (1, 3, "string list too long".into())
    );
}
