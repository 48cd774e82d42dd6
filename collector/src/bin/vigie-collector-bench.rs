//! `vigie-collector-bench`: the collector `vigie-bench` runs, the only one that accepts the
//! `[bench]` switches of `collector.toml` (built with `--features bench`; never shipped).

use std::process::ExitCode;

fn main() -> ExitCode {
    vigie_collector::main_of(vigie_collector::config::Build::Bench)
}
