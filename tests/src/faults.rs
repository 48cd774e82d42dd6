//! Real fault injection for the end-to-end tests: a small tmpfs the test mounts (and fills),
//! and libfiu (`fiu-run -x` to start a program with the POSIX fault points, `fiu-ctrl` to
//! make its later calls fail). Both need root, as CI runs; `tests/run.sh` installs `fiu-utils`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;

/// errno values libfiu hands to the failing call.
pub const EIO: i32 = 5;
pub const ENOSPC: i32 = 28;

/// A tmpfs of a fixed size mounted on a fresh directory; unmounted when dropped.
pub struct Tmpfs {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).expect("mount point");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount -t tmpfs failed ({status}): these tests need root"
        );
        Tmpfs { path, _dir: dir }
    }

    /// Writes a file until the disk says it is full; returns its path (remove it to free the
    /// space) and the bytes written.
    pub fn fill(&self) -> (PathBuf, u64) {
        let path = self.path.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(ENOSPC) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        // A short write takes the last free pages; the next one says ENOSPC.
        let _ = file.sync_all();
        (path, written)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a process a failed test left behind must not keep the mount (and the test
        // machine's memory) forever.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// `fiu-ctrl -c COMMAND PID`: changes the fault points of a process started under `fiu-run -x`.
pub fn fiu_ctrl(pid: u32, command: &str) {
    let status = Command::new("fiu-ctrl")
        .args(["-c", command, &pid.to_string()])
        .status()
        .expect("fiu-ctrl (Debian package fiu-utils)");
    assert!(status.success(), "fiu-ctrl -c {command:?} {pid}: {status}");
}

/// The `fiu-run` words that start a program with every later `name` call failing with `errno`.
pub fn fiu_run_failing(name: &str, errno: i32) -> Vec<String> {
    vec![
        "fiu-run".into(),
        "-x".into(),
        "-c".into(),
        format!("enable name={name},failinfo={errno}"),
    ]
}

pub use crate::RunningAgent;
