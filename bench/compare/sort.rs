//! Rows 11-13: SORT, THREAD and the page a webmail shows (RFC 5256, RFC 5267), first and warm.
//!
//! "First" means the server has never computed a sort key for the mailbox: every case selects
//! its own folder, a hard-linked copy of the big mailbox made before the server started (see
//! `fresh_folders`), so no FETCH, SEARCH or earlier SORT row has filled either server's cache for
//! it (Dovecot's `dovecot.index.cache`, mailcove's header cache). Both servers find the files in
//! the page cache, as for every other row. "Warm" is the median of the following runs on the same
//! folder, each on a new session, timing the command alone (after LOGIN and SELECT).
//!
//! A server that answers a case with BAD or NO (mailcove before it implements SORT and THREAD)
//! gets "n/a (BAD)" / "n/a (NO)" in the table instead of ending the run.

use std::time::Instant;

use crate::client::{Answer, Imap, Result};
use crate::rows::{Measured, Order, Plan};
use crate::servers::{Kind, Running};

/// One measured command.
pub struct Case {
    /// The `--rows` group it belongs to.
    pub group: &'static str,
    pub key: &'static str,
    /// Its own fresh copy of the big mailbox (a Maildir++ folder of user `big`).
    pub folder: &'static str,
    pub command: &'static str,
    pub label: &'static str,
}

pub const CASES: &[Case] = &[
    Case {
        group: "sort",
        key: "sort_date",
        folder: "sort-date",
        command: "SORT (DATE) UTF-8 ALL",
        label: "11 SORT (DATE) UTF-8 ALL",
    },
    Case {
        group: "sort",
        key: "sort_subject",
        folder: "sort-subject",
        command: "SORT (SUBJECT) UTF-8 ALL",
        label: "11 SORT (SUBJECT) UTF-8 ALL",
    },
    Case {
        group: "sort",
        key: "sort_from",
        folder: "sort-from",
        command: "SORT (FROM) UTF-8 ALL",
        label: "11 SORT (FROM) UTF-8 ALL",
    },
    Case {
        group: "thread",
        key: "thread_refs",
        folder: "thread-refs",
        command: "THREAD REFERENCES UTF-8 ALL",
        label: "12 THREAD REFERENCES UTF-8 ALL",
    },
    Case {
        group: "sort",
        key: "esort_page",
        folder: "sort-page",
        command: PAGE,
        label: "13 UID SORT RETURN (PARTIAL 1:50) (REVERSE DATE)",
    },
];

/// The first page of a webmail's message list, newest first (RFC 5267 ESORT with PARTIAL).
const PAGE: &str = "UID SORT RETURN (PARTIAL 1:50) (REVERSE DATE) UTF-8 ALL";
/// What is measured instead on a server that answers BAD to PARTIAL in SORT (it announces
/// ESORT without CONTEXT=SORT): the whole order, of which a webmail would show the first 50.
const PAGE_WITHOUT_PARTIAL: &str = "UID SORT RETURN (ALL) (REVERSE DATE) UTF-8 ALL";
/// How many results of the page are compared between the servers.
const PAGE_SIZE: usize = 50;

/// The capabilities worth listing next to these rows.
const CAPS_OF_INTEREST: &[&str] = &["SORT", "ESORT", "CONTEXT=SORT", "CONTEXT=SEARCH", "WITHIN"];

/// The folders to create (as copies of the big mailbox) for the wanted row groups.
pub fn fresh_folders(want: impl Fn(&str) -> bool) -> Vec<&'static str> {
    CASES
        .iter()
        .filter(|c| want(c.group))
        .map(|c| c.folder)
        .collect()
}

/// A session of user `big` with `folder` selected; its EXISTS.
async fn session(port: u16, pw: &str, folder: &str) -> Result<(Imap, Option<u64>)> {
    let mut c = Imap::connect(port).await?;
    c.login("big", pw).await?;
    let a = c.ok(&format!("SELECT {folder}"), false).await?;
    Ok((c, a.exists()))
}

/// Sends `command` and times it up to the tagged answer, whatever the answer is.
async fn timed(c: &mut Imap, command: &str) -> Result<(f64, Answer)> {
    let t = Instant::now();
    let a = c.cmd(command, true).await?;
    Ok((t.elapsed().as_secs_f64() * 1000.0, a))
}

/// Why a case has no figure: the table's text ("n/a (BAD)") and the detail for the facts.
struct NotMeasured {
    cell: String,
    detail: String,
}

