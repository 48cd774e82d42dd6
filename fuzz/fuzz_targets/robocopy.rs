//! `robocopy` parser on arbitrary bytes (decoded as the agent decodes files): must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_agent::facts::backup::robocopy;
use vigie_agent::text::decode;

fuzz_target!(|data: &[u8]| {
    drop(robocopy::parse(&decode(data)));
});
