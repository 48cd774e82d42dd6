//! `borg` parser on arbitrary bytes (decoded as the agent decodes files): must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_agent::facts::backup::borg;
use vigie_agent::text::decode;

fuzz_target!(|data: &[u8]| {
    drop(borg::parse(&decode(data), &jiff::tz::TimeZone::UTC));
});
