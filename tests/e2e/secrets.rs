//! Secrets on disk: `init` makes the data directory and every secret-holding file private
//! whatever the umask, and `serve` refuses to start, with the command that fixes it, when
//! group or others may read one (as OpenSSH does with its keys).

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use vigie_tests::{Collector, bin, free_port, run_with_timeout};

const PRIVATE_FILES: [&str; 4] = ["collector.toml", "ca.key", "server.key", "admin.key"];

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn init_under_umask_000_makes_secrets_private() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("collector");
    // The umask an admin's shell or a careless installer may have.
    let script = format!(
        "umask 000 && exec \"$0\" init --data-dir \"$1\" --agent-listen 127.0.0.1:{} --admin-listen 127.0.0.1:{}",
        free_port(),
        free_port()
    );
    let out = run_with_timeout(
        Command::new("sh")
            .args(["-c", &script])
            .arg(bin("vigie-collector"))
            .arg(&dir),
        std::time::Duration::from_secs(30),
    )
    .expect("init");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode(&dir), 0o700, "the data directory");
    for file in PRIVATE_FILES {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&dir.join("ca.crt")), 0o644, "a certificate is public");
}

#[test]
fn serve_refuses_a_readable_config_and_says_how_to_fix_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut collector = Collector::init_in(&tmp.path().join("collector"));
    let config = collector.data_dir.join("collector.toml");
    chmod(&config, 0o644);
    let stderr = collector.serve_refused();
    let fix = format!("chmod 600 {}", config.display());
    assert!(stderr.contains(&fix), "{fix:?} in: {stderr}");
    assert!(stderr.contains("mode 0644"), "{stderr}");

    // A data directory others may list is refused too; both fixes in one command line.
    chmod(&collector.data_dir, 0o755);
    chmod(&collector.data_dir.join("ca.key"), 0o640);
    let stderr = collector.serve_refused();
    let fix = format!(
        "chmod 700 {dir} && chmod 600 {dir}/collector.toml {dir}/ca.key",
        dir = collector.data_dir.display()
    );
    assert!(stderr.contains(&fix), "{fix:?} in: {stderr}");

    // The fix it gives is enough.
    chmod(&collector.data_dir, 0o700);
    chmod(&config, 0o600);
    chmod(&collector.data_dir.join("ca.key"), 0o600);
    collector.serve();
    assert!(collector.is_serving());
}
