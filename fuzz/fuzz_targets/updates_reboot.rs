//! reboot-pending parsers (reg query, needs-restarting, reboot-required.pkgs) on arbitrary bytes: must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_agent::facts::updates::reboot;
use vigie_agent::text::decode;

fuzz_target!(|data: &[u8]| {
    let text = decode(data);
    let _ = reboot::parse_reg_query(&text);
    let _ = reboot::parse_needs_restarting(Some(1), &text);
    let _ = reboot::debian_reason(reboot::REBOOT_REQUIRED, &text);
});
