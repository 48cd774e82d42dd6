//! ClamAV on Linux: the signature database's version and build time from the header of
//! freshclam's `daily.cvd` / `daily.cld` (the file's mtime when the header is unreadable), and
//! whether `clamd` (and `clamonacc`, on-access scanning) run. No database and no daemon means
//! no ClamAV.

use std::path::{Path, PathBuf};

use jiff::Timestamp;

use super::{AntivirusProduct, SourceResult};

/// The header is the file's first 512 bytes, space-padded.
const HEADER_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CvdHeader {
    pub version: u64,
    pub built_at: Option<Timestamp>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CvdError {
    #[error("not a ClamAV database header")]
    NotCvd,
    #[error("ClamAV database header without a version")]
    NoVersion,
}

/// `ClamAV-VDB:07 Mar 2024 08:23 -0500:27207:2049891:90:<md5>:<dsig>:<builder>:<stime>`. The
/// date holds a colon itself, so fields are counted from it; `stime` (Unix seconds) is the
/// build time, the text date its fallback.
pub fn parse_header(bytes: &[u8]) -> Result<CvdHeader, CvdError> {
    let header = &bytes[..bytes.len().min(HEADER_LEN)];
    let text = String::from_utf8_lossy(header);
    let text = text.trim_end_matches(['\0', ' ', '\n', '\r']);
    let rest = text.strip_prefix("ClamAV-VDB:").ok_or(CvdError::NotCvd)?;
    let fields: Vec<&str> = rest.split(':').collect();
    // fields: [date hh, mm tz, version, sigs, flevel, md5, dsig, builder, stime]
    let version = fields
        .get(2)
        .and_then(|v| v.trim().parse().ok())
        .ok_or(CvdError::NoVersion)?;
    let stime = fields
        .get(8)
        .and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|s| *s > 0)
        .and_then(|s| Timestamp::from_second(s).ok());
    let text_date = match (fields.first(), fields.get(1)) {
        (Some(a), Some(b)) => jiff::fmt::strtime::parse("%d %b %Y %H:%M %z", format!("{a}:{b}"))
            .ok()
            .and_then(|t| t.to_timestamp().ok()),
        _ => None,
    };
    Ok(CvdHeader {
        version,
        built_at: stime.or(text_date),
    })
}

/// The newest of `daily.cld` and `daily.cvd` in `dir` (freshclam keeps one or the other).
fn daily_database(dir: &Path) -> Option<(PathBuf, std::fs::Metadata)> {
    ["daily.cld", "daily.cvd"]
        .iter()
        .map(|name| dir.join(name))
        .filter_map(|path| std::fs::metadata(&path).ok().map(|m| (path, m)))
        .max_by_key(|(_, m)| m.modified().ok())
}

/// Reads the database and the daemons into a product, or none when ClamAV is absent.
pub fn inspect(db_dir: &Path, running: &[String]) -> SourceResult {
    let clamd = running.iter().any(|p| p == "clamd");
    let onacc = running.iter().any(|p| p == "clamonacc");
    let database = daily_database(db_dir);
    if database.is_none() && !clamd {
        return Ok(Vec::new());
    }
    let mut product = AntivirusProduct {
        name: "ClamAV".to_owned(),
        source: "clamav".to_owned(),
        enabled: clamd,
        realtime_protection: Some(onacc),
        service_running: Some(clamd),
        ..AntivirusProduct::default()
    };
    if let Some((path, meta)) = database {
        let mut header = Vec::with_capacity(HEADER_LEN);
        let read = std::fs::File::open(&path).and_then(|f| {
            use std::io::Read as _;
            f.take(HEADER_LEN as u64).read_to_end(&mut header)
        });
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| Timestamp::try_from(t).ok());
        match read
            .map_err(|e| e.to_string())
            .and_then(|_| parse_header(&header).map_err(|e| e.to_string()))
        {
            Ok(h) => {
                product.signature_version = format!("daily {}", h.version);
                product.signatures_updated_at = h.built_at.or(mtime);
            }
            Err(error) => {
                tracing::debug!(path = %path.display(), %error, "ClamAV database header unreadable");
                product.signatures_updated_at = mtime;
            }
        }
    }
    Ok(vec![product])
}

/// Names of running processes from `/proc/*/comm` (Linux; elsewhere none).
fn running_processes() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .map(|comm| comm.trim().to_owned())
        .collect()
}

pub fn collect(config: &crate::facts::antivirus::config::AntivirusConfig) -> SourceResult {
    inspect(&config.clamav_db_dir, &running_processes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> Vec<u8> {
        let mut bytes = text.as_bytes().to_vec();
        bytes.resize(HEADER_LEN, b' ');
        bytes.extend(b"\x1f\x8b\x08\x00binary tar.gz follows");
        bytes
    }

    fn check(input: &[u8], expected: Result<(u64, Option<&str>), CvdError>) {
        let got = parse_header(input).map(|h| (h.version, h.built_at.map(|t| t.to_string())));
        let expected = expected.map(|(v, t)| (v, t.map(str::to_owned)));
        assert_eq!(got, expected, "input {:?}", String::from_utf8_lossy(input));
    }

    #[test]
    fn headers() {
        let fixture = include_bytes!("../../../tests/fixtures/antivirus/daily.cvd.head");
        check(fixture, Ok((27207, Some("2024-03-07T13:23:08Z"))));
        check(
            &header("ClamAV-VDB:07 Mar 2024 08:23 -0500:27207:2049891:90:X:X:raynman:X"),
            Ok((27207, Some("2024-03-07T13:23:00Z"))),
        );
        check(&header("ClamAV-VDB:bad:date:27000"), Ok((27000, None)));
        check(
            &header("ClamAV-VDB:07 Mar 2024 08:23 -0500:x"),
            Err(CvdError::NoVersion),
        );
        check(b"ClamAV-VDB:", Err(CvdError::NoVersion));
        check(b"", Err(CvdError::NotCvd));
        check(b"\x1f\x8b\x08\x00\xff\xfe", Err(CvdError::NotCvd));
    }

    #[test]
    fn inspect_database_and_daemons() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(inspect(dir.path(), &[]), Ok(vec![]));

        let only_daemon = inspect(dir.path(), &["clamd".to_owned()]).expect("answers");
        assert_eq!(only_daemon.len(), 1);
        assert!(only_daemon[0].enabled);
        assert!(only_daemon[0].signatures_updated_at.is_none());

        std::fs::write(
            dir.path().join("daily.cld"),
            header("ClamAV-VDB:07 Mar 2024 08:23 -0500:27207:2049891:90:X:X:raynman:1709817788"),
        )
        .expect("write");
        let products = inspect(dir.path(), &["bash".to_owned()]).expect("answers");
        let p = &products[0];
        assert_eq!(
            (p.enabled, p.service_running, p.realtime_protection),
            (false, Some(false), Some(false))
        );
        assert_eq!(p.signature_version, "daily 27207");
        assert_eq!(
            p.signatures_updated_at.map(|t| t.to_string()).as_deref(),
            Some("2024-03-07T13:23:08Z")
        );

        std::fs::write(dir.path().join("daily.cld"), b"garbage").expect("write");
        let products = inspect(dir.path(), &[]).expect("answers");
        assert_eq!(products[0].signature_version, "");
        assert!(
            products[0].signatures_updated_at.is_some(),
            "mtime fallback"
        );
    }

    #[test]
    fn process_list_is_readable_here() {
        if cfg!(target_os = "linux") {
            assert!(!running_processes().is_empty());
        }
    }
}
