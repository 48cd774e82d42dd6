//! SecurityCenter2 AntiVirusProduct JSON parser on arbitrary bytes: must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_agent::facts::antivirus::security_center;
use vigie_agent::text::decode;

fuzz_target!(|data: &[u8]| {
    let _ = security_center::parse(&decode(data));
});
