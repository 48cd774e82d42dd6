//! Every backup product's parsers (the product table) on arbitrary bytes: the first byte picks
//! the product, so a product added to the table is fuzzed without a new target. Must never
//! panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vigie_agent::facts::backup::PRODUCTS;

fuzz_target!(|data: &[u8]| {
    let Some((pick, bytes)) = data.split_first() else {
        return;
    };
    let product = PRODUCTS[usize::from(*pick) % PRODUCTS.len()];
    (product.parse_bytes)(bytes);
    vigie_agent::facts::backup::message::from_stderr(&vigie_agent::text::decode(bytes));
});
