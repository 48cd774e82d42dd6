//! `windows_backup` parser on arbitrary bytes (decoded as the agent decodes files): must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_agent::facts::backup::windows_backup;
use vigie_agent::text::decode;

fuzz_target!(|data: &[u8]| {
    drop(windows_backup::parse(&decode(data)));
});
