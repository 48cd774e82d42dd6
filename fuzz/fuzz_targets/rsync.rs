//! `rsync` parser on arbitrary bytes (decoded as the agent decodes files): must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_agent::facts::backup::rsync;
use vigie_agent::text::decode;

fuzz_target!(|data: &[u8]| {
    drop(rsync::parse(&decode(data)));
});
