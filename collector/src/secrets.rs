//! Files and settings that hold secrets: the data directory's private files must be readable
//! by the collector's user alone (checked by `serve`, as OpenSSH does for its keys), and a
//! ticket sink's secret may come from a file (`password_file`, e.g. a systemd credential) or
//! the environment (`password_env`) instead of `collector.toml`.

use std::path::{Path, PathBuf};

use crate::config::DataDir;

/// Where systemd's `LoadCredential=` puts a unit's credentials; `$CREDENTIALS_DIRECTORY/NAME`
/// in a `*_file` setting is expanded from the environment.
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// Largest secret file read (a token or password is a few dozen bytes).
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// The files of a data directory that hold secrets: the configuration (sink tokens and
/// passwords) and every private key.
pub fn private_files(data_dir: &DataDir) -> [PathBuf; 4] {
    [
        data_dir.config(),
        data_dir.ca_key(),
        data_dir.server_key(),
        data_dir.admin_key(),
    ]
}

/// Every private file or folder that group or others may access, with the command that fixes
/// it; empty when all is well (and always on systems without Unix modes).
pub fn exposures(data_dir: &DataDir) -> Vec<String> {
    let mut found = Vec::new();
    let mut fixes = Vec::new();
    if let Some(mode) = open_mode(data_dir.path()) {
        found.push(exposure_text(data_dir.path(), mode));
        fixes.push(format!("chmod 700 {}", data_dir.path().display()));
    }
    let files: Vec<PathBuf> = private_files(data_dir)
        .into_iter()
        .filter(|path| match open_mode(path) {
            Some(mode) => {
                found.push(exposure_text(path, mode));
                true
            }
            None => false,
        })
        .collect();
    if !files.is_empty() {
        let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        fixes.push(format!("chmod 600 {}", names.join(" ")));
    }
    if found.is_empty() {
        return found;
    }
    found.push(format!("fix with: {}", fixes.join(" && ")));
    found
}

fn exposure_text(path: &Path, mode: u32) -> String {
    format!(
        "{} holds secrets but group or others may access it (mode {mode:04o})",
        path.display()
    )
}

/// The permission bits when group or others have any access; `None` when private or absent.
#[cfg(unix)]
fn open_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn open_mode(_path: &Path) -> Option<u32> {
    None
}

/// Makes `path` private to its owner (0700 for a folder, 0600 for a file), whatever the umask.
pub fn make_private(path: &Path, folder: bool) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = if folder { 0o700 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, folder);
        Ok(())
    }
}

/// One secret setting and its two alternatives, e.g. `password`, `password_file`,
/// `password_env`.
#[derive(Debug)]
pub struct SecretSetting<'a> {
    /// How the problem text names it: `escalation sink "courriel": password`.
    pub what: String,
    pub value: &'a mut String,
    pub file: Option<&'a Path>,
    pub env: Option<&'a str>,
}

impl SecretSetting<'_> {
    /// Whether any of the three sources is given (the static check, before reading).
    pub fn is_given(value: &str, file: Option<&Path>, env: Option<&str>) -> bool {
        !value.is_empty() || file.is_some() || env.is_some()
    }

    /// Fills `value` from the file or the environment variable; problems are pushed, not
    /// returned, so every one is reported at once.
    pub fn resolve(self, problems: &mut Vec<String>) {
        let what = self.what;
        let given = [
            !self.value.is_empty(),
            self.file.is_some(),
            self.env.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            problems.push(format!(
                "{what}: give the secret one way only (the value, a file or an environment variable)"
            ));
            return;
        }
        if let Some(path) = self.file {
            match read_secret_file(path) {
                Ok(secret) => *self.value = secret,
                Err(problem) => problems.push(format!("{what}_file: {problem}")),
            }
        } else if let Some(name) = self.env {
            match std::env::var(name) {
                Ok(secret) if !secret.is_empty() => *self.value = secret,
                Ok(_) => problems.push(format!("{what}_env: environment variable {name} is empty")),
                Err(_) => problems.push(format!(
                    "{what}_env: environment variable {name} is not set"
                )),
            }
        }
    }
}

/// Reads a secret file: `$CREDENTIALS_DIRECTORY/` expanded, private to its owner, one line
/// (a trailing newline is not part of the secret).
fn read_secret_file(path: &Path) -> Result<String, String> {
    let path = expand_credentials(path)?;
    let meta =
        std::fs::metadata(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if let Some(mode) = open_mode(&path) {
        return Err(format!(
            "{} but group or others may read it (mode {mode:04o}); fix with: chmod 600 {}",
            path.display(),
            path.display()
        ));
    }
    if meta.len() > MAX_SECRET_FILE_BYTES {
        return Err(format!("{} is larger than 64 KiB", path.display()));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(secret.to_owned())
}

fn expand_credentials(path: &Path) -> Result<PathBuf, String> {
    let prefix = format!("${CREDENTIALS_DIRECTORY}");
    let Ok(rest) = path.strip_prefix(&prefix) else {
        return Ok(path.to_owned());
    };
    match std::env::var_os(CREDENTIALS_DIRECTORY) {
        Some(dir) => Ok(PathBuf::from(dir).join(rest)),
        None => Err(format!(
            "{} names ${CREDENTIALS_DIRECTORY}, which is not set (systemd sets it with LoadCredential=)",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(value: &str, file: Option<&Path>, env: Option<&str>) -> (String, Vec<String>) {
        let mut value = value.to_owned();
        let mut problems = Vec::new();
        SecretSetting {
            what: "password".into(),
            value: &mut value,
            file,
            env,
        }
        .resolve(&mut problems);
        (value, problems)
    }

    #[test]
    fn a_secret_comes_from_one_source() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("smtp-password");
        std::fs::write(&file, "s3cret\n").expect("write");
        make_private(&file, false).expect("chmod");
        assert_eq!(resolve("", Some(&file), None), ("s3cret".into(), vec![]));
        assert_eq!(resolve("inline", None, None), ("inline".into(), vec![]));
        let (_, problems) = resolve("inline", Some(&file), None);
        assert!(problems[0].contains("one way only"), "{problems:?}");
        let (_, problems) = resolve("", None, Some("VIGIE_TEST_SURELY_UNSET_VARIABLE"));
        assert!(problems[0].contains("is not set"), "{problems:?}");
        let (_, problems) = resolve("", Some(&tmp.path().join("absent")), None);
        assert!(problems[0].contains("cannot read"), "{problems:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_file_others_can_read_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("token");
        std::fs::write(&file, "t").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let (_, problems) = resolve("", Some(&file), None);
        assert!(problems[0].contains("chmod 600"), "{problems:?}");
    }
}
