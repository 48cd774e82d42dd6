//! Small file helpers for the backup module: atomic writes and bounded reads.

use std::io::{Read as _, Write as _};
use std::path::Path;

/// Writes `contents` to `path` atomically: a hidden temp file beside it, fsync, rename, fsync
/// of the folder (unix). A reader sees the old file or the whole new one, never a part.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Hidden and not `.json`, so the spool scanner never picks up a half-written file.
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    if let Err(error) = result.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(error);
    }
    sync_dir(dir);
    Ok(())
}

/// Makes a rename or a removal in `dir` durable (unix; a no-op elsewhere).
pub fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(error) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(dir = %dir.display(), %error, "cannot fsync folder");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Reads at most `max` bytes; `Ok(None)` when the file is longer.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

/// Reads the last `max` bytes of a file (logs appended to with `/LOG+` grow without bound).
pub fn read_tail(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Seek as _, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > max {
        file.seek(SeekFrom::Start(len - max))?;
    }
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.json");
        write_atomic(&path, b"one").expect("write");
        write_atomic(&path, b"two").expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
        assert_eq!(read_bounded(&path, 3).expect("read"), Some(b"two".to_vec()));
        assert_eq!(read_bounded(&path, 2).expect("read"), None);
        assert_eq!(read_tail(&path, 2).expect("read"), b"wo");
    }
}