/// An OK answer, or why there is none: BAD, NO, or a connection that failed (a server still
/// being built may close it), none of which ends the run.
fn answered(r: Result<(f64, Answer)>) -> std::result::Result<(f64, Answer), NotMeasured> {
    match r {
        Ok((took, a)) if a.status.starts_with("OK") => Ok((took, a)),
        Ok((_, a)) => Err(NotMeasured {
            cell: format!("n/a ({})", a.status.split(' ').next().unwrap_or("?")),
            detail: a.status.trim().to_string(),
        }),
        Err(e) => Err(NotMeasured {
            cell: "n/a (error)".into(),
            detail: e.to_string(),
        }),
    }
}

/// Rows 11-13 for the wanted groups.
pub async fn sort_rows(
    s: &Running,
    plan: &Plan,
    want: impl Fn(&str) -> bool,
    m: &mut Measured,
) -> Result<()> {
    let (port, pw, n) = (s.ports.imap, plan.password, plan.big);
    let mut c = Imap::connect(port).await?;
    c.login("big", pw).await?;
    let caps = c.ok("CAPABILITY", true).await?;
    let _ = c.cmd("LOGOUT", false).await;
    let words: Vec<String> = caps
        .untagged
        .iter()
        .filter(|l| l.starts_with(b"* CAPABILITY "))
        .flat_map(|l| {
            String::from_utf8_lossy(l)
                .split(' ')
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter(|w| {
            CAPS_OF_INTEREST.contains(&w.as_str())
                || w.starts_with("THREAD=")
                || w.starts_with("SORT=")
                || w.starts_with("I18NLEVEL=")
        })
        .collect();
    m.info(
        "sort_capabilities",
        if words.is_empty() {
            "(none)".to_string()
        } else {
            words.join(" ")
        },
    );
    for case in CASES.iter().filter(|c| want(c.group)) {
        let (first_key, warm_key) = (
            format!("{}_{n}_first", case.key),
            format!("{}_{n}_warm", case.key),
        );
        let (mut c, exists) = session(port, pw, case.folder).await?;
        m.check(
            &format!("{}_{n}_exists", case.key),
            exists.map_or("?".into(), |e| e.to_string()),
        );
        let mut command = case.command;
        let mut r = timed(&mut c, command).await;
        if command == PAGE
            && let Ok((_, a)) = &r
            && a.status.starts_with("BAD")
        {
            // A BAD is a syntax verdict: nothing was sorted, so the next command is still the
            // first sort of this folder.
            m.info("esort_page_partial_answer", a.status.trim());
            command = PAGE_WITHOUT_PARTIAL;
            r = timed(&mut c, command).await;
        }
        let _ = c.cmd("LOGOUT", false).await;
        let (first, a) = match answered(r) {
            Ok(ok) => ok,
            Err(why) => {
                m.not_measured(&first_key, &why.cell);
                m.not_measured(&warm_key, &why.cell);
                m.info(&format!("{}_answer", case.key), why.detail);
                continue;
            }
        };
        if case.key == "esort_page" {
            m.info("esort_page_command", format!("`{command}`"));
        }
        m.set(&first_key, first);
        if let Err(e) = record(case, n, &a, m) {
            m.check(
                &format!("{}_{n}_answer", case.key),
                format!("unreadable: {e}"),
            );
        }
        let mut v = Vec::new();
        let mut failed = None;
        for _ in 0..plan.reps {
            let (mut c, _) = session(port, pw, case.folder).await?;
            let r = timed(&mut c, command).await;
            let _ = c.cmd("LOGOUT", false).await;
            match answered(r) {
                Ok((took, _)) => v.push(took),
                Err(why) => {
                    failed = Some(why);
                    break;
                }
            }
        }
        match failed {
            None => m.set(&warm_key, crate::rows::median(v)),
            Some(why) => {
                m.not_measured(&warm_key, &why.cell);
                m.info(&format!("{}_warm_answer", case.key), why.detail);
            }
        }
    }
    Ok(())
}

/// Keeps what a case answered for the cross-checks.
fn record(case: &Case, n: usize, a: &Answer, m: &mut Measured) -> Result<()> {
    let key = format!("{}_{n}", case.key);
    match case.key {
        "thread_refs" => {
            let text = a
                .untagged
                .iter()
                .find_map(|l| l.strip_prefix(b"* THREAD"))
                .ok_or("no * THREAD answer")?;
            let text = text.strip_prefix(b" ").unwrap_or(text).to_vec();
            let (threads, messages) = thread_counts(&text)?;
            m.check(&format!("{key}_threads"), threads);
            m.check(&format!("{key}_messages"), messages);
            m.orders.insert(key, Order::Text(text));
        }
        "esort_page" => {
            let mut page = esearch_results(a)?;
            page.truncate(PAGE_SIZE);
            m.check(&format!("{key}_results"), page.len());
            m.orders
                .insert(format!("{key}_first{PAGE_SIZE}"), Order::Numbers(page));
        }
        _ => {
            let numbers = sort_results(a)?;
            m.check(&format!("{key}_results"), numbers.len());
            if case.key == "sort_date" {
                // The generator knows every Date header: the order the RFC asks for, worked
                // out without either server.
                let want = crate::corpus::date_order(n);
                let verdict = if numbers == want {
                    "yes".to_string()
                } else {
                    let at = numbers.iter().zip(&want).position(|(a, b)| a != b);
                    format!(
                        "NO, first difference at position {}",
                        at.map_or(numbers.len().min(want.len()), |p| p) + 1
                    )
                };
                m.check(&format!("{key}_matches_generated_dates"), verdict);
            }
            m.orders.insert(key, Order::Numbers(numbers));
        }
    }
    Ok(())
}

fn numbers(text: &[u8]) -> Result<Vec<u64>> {
    std::str::from_utf8(text)?
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| Ok(w.parse::<u64>()?))
        .collect()
}

/// The numbers of the `* SORT` lines, in order.
fn sort_results(a: &Answer) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for l in &a.untagged {
        if let Some(rest) = l.strip_prefix(b"* SORT") {
            out.extend(numbers(rest)?);
        }
    }
    Ok(out)
}

