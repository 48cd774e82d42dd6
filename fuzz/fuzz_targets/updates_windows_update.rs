//! Windows Update Agent search JSON parser on arbitrary bytes: must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_agent::facts::updates::windows_update;
use vigie_agent::text::decode;

fuzz_target!(|data: &[u8]| {
    let _ = windows_update::parse(&decode(data));
});
