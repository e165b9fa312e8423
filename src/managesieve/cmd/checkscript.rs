//! CHECKSCRIPT (RFC 5804 section 2.12): compile without storing. A script that does not
//! compile is `NO "line N: message"`.

use crate::managesieve::response::{SieveError, Status, push_response};
use crate::managesieve::session::{Args, Next, Session};

/// Compiles `script` as PUTSCRIPT and CHECKSCRIPT do: UTF-8 (RFC 5228 section 2.1), then
/// [`crate::sieve::compile`].
pub fn compile(script: &[u8]) -> Result<(), SieveError> {
    let source = std::str::from_utf8(script).map_err(|e| {
        let line = script[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        SieveError::Compile(crate::sieve::CompileError {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: 1,
            message: "the script is not valid UTF-8".to_string(),
        })
    })?;
    crate::sieve::compile(source)
        .map(|_| ())
        .map_err(SieveError::Compile)
}

/// CHECKSCRIPT script.
pub async fn run(s: &mut Session, mut args: Args) -> Result<Next, SieveError> {
    let script = args.string("expected the script as a string")?;
    args.finish()?;
    let max = s.shared.config().sieve.max_script_size;
    if script.len() > max {
        return Err(SieveError::QuotaMaxSize(max));
    }
    compile(&script)?;
    push_response(s.conn.out(), Status::Ok, None, "Script is valid.");
    Ok(Next::Continue)
}
