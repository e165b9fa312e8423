//! ENVELOPE / BODY / BODYSTRUCTURE of every `tests/fixtures/mime/*.eml`
//! compared with the hand-derived expected strings next to it
//! (`NAME.envelope`, `NAME.body`, `NAME.bodystructure`; one trailing newline
//! of the expected file is ignored). Every fixture must have at least one
//! expectation, so a fixture cannot silently check nothing.

use std::path::Path;

use mailcove::mime::{MessageInfo, write_body, write_envelope};

fn expected(path: &Path) -> Option<Vec<u8>> {
    let mut v = std::fs::read(path).ok()?;
    if v.last() == Some(&b'\n') {
        v.pop();
    }
    Some(v)
}

#[test]
fn fixtures_match_expected_strings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mime");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    entries.sort();
    assert!(entries.len() >= 14, "fixtures missing: {}", entries.len());
    let mut failures = Vec::new();
    for eml in entries {
        let raw = std::fs::read(&eml).expect("read eml");
        let info = MessageInfo::parse(&raw);
        // The cache round trip must not change any answer.
        let cached =
            MessageInfo::from_cache_bytes(&info.to_cache_bytes()).expect("cache round trip");
        assert_eq!(cached, info, "{}", eml.display());
        let mut checks = 0;
        for (ext, render) in [("envelope", 0u8), ("body", 1), ("bodystructure", 2)] {
            let Some(want) = expected(&eml.with_extension(ext)) else {
                continue;
            };
            checks += 1;
            let mut got = Vec::new();
            match render {
                0 => write_envelope(&mut got, info.envelope()),
                1 => write_body(&mut got, &info, false),
                _ => write_body(&mut got, &info, true),
            }
            if got != want {
                failures.push(format!(
                    "{} {ext}:\n  want {}\n  got  {}",
                    eml.display(),
                    String::from_utf8_lossy(&want),
                    String::from_utf8_lossy(&got)
                ));
            }
        }
        assert!(checks > 0, "{} has no expected output", eml.display());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
