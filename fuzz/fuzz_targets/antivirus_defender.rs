//! Get-MpComputerStatus JSON parser on arbitrary bytes: must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_agent::facts::antivirus::defender;
use vigie_agent::text::decode;

fuzz_target!(|data: &[u8]| {
    let text = decode(data);
    let _ = defender::parse(&text);
    let _ = defender::interpret_failure(&text);
});
