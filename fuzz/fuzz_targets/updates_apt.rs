//! apt-get simulation, apt-check and history.log parsers on arbitrary bytes: must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_agent::facts::updates::apt;
use vigie_agent::text::decode;

fuzz_target!(|data: &[u8]| {
    let text = decode(data);
    let _ = apt::parse_simulation(&text);
    let _ = apt::parse_apt_check(&text);
    let _ = apt::parse_history(&text, &jiff::tz::TimeZone::UTC);
});
