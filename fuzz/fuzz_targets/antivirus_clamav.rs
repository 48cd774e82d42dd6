//! ClamAV database header parser (raw bytes, as read from daily.cvd) on arbitrary bytes: must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_agent::facts::antivirus::clamav;

fuzz_target!(|data: &[u8]| {
    let _ = clamav::parse_header(data);
});
