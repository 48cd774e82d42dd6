//! dnf check-update, updateinfo and history parsers on arbitrary bytes: must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_agent::facts::updates::dnf;
use vigie_agent::text::decode;

fuzz_target!(|data: &[u8]| {
    let text = decode(data);
    let security = dnf::parse_updateinfo(&text);
    let _ = dnf::parse_check_update(Some(100), &text, &security);
    let _ = dnf::parse_history(&text, &jiff::tz::TimeZone::UTC);
});
