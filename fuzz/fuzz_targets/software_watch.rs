//! watch-list glob: the first half of the input is the pattern, the rest the name on arbitrary bytes: must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_agent::facts::software::watch;
use vigie_agent::text::decode;

fuzz_target!(|data: &[u8]| {
    let text = decode(data);
    let mid = text.char_indices().nth(text.chars().count() / 2).map_or(0, |(i, _)| i);
    let (pattern, name) = text.split_at(mid);
    let _ = watch::glob_match(pattern, name);
});
