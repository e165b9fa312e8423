//! Sending the mail Sieve makes (vacation replies, redirects) through the configured submission:
//! an SMTP server (`[sieve] submission = "host:port"`) or a sendmail binary.
//!
//! The SMTP client is a small one on purpose: it speaks to a local MTA (the same one that hands
//! mail to LMTP), so it needs EHLO (HELO as a fallback), MAIL, RCPT, DATA with dot-stuffing and
//! QUIT, each step under [`SIEVE_SUBMISSION_TIMEOUT_SECS`], reply lines bounded by
//! [`SIEVE_SUBMISSION_MAX_LINE`]. No TLS and no AUTH: the submission is a trusted local relay,
//! as Pigeonhole's `submission_host` usually is.

use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::config::SieveConfig;
use crate::limits::{SIEVE_SUBMISSION_MAX_LINE, SIEVE_SUBMISSION_TIMEOUT_SECS};

/// Why a message could not be submitted.
#[derive(Debug, Error)]
pub enum SendError {
    /// Neither `submission` nor `sendmail` is configured.
    #[error("no submission configured ([sieve] submission or sendmail)")]
    NotConfigured,
    /// Network or process trouble.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A step took longer than the timeout.
    #[error("submission timed out during {0}")]
    Timeout(&'static str),
    /// The server refused a step.
    #[error("submission refused {step}: {reply}")]
    Refused {
        /// MAIL, RCPT, DATA, ...
        step: &'static str,
        /// The server's reply.
        reply: String,
    },
    /// sendmail exited with an error.
    #[error("sendmail failed: {0}")]
    Sendmail(String),
}

/// One message to submit: envelope and content (CRLF or LF lines; sent as CRLF).
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// MAIL FROM (`""` for the null sender).
    pub from: String,
    /// RCPT TO.
    pub to: String,
    /// The message.
    pub data: Vec<u8>,
}

/// Whether anything is configured to send through.
pub fn configured(cfg: &SieveConfig) -> bool {
    cfg.submission.is_some() || cfg.sendmail.is_some()
}

/// Submits `msg` through the configured path (`submission` wins over `sendmail`).
pub async fn send(cfg: &SieveConfig, hostname: &str, msg: &Outgoing) -> Result<(), SendError> {
    if let Some(addr) = &cfg.submission {
        return smtp_send(addr, hostname, msg).await;
    }
    if let Some(bin) = &cfg.sendmail {
        return sendmail_send(bin, msg).await;
    }
    Err(SendError::NotConfigured)
}

fn step_timeout() -> Duration {
    Duration::from_secs(SIEVE_SUBMISSION_TIMEOUT_SECS)
}

async fn timed<T>(
    step: &'static str,
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, SendError> {
    tokio::time::timeout(step_timeout(), f)
        .await
        .map_err(|_| SendError::Timeout(step))?
        .map_err(SendError::Io)
}

/// Reads one (possibly multi-line) SMTP reply; returns its code and text.
async fn read_reply(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    step: &'static str,
) -> Result<(u16, String), SendError> {
    let mut text = String::new();
    loop {
        let mut line = Vec::new();
        let n = timed(
            step,
            (&mut *r)
                .take(SIEVE_SUBMISSION_MAX_LINE as u64)
                .read_until(b'\n', &mut line),
        )
        .await?;
        if n == 0 {
            return Err(SendError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "submission server closed the connection",
            )));
        }
        let s = String::from_utf8_lossy(&line);
        let s = s.trim_end();
        let code = s
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| SendError::Refused {
                step,
                reply: s.to_string(),
            })?;
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(s);
        if text.len() > SIEVE_SUBMISSION_MAX_LINE * 4 {
            return Err(SendError::Refused {
                step,
                reply: "reply too long".into(),
            });
        }
        if s.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, text));
        }
    }
}

async fn command(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    line: &str,
    step: &'static str,
    expect: u16,
) -> Result<(u16, String), SendError> {
    timed(step, w.write_all(format!("{line}\r\n").as_bytes())).await?;
    let (code, text) = read_reply(r, step).await?;
    if code / 100 != expect / 100 {
        return Err(SendError::Refused { step, reply: text });
    }
    Ok((code, text))
}

