//! The collector's own backup archive: one file holding the data directory's files (CA key,
//! certificates, `collector.toml`, ...) and every database tree at one point in time, checked
//! by a SHA-256 at its end. Written by `backup` (through `serve`, or directly when no `serve`
//! holds the database), read back by `restore` into an empty directory.
//!
//! Format, version 1 (integers big-endian):
//! ```text
//! "VIGIE-COLLECTOR-BACKUP\n" u32 version  u16+text created_at (RFC 3339)  u16+text collector version
//! records:  'F' u16+path u64+bytes      a data-dir file (path relative, '/'-separated)
//!           'T' u16+name                 a database tree; its entries follow
//!           'E' u32+key u32+value        an entry of the last tree
//!           'Z' u64 files u64 trees u64 entries, then 32 bytes: SHA-256 of everything before them
//! ```
//! The archive holds the CA key: it is written with mode 0600 and must be kept like the key.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Component, Path, PathBuf};

use ring::digest::{Context, SHA256};

use crate::config::DataDir;
use crate::storage::{ExportError, ExportSink, ExportStats, ImportError, Storage, StorageError};

const MAGIC: &[u8] = b"VIGIE-COLLECTOR-BACKUP\n";
pub const FORMAT_VERSION: u32 = 1;
const HASH_LEN: usize = 32;
/// Largest data-dir file taken (they are certificates and a config of a few KiB).
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
const MAX_NAME_BYTES: usize = 4096;