/// The results of an ESEARCH answer to an extended SORT (`PARTIAL (range set)` or `ALL set`),
/// in order. Ranges ascend after expansion whichever way they are written (RFC 5267 3.2).
fn esearch_results(a: &Answer) -> Result<Vec<u64>> {
    let line = a
        .untagged
        .iter()
        .find(|l| l.starts_with(b"* ESEARCH"))
        .ok_or("no * ESEARCH answer")?;
    let line = std::str::from_utf8(line)?;
    let set = if let Some((_, rest)) = line.split_once(" PARTIAL (") {
        // "1:50 set)" or "1:50 NIL)"
        let inner = rest.split(')').next().unwrap_or("");
        match inner.split_once(' ') {
            Some((_, "NIL")) | None => "",
            Some((_, set)) => set,
        }
    } else if let Some((_, rest)) = line.split_once(" ALL ") {
        rest.split(' ').next().unwrap_or("")
    } else {
        ""
    };
    expand_set(set)
}

/// `4,9:7,12` -> 4 7 8 9 12, at most 10 million numbers (a bound on a misbehaving answer).
fn expand_set(set: &str) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for part in set.split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (a.parse()?, b.parse()?);
                (a.min(b), a.max(b))
            }
            None => {
                let a: u64 = part.parse()?;
                (a, a)
            }
        };
        if out.len() as u64 + (hi - lo) > 10_000_000 {
            return Err("ESEARCH set too large".into());
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

/// (top-level threads, messages) of a THREAD answer such as `(1)(2 (3)(4 5))`.
fn thread_counts(text: &[u8]) -> Result<(usize, usize)> {
    let (mut depth, mut threads, mut messages, mut in_number) = (0usize, 0, 0, false);
    for &b in text {
        match b {
            b'(' => {
                if depth == 0 {
                    threads += 1;
                }
                depth += 1;
                in_number = false;
            }
            b')' => {
                depth = depth.checked_sub(1).ok_or("unbalanced THREAD answer")?;
                in_number = false;
            }
            b'0'..=b'9' => {
                if !in_number {
                    messages += 1;
                }
                in_number = true;
            }
            _ => in_number = false,
        }
    }
    if depth != 0 {
        return Err("unbalanced THREAD answer".into());
    }
    Ok((threads, messages))
}

/// Table rows of the cases, first and warm: (key, label, unit, higher is better).
pub fn table_rows(big: usize) -> Vec<(String, String, &'static str, bool)> {
    let mut rows = Vec::new();
    for case in CASES {
        for when in ["first", "warm"] {
            rows.push((
                format!("{}_{big}_{when}", case.key),
                format!("{}, {big}, {when}", case.label),
                "ms",
                false,
            ));
        }
    }
    rows
}

/// Lines comparing the orders both servers answered. The RFC leaves a few things open (how
/// non-ASCII subjects compare under i;unicode-casemap, which subjects THREAD merges), so a
/// difference is reported with a short diff rather than failing the run.
pub fn compare_orders(results: &[(Kind, Measured)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut keys: Vec<&String> = results.iter().flat_map(|(_, m)| m.orders.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let have: Vec<(Kind, &Order)> = results
            .iter()
            .filter_map(|(k, m)| m.orders.get(key).map(|o| (*k, o)))
            .collect();
        let [(ka, a), (kb, b)] = have.as_slice() else {
            out.push(format!(
                "  {key:<32} only {} answered",
                have.first().map_or("none", |(k, _)| k.name())
            ));
            continue;
        };
        out.push(match (a, b) {
            (Order::Numbers(x), Order::Numbers(y)) => compare_numbers(key, (*ka, x), (*kb, y)),
            (Order::Text(x), Order::Text(y)) => compare_text(key, (*ka, x), (*kb, y)),
            _ => format!("  {key:<32} WARNING: answers of different kinds"),
        });
    }
    out
}

fn compare_numbers(key: &str, (ka, x): (Kind, &[u64]), (kb, y): (Kind, &[u64])) -> String {
    let head = |v: &[u64]| v.len().min(PAGE_SIZE);
    let first50 = if x[..head(x)] == y[..head(y)] {
        "first 50 agree"
    } else {
        "first 50 DIFFER"
    };
    if x == y {
        return format!("  {key:<32} agree ({} results)", x.len());
    }
    let differing = x.iter().zip(y).filter(|(a, b)| a != b).count() + x.len().abs_diff(y.len());
    let at = x
        .iter()
        .zip(y)
        .position(|(a, b)| a != b)
        .unwrap_or(x.len().min(y.len()));
    let window = |v: &[u64]| {
        let from = at.saturating_sub(2);
        let to = (at + 5).min(v.len());
        v.get(from..to)
            .unwrap_or_default()
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    // A block placed elsewhere moves every position after it, so also count neighbours that
    // keep their order in the other answer: nearly all of them when one group sorted apart.
    let in_y: std::collections::HashMap<u64, usize> =
        y.iter().enumerate().map(|(i, v)| (*v, i)).collect();
    let kept = x
        .windows(2)
        .filter(|w| matches!((in_y.get(&w[0]), in_y.get(&w[1])), (Some(a), Some(b)) if a < b))
        .count();
    format!(
        "  {key:<32} WARNING: {first50}; {differing} of {} positions differ, the first at {}; \
         {kept} of {} neighbouring pairs keep their order: {} [.. {} ..] {} [.. {} ..]",
        x.len().max(y.len()),
        at + 1,
        x.len().saturating_sub(1),
        ka.name(),
        window(x),
        kb.name(),
        window(y)
    )
}

fn compare_text(key: &str, (ka, x): (Kind, &[u8]), (kb, y): (Kind, &[u8])) -> String {
    if x == y {
        return format!("  {key:<32} agree ({} bytes)", x.len());
    }
    let at = x
        .iter()
        .zip(y)
        .position(|(a, b)| a != b)
        .unwrap_or(x.len().min(y.len()));
    let window = |v: &[u8]| {
        let from = at.saturating_sub(30);
        let to = (at + 30).min(v.len());
        String::from_utf8_lossy(v.get(from..to).unwrap_or_default()).into_owned()
    };
    format!(
        "  {key:<32} WARNING: differ from byte {}: {} [..{}..] {} [..{}..]",
        at + 1,
        ka.name(),
        window(x),
        kb.name(),
        window(y)
    )
}

/// Writes each kept answer to `dir/<key>.txt` (one number a line, or the THREAD text), so a
/// difference reported by `compare_orders` can be looked at with `diff`.
pub fn write_orders(dir: &std::path::Path, m: &Measured) -> Result<()> {
    if m.orders.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    for (key, order) in &m.orders {
        let text = match order {
            Order::Numbers(v) => v.iter().map(|n| format!("{n}\n")).collect::<String>(),
            Order::Text(t) => format!("{}\n", String::from_utf8_lossy(t)),
        };
        std::fs::write(dir.join(format!("{key}.txt")), text)?;
    }
    Ok(())
}
