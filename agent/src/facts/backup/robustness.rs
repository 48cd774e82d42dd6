//! "Never panics" for the backup parsers, checked in every `cargo test` with the shared
//! damaged-input harness (`facts::robustness`) plus a few hand-made traps.

/// Every parser of outside input (the product table's, plus the shared ones), on raw bytes
/// as they would come from a file.
pub fn parse_all(bytes: &[u8]) {
    super::products::parse_all(bytes);
    let _ = super::winevent::parse(&crate::text::decode(bytes));
    let _ = super::message::from_stderr(&crate::text::decode(bytes));
}

#[test]
fn parsers_never_panic_on_damaged_input() {
    crate::facts::robustness::check_never_panics("backup", parse_all);
    // Shapes that look like the real thing, with absurd numbers and dates.
    for tricky in [
        &b"Dirs : 1 2 3 4 5 6\nFiles : 1 2 3 4 5 6\nBytes : 1e308 t 2 3 4 5 6"[..],
        b"Dirs : 1 2 3 4 5 6\nFiles : 1 2 3 4 5 6\nBytes : -1 g NaN m inf k 4 5 6",
        b"Dirs : 99999999999999999999 2 3 4 5 6",
        b"{\"Id\":4,\"TimeCreated\":\"/Date(-99999999999999999)/\"}",
        b"{\"Id\":4,\"TimeCreated\":\"/Date(+)/\"}",
        b"{\"archive\":{\"start\":\"9999-12-31T23:59:59.999999\"}}",
        b"rsync error: (code 99999999999999999999999)",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    ] {
        parse_all(tricky);
    }
}