/// What an archive holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub created_at: String,
    pub collector_version: String,
    pub files: u64,
    pub trees: u64,
    pub entries: u64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path} : {source}")]
    Io { path: String, source: io::Error },
    #[error("{0} n'est pas une sauvegarde de collecteur Vigie (en-tête inconnu)")]
    NotAnArchive(String),
    #[error(
        "{path} est au format de sauvegarde {found}, ce collecteur lit le format {FORMAT_VERSION} : mettez-le à jour"
    )]
    NewerFormat { path: String, found: u32 },
    #[error(
        "{path} est tronquée ({bytes} octets, la fin manque) : rien n'a été restauré ; prenez une autre sauvegarde"
    )]
    Truncated { path: String, bytes: u64 },
    #[error(
        "{path} est endommagée (empreinte SHA-256 différente de celle écrite à la sauvegarde) : rien n'a été restauré ; prenez une autre sauvegarde"
    )]
    Damaged { path: String },
    #[error("{path} : structure invalide ({what})")]
    Malformed { path: String, what: String },
    #[error("{0} n'est pas vide : la restauration se fait dans un dossier neuf ou vide")]
    TargetNotEmpty(String),
    #[error("base de données : {0}")]
    Storage(#[from] StorageError),
    #[error("base de données : {0}")]
    Import(#[from] ImportError),
    #[error("{0}")]
    Export(String),
}

impl<E: std::error::Error> From<ExportError<E>> for ArchiveError {
    fn from(error: ExportError<E>) -> Self {
        ArchiveError::Export(error.to_string())
    }
}

/// Writes an archive, hashing every byte.
struct ArchiveWriter<W: Write> {
    out: W,
    hash: Context,
    bytes: u64,
    files: u64,
}

impl<W: Write> ArchiveWriter<W> {
    fn new(out: W) -> io::Result<Self> {
        let mut writer = ArchiveWriter {
            out,
            hash: Context::new(&SHA256),
            bytes: 0,
            files: 0,
        };
        writer.put(MAGIC)?;
        writer.put(&FORMAT_VERSION.to_be_bytes())?;
        writer.short(jiff::Timestamp::now().to_string().as_bytes())?;
        writer.short(env!("CARGO_PKG_VERSION").as_bytes())?;
        Ok(writer)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hash.update(bytes);
        self.bytes += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    fn short(&mut self, text: &[u8]) -> io::Result<()> {
        let len = u16::try_from(text.len()).map_err(|_| io::Error::other("name too long"))?;
        self.put(&len.to_be_bytes())?;
        self.put(text)
    }

    fn file(&mut self, path: &str, contents: &[u8]) -> io::Result<()> {
        self.put(b"F")?;
        self.short(path.as_bytes())?;
        self.put(&(contents.len() as u64).to_be_bytes())?;
        self.put(contents)?;
        self.files += 1;
        Ok(())
    }

    fn finish(mut self, stats: ExportStats) -> io::Result<W> {
        self.put(b"Z")?;
        for n in [self.files, stats.trees, stats.entries] {
            self.put(&n.to_be_bytes())?;
        }
        let digest = self.hash.clone().finish();
        self.out.write_all(digest.as_ref())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> ExportSink for ArchiveWriter<W> {
    type Error = io::Error;
    fn tree(&mut self, name: &[u8]) -> io::Result<()> {
        self.put(b"T")?;
        self.short(name)
    }
    fn entry(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        let len = |b: &[u8]| u32::try_from(b.len()).map_err(|_| io::Error::other("entry too big"));
        self.put(b"E")?;
        self.put(&len(key)?.to_be_bytes())?;
        self.put(key)?;
        self.put(&len(value)?.to_be_bytes())?;
        self.put(value)
    }
}

/// The files of a data directory that go into a backup: every regular file, in every folder
/// but the database (copied tree by tree instead), so files added later are kept too.
fn data_dir_files(dir: &DataDir) -> Result<Vec<(String, Vec<u8>)>, ArchiveError> {
    fn walk(
        root: &Path,
        at: &Path,
        skip: &Path,
        out: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<(), ArchiveError> {
        let io_err = |path: &Path| {
            let path = path.display().to_string();
            move |source| ArchiveError::Io { path, source }
        };
        let mut entries = std::fs::read_dir(at)
            .map_err(io_err(at))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io_err(at))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let kind = entry.file_type().map_err(io_err(&path))?;
            if path == skip {
                continue;
            }
            if kind.is_dir() {
                walk(root, &path, skip, out)?;
            } else if kind.is_file() {
                let relative = path
                    .strip_prefix(root)
                    .map_err(|_| ArchiveError::Malformed {
                        path: path.display().to_string(),
                        what: "outside the data directory".into(),
                    })?
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                let contents = std::fs::read(&path).map_err(io_err(&path))?;
                out.push((relative, contents));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir.path(), dir.path(), &dir.database(), &mut files)?;
    Ok(files)
}

/// Writes a whole archive of `data_dir` and its open database to `out`: the files first, then
/// every tree while writes are paused. Returns the export figures.
pub fn write_archive<W: Write>(
    data_dir: &DataDir,
    storage: &Storage,
    out: W,
) -> Result<(W, ExportStats), ArchiveError> {
    let files = data_dir_files(data_dir)?;
    let io_err = |source| ArchiveError::Io {
        path: "archive".into(),
        source,
    };
    let mut writer = ArchiveWriter::new(BufWriter::new(out)).map_err(io_err)?;
    for (path, contents) in &files {
        writer.file(path, contents).map_err(io_err)?;
    }
    let stats = storage.export_consistent(&mut writer)?;
    let out = writer
        .finish(stats)
        .map_err(io_err)?
        .into_inner()
        .map_err(|e| io_err(e.into_error()))?;
    Ok((out, stats))
}

/// What a reader hands on, record by record.
trait RecordSink {
    fn file(&mut self, path: &str, contents: &[u8]) -> Result<(), ArchiveError>;
    fn tree(&mut self, name: &[u8]) -> Result<(), ArchiveError>;
    fn entry(&mut self, key: &[u8], value: &[u8]) -> Result<(), ArchiveError>;
}

struct Ignore;
impl RecordSink for Ignore {
    fn file(&mut self, _: &str, _: &[u8]) -> Result<(), ArchiveError> {
        Ok(())
    }
    fn tree(&mut self, _: &[u8]) -> Result<(), ArchiveError> {
        Ok(())
    }
    fn entry(&mut self, _: &[u8], _: &[u8]) -> Result<(), ArchiveError> {
        Ok(())
    }
}

/// Reading past the end of what the hash covers.
#[derive(Debug)]
enum ReadFailure {
    Eof,
    Other(ArchiveError),
}

impl From<ArchiveError> for ReadFailure {
    fn from(error: ArchiveError) -> Self {
        ReadFailure::Other(error)
    }
}

struct Reader<R: Read> {
    inner: R,
    path: String,
}

impl<R: Read> Reader<R> {
    fn bytes(&mut self, len: u64) -> Result<Vec<u8>, ReadFailure> {
        let mut buf = Vec::new();
        (&mut self.inner)
            .take(len)
            .read_to_end(&mut buf)
            .map_err(|source| {
                ReadFailure::Other(ArchiveError::Io {
                    path: self.path.clone(),
                    source,
                })
            })?;
        if (buf.len() as u64) < len {
            return Err(ReadFailure::Eof);
        }
        Ok(buf)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ReadFailure> {
        let bytes = self.bytes(N as u64)?;
        Ok(<[u8; N]>::try_from(bytes.as_slice()).unwrap_or([0; N]))
    }
    fn u16(&mut self) -> Result<u16, ReadFailure> {
        self.array().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Result<u32, ReadFailure> {
        self.array().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Result<u64, ReadFailure> {
        self.array().map(u64::from_be_bytes)
    }
    fn short(&mut self) -> Result<Vec<u8>, ReadFailure> {
        let len = self.u16()?;
        self.bytes(u64::from(len))
    }
    fn malformed(&self, what: impl Into<String>) -> ReadFailure {
        ReadFailure::Other(ArchiveError::Malformed {
            path: self.path.clone(),
            what: what.into(),
        })
    }
}

/// Reads the header and every record, handing them to `sink`; stops after the end record.
fn read_records(path: &Path, sink: &mut dyn RecordSink) -> Result<Summary, ReadFailure> {
    let file = open(path)?;
    let mut r = Reader {
        inner: BufReader::new(file),
        path: path.display().to_string(),
    };
    if r.bytes(MAGIC.len() as u64).ok().as_deref() != Some(MAGIC) {
        return Err(ArchiveError::NotAnArchive(r.path.clone()).into());
    }
    let version = r.u32()?;
    if version != FORMAT_VERSION {
        return Err(ArchiveError::NewerFormat {
            path: r.path.clone(),
            found: version,
        }
        .into());
    }
    let mut summary = Summary {
        created_at: String::from_utf8_lossy(&r.short()?).into_owned(),
        collector_version: String::from_utf8_lossy(&r.short()?).into_owned(),
        ..Summary::default()
    };
    let mut in_tree = false;
    loop {
        let [tag] = r.array::<1>()?;
        match tag {
            b'F' => {
                let name = r.short()?;
                let name = String::from_utf8(name).map_err(|_| r.malformed("file name"))?;
                let len = r.u64()?;
                if len > MAX_FILE_BYTES {
                    return Err(r.malformed(format!("file {name} of {len} bytes")));
                }
                let contents = r.bytes(len)?;
                sink.file(&name, &contents)?;
                summary.files += 1;
            }
            b'T' => {
                let name = r.short()?;
                if name.is_empty() || name.len() > MAX_NAME_BYTES {
                    return Err(r.malformed("tree name"));
                }
                sink.tree(&name)?;
                in_tree = true;
                summary.trees += 1;
            }
            b'E' => {
                if !in_tree {
                    return Err(r.malformed("entry before any tree"));
                }
                let key_len = r.u32()?;
                let key = r.bytes(u64::from(key_len))?;
                let value_len = r.u32()?;
                let value = r.bytes(u64::from(value_len))?;
                sink.entry(&key, &value)?;
                summary.entries += 1;
            }
            b'Z' => {
                let counts = [r.u64()?, r.u64()?, r.u64()?];
                if counts != [summary.files, summary.trees, summary.entries] {
                    return Err(r.malformed(format!(
                        "end record counts {counts:?}, found {:?}",
                        [summary.files, summary.trees, summary.entries]
                    )));
                }
                return Ok(summary);
            }
            other => return Err(r.malformed(format!("unknown record type {other:#04x}"))),
        }
    }
}

fn open(path: &Path) -> Result<File, ArchiveError> {
    File::open(path).map_err(|source| ArchiveError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Checks an archive completely without writing anything: header, SHA-256, structure.
pub fn verify(path: &Path) -> Result<Summary, ArchiveError> {
    let shown = path.display().to_string();
    let io_err = |source| ArchiveError::Io {
        path: shown.clone(),
        source,
    };
    let mut file = open(path)?;
    let len = file.metadata().map_err(io_err)?.len();
    let mut magic = vec![0u8; MAGIC.len()];
    if file.read_exact(&mut magic).is_err() || magic != MAGIC {
        return Err(ArchiveError::NotAnArchive(shown));
    }
    file.rewind().map_err(io_err)?;
    let covered = len.saturating_sub(HASH_LEN as u64);
    let mut hash = Context::new(&SHA256);
    // No read-ahead buffer here: the hash that follows must be read from the file.
    let mut reader = (&mut file).take(covered);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    let mut written = [0u8; HASH_LEN];
    let complete = len >= (MAGIC.len() + HASH_LEN) as u64 && file.read_exact(&mut written).is_ok();
    if !complete || hash.finish().as_ref() != written {
        // Tell a cut-off file (a full disk, an interrupted copy) from altered bytes.
        return Err(match read_records(path, &mut Ignore) {
            Err(ReadFailure::Eof) => ArchiveError::Truncated {
                path: shown,
                bytes: len,
            },
            Err(ReadFailure::Other(error @ ArchiveError::NewerFormat { .. })) => error,
            _ => ArchiveError::Damaged { path: shown },
        });
    }
    let mut summary = read_records(path, &mut Ignore).map_err(|failure| match failure {
        ReadFailure::Eof => ArchiveError::Truncated {
            path: shown.clone(),
            bytes: len,
        },
        ReadFailure::Other(error) => error,
    })?;
    summary.bytes = len;
    Ok(summary)
}

/// Restores an archive into `target`, which must not exist or be empty. The archive is checked
/// whole first, so a damaged one writes nothing; a failure half way removes what was written.
pub fn restore(archive: &Path, target: &DataDir) -> Result<Summary, ArchiveError> {
    let dir = target.path();
    if let Ok(mut entries) = std::fs::read_dir(dir)
        && entries.next().is_some()
    {
        return Err(ArchiveError::TargetNotEmpty(dir.display().to_string()));
    }
    let summary = verify(archive)?;
    create_private_dir(dir)?;
    let result = restore_into(archive, target);
    if result.is_err() {
        // The folder was empty before: leave it so, not half restored.
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
            }
        }
    }
    result.map(|()| summary)
}

/// How far alert numbers jump at a restore: more alerts than a collector opens between two
/// nightly backups.
const RESTORED_ALERT_GAP: u64 = 100_000;

fn restore_into(archive: &Path, target: &DataDir) -> Result<(), ArchiveError> {
    let storage = Storage::open(&target.database())?;
    let mut sink = Restorer {
        target,
        importer: Some(storage.importer()),
    };
    read_records(archive, &mut sink).map_err(|failure| match failure {
        ReadFailure::Eof => ArchiveError::Truncated {
            path: archive.display().to_string(),
            bytes: 0,
        },
        ReadFailure::Other(error) => error,
    })?;
    if let Some(importer) = sink.importer.take() {
        importer.finish()?;
    }
    // Alerts numbered after the backup may have tickets tagged `[vigie:N]` out there: numbers
    // restart well past them so a new alert never lands in an old ticket.
    storage.skip_alert_numbers(RESTORED_ALERT_GAP)?;
    storage.flush_durably()?;
    vigie_durable::sync_dir(target.path()).map_err(StorageError::from)?;
    Ok(())
}

struct Restorer<'a> {
    target: &'a DataDir,
    importer: Option<crate::storage::Importer<'a>>,
}

impl RecordSink for Restorer<'_> {
    fn file(&mut self, name: &str, contents: &[u8]) -> Result<(), ArchiveError> {
        let path = safe_join(self.target.path(), name).ok_or_else(|| ArchiveError::Malformed {
            path: name.to_owned(),
            what: "file path leaves the data directory".into(),
        })?;
        if path.starts_with(self.target.database()) {
            return Err(ArchiveError::Malformed {
                path: name.to_owned(),
                what: "file inside the database folder".into(),
            });
        }
        if let Some(parent) = path.parent() {
            create_private_dir(parent)?;
        }
        write_secret(&path, contents)
    }
    fn tree(&mut self, name: &[u8]) -> Result<(), ArchiveError> {
        match &mut self.importer {
            Some(importer) => Ok(importer.tree(name)?),
            None => Ok(()),
        }
    }
    fn entry(&mut self, key: &[u8], value: &[u8]) -> Result<(), ArchiveError> {
        match &mut self.importer {
            Some(importer) => Ok(importer.entry(key, value)?),
            None => Ok(()),
        }
    }
}

/// `root/relative` when `relative` only names folders and a file below `root`.
fn safe_join(root: &Path, relative: &str) -> Option<PathBuf> {
    let relative = Path::new(relative);
    let plain = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    (plain && relative.components().next().is_some()).then(|| root.join(relative))
}

/// A folder only its owner can enter (0700), whatever the umask.
fn create_private_dir(dir: &Path) -> Result<(), ArchiveError> {
    let io_err = |source| ArchiveError::Io {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io_err)?;
    }
    Ok(())
}

/// Writes a restored file readable by its owner only (0600): the archive does not say which
/// files hold secrets, and most do.
fn write_secret(path: &Path, contents: &[u8]) -> Result<(), ArchiveError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut file| {
            file.write_all(contents)?;
            file.sync_all()
        })
        .map_err(|source| ArchiveError::Io {
            path: path.display().to_string(),
            source,
        })
}

/// Where `backup` writes before the archive is complete and checked (then renamed over `out`).
pub fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// Creates the file `backup` writes into: new, mode 0600 (the archive holds the CA key).
pub fn create_output(path: &Path) -> Result<File, ArchiveError> {
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path).map_err(|source| ArchiveError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Checks a complete `partial` archive, makes it durable and puts it in place of `out`
/// (an older backup there stays whole until then).
pub fn commit_output(file: File, partial: &Path, out: &Path) -> Result<Summary, ArchiveError> {
    let io_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| ArchiveError::Io { path, source }
    };
    file.sync_all().map_err(io_err(partial))?;
    drop(file);
    let summary = match verify(partial) {
        Ok(summary) => summary,
        Err(error) => {
            let _ = std::fs::remove_file(partial);
            return Err(error);
        }
    };
    std::fs::rename(partial, out).map_err(io_err(out))?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        vigie_durable::sync_dir(parent).map_err(StorageError::from)?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::{InitOptions, init};

    fn collector(tmp: &Path) -> (DataDir, Storage) {
        let dir = DataDir::new(tmp.join("data"));
        init(
            &dir,
            &InitOptions {
                agent_listen: "127.0.0.1:0".parse().expect("addr"),
                public_addr: None,
                admin_listen: "127.0.0.1:0".parse().expect("addr"),
                console_listen: "127.0.0.1:0".parse().expect("addr"),
            },
        )
        .expect("init");
        let storage = Storage::open(&dir.database()).expect("open");
        (dir, storage)
    }

    fn backup(dir: &DataDir, storage: &Storage, out: &Path) -> Summary {
        let partial = partial_path(out);
        let file = create_output(&partial).expect("create");
        let (file, _) = write_archive(dir, storage, file).expect("write");
        commit_output(file, &partial, out).expect("commit")
    }

    #[test]
    fn archive_round_trips_files_and_trees_with_private_modes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (dir, storage) = collector(tmp.path());
        std::fs::create_dir(dir.path().join("secrets")).expect("mkdir");
        std::fs::write(dir.path().join("secrets/glpi.token"), "s3cret").expect("write");
        let out = tmp.path().join("vigie.backup");
        let summary = backup(&dir, &storage, &out);
        assert_eq!(summary.files, 8, "7 files from init + 1 added later");
        assert!(summary.trees >= 17);

        let target = DataDir::new(tmp.path().join("restored"));
        let restored = restore(&out, &target).expect("restore");
        assert_eq!(restored, summary);
        for name in ["ca.key", "ca.crt", "collector.toml", "secrets/glpi.token"] {
            assert_eq!(
                std::fs::read(dir.path().join(name)).expect("original"),
                std::fs::read(target.path().join(name)).expect("restored"),
                "{name}"
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(target.path()), 0o700);
            assert_eq!(mode(&target.ca_key()), 0o600);
            assert_eq!(mode(&out), 0o600);
        }
        // Restoring again over it is refused.
        assert!(matches!(
            restore(&out, &target),
            Err(ArchiveError::TargetNotEmpty(_))
        ));
    }

    #[test]
    fn truncated_damaged_and_foreign_files_are_refused_and_write_nothing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (dir, storage) = collector(tmp.path());
        let out = tmp.path().join("vigie.backup");
        backup(&dir, &storage, &out);
        let bytes = std::fs::read(&out).expect("read");

        let cut = tmp.path().join("cut.backup");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
        let mut flipped = bytes.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x40;
        let damaged = tmp.path().join("damaged.backup");
        std::fs::write(&damaged, &flipped).expect("write");
        let foreign = tmp.path().join("foreign.backup");
        std::fs::write(&foreign, b"PK\x03\x04 not ours").expect("write");

        let target = DataDir::new(tmp.path().join("restored"));
        let error = restore(&cut, &target).expect_err("truncated");
        assert!(matches!(error, ArchiveError::Truncated { .. }), "{error}");
        let error = restore(&damaged, &target).expect_err("damaged");
        assert!(matches!(error, ArchiveError::Damaged { .. }), "{error}");
        let error = restore(&foreign, &target).expect_err("foreign");
        assert!(matches!(error, ArchiveError::NotAnArchive(_)), "{error}");
        assert!(!target.path().exists(), "nothing written");
    }

    #[test]
    fn restored_paths_never_leave_the_data_directory() {
        let root = Path::new("/srv/vigie");
        assert!(safe_join(root, "secrets/a.token").is_some());
        for bad in ["../etc/passwd", "/etc/passwd", "", "a/../../b", "./x"] {
            assert!(safe_join(root, bad).is_none(), "{bad}");
        }
    }
}
