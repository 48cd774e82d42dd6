//! `spool` parser on arbitrary bytes (decoded as the agent decodes files): must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_agent::facts::backup::spool;

fuzz_target!(|data: &[u8]| {
    drop(spool::parse(data));
});
