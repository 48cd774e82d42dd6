//! "Never panics", checked in every `cargo test`: each parser gets the fixtures cut at every
//! length, with bytes flipped, re-encoded as UTF-16 and Windows-1252, and random bytes. The
//! `fuzz/` crate does the same with coverage guidance, when cargo-fuzz is at hand.

use rand::{Rng as _, SeedableRng as _};

/// Every parser of outside input, on raw bytes as they would come from a file.
pub fn parse_all(bytes: &[u8]) {
    let text = crate::text::decode(bytes);
    let _ = super::spool::parse(bytes);
    let _ = super::robocopy::parse(&text);
    let _ = super::restic::parse(&text);
    let _ = super::borg::parse(&text, &jiff::tz::TimeZone::UTC);
    let _ = super::rsync::parse(&text);
    let _ = super::winevent::parse(&text);
    let _ = super::windows_backup::parse(&text);
    let _ = super::veeam::parse(&text);
}

fn fixtures() -> Vec<Vec<u8>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/backup");
    let mut out = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(root)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("fixtures folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                out.push(std::fs::read(&path).expect("fixture"));
            }
        }
    }
    assert!(out.len() >= 20, "fixtures found: {}", out.len());
    out
}

#[test]
fn parsers_never_panic_on_damaged_input() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x0056_4947_4945);
    for original in fixtures() {
        // Truncated anywhere (in steps, to keep the test fast).
        let step = (original.len() / 200).max(1);
        for cut in (0..original.len()).step_by(step) {
            parse_all(&original[..cut]);
        }
        // Re-encoded the way Windows tools write.
        let text = crate::text::decode(&original);
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        parse_all(&utf16);
        let (cp1252, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
        parse_all(&cp1252);
        // Damaged: random bytes overwritten.
        for _ in 0..50 {
            let mut damaged = original.clone();
            for _ in 0..rng.random_range(1..8) {
                if damaged.is_empty() {
                    break;
                }
                let at = rng.random_range(0..damaged.len());
                damaged[at] = rng.random();
            }
            parse_all(&damaged);
        }
    }
    // Pure noise, and shapes that look like the real thing.
    for _ in 0..500 {
        let len = rng.random_range(0..512);
        let noise: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        parse_all(&noise);
    }
    for tricky in [
        &b"Dirs : 1 2 3 4 5 6\nFiles : 1 2 3 4 5 6\nBytes : 1e308 t 2 3 4 5 6"[..],
        b"Dirs : 1 2 3 4 5 6\nFiles : 1 2 3 4 5 6\nBytes : -1 g NaN m inf k 4 5 6",
        b"Dirs : 99999999999999999999 2 3 4 5 6",
        b"{\"Id\":4,\"TimeCreated\":\"/Date(-99999999999999999)/\"}",
        b"{\"Id\":4,\"TimeCreated\":\"/Date(+)/\"}",
        b"{\"archive\":{\"start\":\"9999-12-31T23:59:59.999999\"}}",
        b"rsync error: (code 99999999999999999999999)",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    ] {
        parse_all(tricky);
    }
}
