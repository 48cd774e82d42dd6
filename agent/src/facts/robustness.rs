//! Test support: "never panics", checked in every `cargo test` for every parser of outside
//! input (backup, update, antivirus, software). Each fixture is cut at many lengths, has bytes overwritten, is re-encoded
//! as UTF-16LE and Windows-1252; then random noise. The `fuzz/` crate does the same with
//! coverage guidance, when cargo-fuzz is at hand.

use rand::{Rng as _, SeedableRng as _};

/// Runs `parse_all` on every damaged variant of the fixtures under `tests/fixtures/<family>`
/// (sub-folders included).
pub fn check_never_panics(family: &str, parse_all: impl Fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(family);
    let mut fixtures = Vec::new();
    let mut dirs = vec![dir.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("fixtures folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                fixtures.push(std::fs::read(&path).expect("fixture"));
            }
        }
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x0056_4947_4945);
    for original in fixtures {
        let step = (original.len() / 200).max(1);
        for cut in (0..original.len()).step_by(step) {
            parse_all(&original[..cut]);
        }
        let text = crate::text::decode(&original);
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        parse_all(&utf16);
        let (cp1252, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
        parse_all(&cp1252);
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
    for _ in 0..300 {
        let len = rng.random_range(0..512);
        let noise: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        parse_all(&noise);
    }
}
