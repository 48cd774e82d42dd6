//! The benchmark switches of `collector.toml` (`[bench]`) are refused by the shipped binary:
//! a stray line must not make a real collector acknowledge reports it never stored.

use vigie_tests::Collector;

fn refused_with(switches: &str, named: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let collector = Collector::init_in(&tmp.path().join("collector"));
    collector.append_config(&format!("[bench]\n{switches}\n"));
    let stderr = collector.serve_refused();
    for expected in [
        "[bench]",
        named,
        "refuses to start",
        "vigie-collector-bench",
    ] {
        assert!(stderr.contains(expected), "{expected:?} in: {stderr}");
    }
}

#[test]
fn shipped_collector_refuses_discard_reports() {
    refused_with("discard_reports = true", "discard_reports = true");
}

#[test]
fn shipped_collector_refuses_fsync_off() {
    refused_with("fsync = false", "fsync = false");
}

#[test]
fn bench_section_at_its_safe_defaults_is_harmless() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut collector = Collector::init_in(&tmp.path().join("collector"));
    collector.append_config("[bench]\ndiscard_reports = false\nfsync = true\n");
    collector.serve();
    assert!(collector.is_serving());
}
