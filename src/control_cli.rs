//! `mailcove who`, `mailcove kick` and `mailcove reload`: the CLI side of the control socket
//! ([`crate::server::control`]). They read the config only for `server.control_socket`, send one
//! request to the running daemon and print its answer, as a table or as JSON.
//!
//! Exit codes: 0 on success; 1 when the daemon cannot be reached or refuses; `kick` exits 68
//! (EX_NOHOST) when no session matched, as `doveadm kick` does, so scripts can tell "nobody was
//! logged in" from "kicked".

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{Config, Protocol};
use crate::server::control::{self, Request, Response};
use crate::server::sessions::SessionInfo;

/// Exit status of `kick` when no session matched (sysexits EX_NOHOST, as `doveadm kick`).
pub const EXIT_NONE_KICKED: u8 = 68;

fn socket_path(config: &Path) -> Result<PathBuf, String> {
    let config = Config::load(config).map_err(|e| {
        let first = e.to_string().lines().next().unwrap_or_default().to_string();
        format!("configuration: {first}")
    })?;
    Ok(config.server.control_socket)
}

fn ask(config: &Path, req: &Request) -> Result<Response, String> {
    let path = socket_path(config)?;
    let resp = control::request(&path, req).map_err(|e| e.to_string())?;
    if !resp.ok {
        return Err(resp
            .error
            .unwrap_or_else(|| "the daemon refused the request".into()));
    }
    Ok(resp)
}

fn fail(e: String) -> ExitCode {
    eprintln!("mailcove: {e}");
    ExitCode::from(1)
}

/// `mailcove who [--all] [--json]`.
pub fn who(config: &Path, all: bool, json: bool) -> ExitCode {
    let resp = match ask(config, &Request::Who {}) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let sessions: Vec<SessionInfo> = resp
        .sessions
        .unwrap_or_default()
        .into_iter()
        .filter(|s| all || s.user.is_some())
        .collect();
    if json {
        match serde_json::to_string_pretty(&sessions) {
            Ok(s) => println!("{s}"),
            Err(e) => return fail(e.to_string()),
        }
    } else {
        print!("{}", table(&sessions));
    }
    ExitCode::SUCCESS
}

/// `mailcove kick USER [--protocol imap|pop3] [--json]`.
pub fn kick(config: &Path, user: &str, protocol: Option<Protocol>, json: bool) -> ExitCode {
    let req = Request::Kick {
        user: user.to_string(),
        protocol,
    };
    let kicked = match ask(config, &req) {
        Ok(r) => r.kicked.unwrap_or(0),
        Err(e) => return fail(e),
    };
    if json {
        println!("{}", serde_json::json!({ "user": user, "kicked": kicked }));
    } else if kicked == 0 {
        println!("no sessions of {user} kicked");
    } else {
        println!("kicked {kicked} session(s) of {user}");
    }
    if kicked == 0 {
        ExitCode::from(EXIT_NONE_KICKED)
    } else {
        ExitCode::SUCCESS
    }
}

/// `mailcove reload`.
pub fn reload(config: &Path) -> ExitCode {
    match ask(config, &Request::Reload {}) {
        Ok(_) => {
            println!("configuration reloaded");
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!(
            "reload failed, the old configuration stays in force: {e}"
        )),
    }
}

/// The `who` table: one row per session, columns padded to their widest cell.
pub fn table(sessions: &[SessionInfo]) -> String {
    let header = [
        "USER", "PROTO", "REMOTE", "TLS", "SINCE", "MAILBOX", "IN", "OUT", "CMDS",
    ];
    let rows: Vec<[String; 9]> = sessions
        .iter()
        .map(|s| {
            [
                s.user.clone().unwrap_or_else(|| "-".into()),
                s.protocol.clone(),
                s.remote.clone(),
                if s.tls { "yes" } else { "no" }.into(),
                utc(s.connected_at),
                s.mailbox.clone().unwrap_or_else(|| "-".into()),
                s.bytes_in.to_string(),
                s.bytes_out.to_string(),
                s.commands.to_string(),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(width).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&cells);
    }
    out
}

/// `2026-12-06 14:20:01` (UTC) for seconds since the epoch.
fn utc(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    match crate::imap::proto::date::Date::from_days_since_epoch(days) {
        Some(d) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            d.year(),
            d.month(),
            d.day(),
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        ),
        None => secs.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        // 2026-12-06 14:20:01 UTC: 20793 days after the epoch, plus 51601 seconds.
        assert_eq!(utc(20_793 * 86_400 + 51_601), "2026-12-06 14:20:01");
    }

    #[test]
    fn table_pads_columns() {
        let s = SessionInfo {
            id: 7,
            protocol: "imap".into(),
            user: Some("demo".into()),
            remote: "127.0.0.1:50000".into(),
            local: "127.0.0.1:143".into(),
            tls: true,
            connected_at: 0,
            duration_secs: 3,
            mailbox: Some("INBOX".into()),
            bytes_in: 120,
            bytes_out: 3400,
            commands: 5,
        };
        let t = table(&[s]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "USER  PROTO  REMOTE           TLS  SINCE                MAILBOX  IN   OUT   CMDS"
        );
        assert_eq!(
            lines[1],
            "demo  imap   127.0.0.1:50000  yes  1970-01-01 00:00:00  INBOX    120  3400  5"
        );
    }
}
