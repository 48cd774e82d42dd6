//! dpkg-query output parser on arbitrary bytes: must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_agent::facts::software::dpkg;
use vigie_agent::text::decode;

fuzz_target!(|data: &[u8]| {
    let _ = dpkg::parse(&decode(data));
});
