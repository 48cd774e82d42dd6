//! `init`: creates a collector data directory with its configuration, CA, server certificate
//! and admin client certificate.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::config::{CollectorConfig, ConfigError, ConfigProblems, DataDir, Limits};
use crate::pki::{CertificateAuthority, PkiError};
use crate::secrets;

#[derive(Debug, Clone)]
pub struct InitOptions {
    pub agent_listen: SocketAddr,
    /// `HOST:PORT` agents use; `None` means `agent_listen`.
    pub public_addr: Option<String>,
    pub admin_listen: SocketAddr,
    /// The technician console's HTTPS address.
    pub console_listen: SocketAddr,
}

/// What `init` made.
#[derive(Debug, Clone)]
pub struct InitReport {
    pub config: CollectorConfig,
    pub ca_fingerprint: String,
    pub files: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} est déjà initialisé ({1} existe) : sa CA et ses clés ne sont pas écrasées")]
    AlreadyInitialised(String, String),
    #[error("options invalides : {0}")]
    Invalid(ConfigProblems),
    #[error("impossible de créer {path} : {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Pki(#[from] PkiError),
}

/// Creates the data directory. Refuses to touch one that already holds a collector.
pub fn init(data_dir: &DataDir, options: &InitOptions) -> Result<InitReport, InitError> {
    for existing in [data_dir.config(), data_dir.ca_cert(), data_dir.ca_key()] {
        if existing.exists() {
            return Err(InitError::AlreadyInitialised(
                data_dir.path().display().to_string(),
                existing.display().to_string(),
            ));
        }
    }
    let config = CollectorConfig {
        agent_listen: options.agent_listen,
        public_addr: options
            .public_addr
            .clone()
            .unwrap_or_else(|| options.agent_listen.to_string()),
        admin_listen: options.admin_listen,
        limits: Limits::default(),
        alerts: Default::default(),
        retention: Default::default(),
        bench: Default::default(),
        escalation: Default::default(),
        reports: Default::default(),
        console: crate::console::ConsoleConfig {
            listen: options.console_listen,
            ..Default::default()
        },
    };
    config.validate().map_err(InitError::Invalid)?;
    let config_text = format!(
        "# Vigie collector. Each key, its meaning and default: deploy/collector-limits.toml\n\
         # ([limits]), deploy/collector-escalation.toml ([escalation]). May hold secrets: keep it\n\
         # readable by the collector's user only (mode 0600; `serve` checks).\n\n{}",
        config.to_toml()?
    );

    let ca = CertificateAuthority::generate()?;
    let server = ca.issue_server(&config.public_host())?;
    let admin = ca.issue_admin()?;

    // Private whatever the umask: it holds the CA key and, later, the sinks' secrets.
    std::fs::create_dir_all(data_dir.path())
        .and_then(|()| secrets::make_private(data_dir.path(), true))
        .map_err(|source| InitError::Write {
            path: data_dir.path().to_owned(),
            source,
        })?;
    let files = [
        (data_dir.ca_cert(), ca.cert_pem().to_owned(), false),
        (data_dir.ca_key(), ca.key_pem(), true),
        (data_dir.server_cert(), server.cert_pem, false),
        (data_dir.server_key(), server.key_pem, true),
        (data_dir.admin_cert(), admin.cert_pem, false),
        (data_dir.admin_key(), admin.key_pem, true),
        // Last: its presence is what marks the directory initialised. Secret: the sinks'
        // tokens and passwords may be written into it.
        (data_dir.config(), config_text, true),
    ];
    let mut made = Vec::new();
    for (path, contents, secret) in files {
        write_new(&path, contents.as_bytes(), secret)?;
        made.push(path);
    }
    Ok(InitReport {
        config,
        ca_fingerprint: ca.fingerprint(),
        files: made,
    })
}

/// Writes a file that must not exist yet; secrets are readable by the owner only, whatever
/// the umask.
fn write_new(path: &Path, contents: &[u8], secret: bool) -> Result<(), InitError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    options
        .open(path)
        .and_then(|mut file| {
            // The mode given at creation is cut by the umask; set it as meant.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = if secret { 0o600 } else { 0o644 };
                file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            }
            file.write_all(contents)?;
            file.sync_all()
        })
        .map_err(|source| InitError::Write {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> InitOptions {
        InitOptions {
            agent_listen: "127.0.0.1:0".parse().expect("addr"),
            public_addr: Some("collector.example:7443".into()),
            admin_listen: "127.0.0.1:0".parse().expect("addr"),
            console_listen: "127.0.0.1:0".parse().expect("addr"),
        }
    }

    #[test]
    fn init_writes_everything_once() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = DataDir::new(tmp.path().join("data"));
        let report = init(&dir, &options()).expect("init");
        assert_eq!(report.files.len(), 7);
        let config = CollectorConfig::load(&dir).expect("config");
        assert_eq!(config.public_addr(), "collector.example:7443");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode =
                |path: &Path| std::fs::metadata(path).expect("meta").permissions().mode() & 0o777;
            for private in secrets::private_files(&dir) {
                assert_eq!(mode(&private), 0o600, "{}", private.display());
            }
            assert_eq!(mode(dir.path()), 0o700);
            assert!(secrets::exposures(&dir).is_empty());
        }
        let ca = std::fs::read_to_string(dir.ca_cert()).expect("ca");
        let der = crate::pki::first_cert_der(&ca).expect("der");
        assert_eq!(crate::pki::fingerprint_der(&der), report.ca_fingerprint);
        assert!(matches!(
            init(&dir, &options()),
            Err(InitError::AlreadyInitialised(..))
        ));
    }
}
