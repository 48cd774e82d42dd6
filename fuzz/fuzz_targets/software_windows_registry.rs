//! uninstall-registry JSON parser on arbitrary bytes: must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_agent::facts::software::windows_registry;
use vigie_agent::text::decode;

fuzz_target!(|data: &[u8]| {
    let _ = windows_registry::parse(&decode(data));
});
