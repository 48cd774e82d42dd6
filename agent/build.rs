//! Links the agent's size build with `deploy/agent.order` (lld `--symbol-ordering-file`): the
//! code `vigie-agent run` executes first in `.text`, the rest after it, so that the kernel's
//! fault-around (64 KiB of page cache mapped around each faulting code page) no longer makes
//! nearly all of the code resident. `deploy/agent-order.sh` regenerates the list.
//!
//! Only for size-optimized builds (opt-level "s" or "z": the `agent` profile that
//! `deploy/package.sh` builds) on x86_64 Linux, where rustc links with rust-lld: debug and test
//! builds link as before, and the Windows cross-build's GNU ld never sees the flag.
//! `VIGIE_AGENT_ORDER=0` turns it off (to measure without it), `=1` turns it on anywhere.

use std::env;
use std::path::Path;

fn main() {
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    let order = Path::new(&manifest_dir).join("../deploy/agent.order");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=VIGIE_AGENT_ORDER");
    let size_build = matches!(env::var("OPT_LEVEL").as_deref(), Ok("s" | "z"));
    let lld_target = env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu");
    let wanted = match env::var("VIGIE_AGENT_ORDER").as_deref() {
        Ok("0") => false,
        Ok("1") => true,
        _ => size_build && lld_target,
    };
    if !wanted || !order.is_file() {
        return;
    }
    // Only here: a new list relinks the size build, never the debug and test builds.
    println!("cargo:rerun-if-changed={}", order.display());
    let bin = "cargo:rustc-link-arg-bin=vigie-agent";
    println!("{bin}=-Wl,--symbol-ordering-file={}", order.display());
    // A symbol of the list absent from this build (code changed since) only costs memory;
    // `deploy/agent-order.sh --check` counts them from the map instead of 1,000 warnings.
    println!("{bin}=-Wl,--no-warn-symbol-ordering");
    // The link map (names mangled, as in the list) is what `--check` reads.
    if let Ok(out_dir) = env::var("OUT_DIR") {
        println!("{bin}=-Wl,-Map={out_dir}/vigie-agent.map");
        println!("{bin}=-Wl,--no-demangle");
    }
}
