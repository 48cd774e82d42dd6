//! `vigie-collector` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

/// mimalloc rather than glibc's malloc: under load glibc's arenas took a quarter of the
/// collector's CPU (`malloc_consolidate`, `_int_free`; measured with `perf`, issue 16).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    vigie_collector::main_of(vigie_collector::config::Build::Shipped)
}