/// The message with CRLF line ends, dot-stuffed, ended by `.` CRLF.
pub fn dot_stuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 40 + 5);
    let mut at_line_start = true;
    let mut prev = 0u8;
    for &b in data {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        at_line_start = b == b'\n';
        prev = b;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

async fn smtp_send(addr: &str, hostname: &str, msg: &Outgoing) -> Result<(), SendError> {
    let stream = timed("connect", TcpStream::connect(addr)).await?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let (code, text) = read_reply(&mut r, "greeting").await?;
    if code != 220 {
        return Err(SendError::Refused {
            step: "greeting",
            reply: text,
        });
    }
    if command(&mut r, &mut w, &format!("EHLO {hostname}"), "EHLO", 250)
        .await
        .is_err()
    {
        command(&mut r, &mut w, &format!("HELO {hostname}"), "HELO", 250).await?;
    }
    command(
        &mut r,
        &mut w,
        &format!("MAIL FROM:<{}>", msg.from),
        "MAIL",
        250,
    )
    .await?;
    command(
        &mut r,
        &mut w,
        &format!("RCPT TO:<{}>", msg.to),
        "RCPT",
        250,
    )
    .await?;
    command(&mut r, &mut w, "DATA", "DATA", 354).await?;
    timed("DATA", w.write_all(&dot_stuff(&msg.data))).await?;
    let (code, text) = read_reply(&mut r, "end of data").await?;
    if code / 100 != 2 {
        return Err(SendError::Refused {
            step: "end of data",
            reply: text,
        });
    }
    // The message is accepted; a failing QUIT changes nothing.
    let _ = command(&mut r, &mut w, "QUIT", "QUIT", 221).await;
    Ok(())
}

async fn sendmail_send(bin: &std::path::Path, msg: &Outgoing) -> Result<(), SendError> {
    let from = if msg.from.is_empty() {
        "<>"
    } else {
        msg.from.as_str()
    };
    let mut child = tokio::process::Command::new(bin)
        .args(["-i", "-f", from, "--", &msg.to])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        timed("sendmail input", stdin.write_all(&msg.data)).await?;
    }
    let out = timed("sendmail", child.wait_with_output()).await?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(SendError::Sendmail(format!(
            "{}: {}",
            out.status,
            err.lines().next().unwrap_or_default()
        )));
    }
    Ok(())
}

/// Whether `address` (a MAIL FROM/RCPT TO value) is safe to put in an SMTP command: no control
/// characters, no angle brackets, not too long.
pub fn safe_address(address: &str) -> bool {
    address.len() <= crate::limits::LMTP_MAX_PATH
        && !address
            .chars()
            .any(|c| c.is_control() || c == '<' || c == '>' || c == ' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_and_line_ends() {
        assert_eq!(
            dot_stuff(b"a\n.b\r\n..\nc"),
            b"a\r\n..b\r\n...\r\nc\r\n.\r\n"
        );
        assert_eq!(dot_stuff(b""), b".\r\n");
        assert_eq!(dot_stuff(b".\r\n"), b"..\r\n.\r\n");
    }

    #[test]
    fn addresses_that_could_inject_commands_are_refused() {
        assert!(safe_address("a@b.example"));
        assert!(safe_address(""));
        assert!(!safe_address("a@b>\r\nRCPT TO:<c@d"));
        assert!(!safe_address("a b@c"));
    }

    #[tokio::test]
    async fn talks_smtp_to_a_sink() {
        use tokio::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let (r, mut w) = s.into_split();
            let mut r = BufReader::new(r);
            let mut log = Vec::new();
            w.write_all(b"220 sink\r\n").await.unwrap();
            let mut in_data = false;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).await.unwrap() == 0 {
                    break;
                }
                log.push(line.clone());
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        w.write_all(b"250 queued\r\n").await.unwrap();
                    }
                    continue;
                }
                let reply: &[u8] = match line.get(..4).unwrap_or("") {
                    "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                    "DATA" => {
                        in_data = true;
                        b"354 go\r\n"
                    }
                    "QUIT" => b"221 bye\r\n",
                    _ => b"250 ok\r\n",
                };
                w.write_all(reply).await.unwrap();
            }
            log
        });
        let msg = Outgoing {
            from: String::new(),
            to: "bob@example.org".into(),
            data: b"Subject: x\n\n.dot\n".to_vec(),
        };
        smtp_send(&addr, "mx.example", &msg).await.unwrap();
        let log = server.await.unwrap();
        assert_eq!(
            log,
            [
                "EHLO mx.example\r\n",
                "MAIL FROM:<>\r\n",
                "RCPT TO:<bob@example.org>\r\n",
                "DATA\r\n",
                "Subject: x\r\n",
                "\r\n",
                "..dot\r\n",
                ".\r\n",
                "QUIT\r\n"
            ]
        );
    }
}
