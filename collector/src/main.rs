//! `vigie-collector` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    vigie_collector::main_of(vigie_collector::config::Build::Shipped)
}
