//! Client side of the admin interface: the admin commands talk to the running collector over
//! mutual TLS with `admin.crt`, and never open the database themselves.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use vigie_proto::v1::admin_client::AdminClient;

use crate::config::{CollectorConfig, ConfigError, DataDir};

/// Largest admin answer accepted (an agent list with snapshots can be large).
const MAX_ADMIN_MESSAGE: usize = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AdminClientError {
    #[error("{0} n'est pas un dossier de collecteur initialisé (pas de collector.toml)")]
    NotInitialised(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("impossible de lire {path} : {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "l'interface d'administration du collecteur ne répond pas sur {addr} : `vigie-collector serve` est-il lancé ?"
    )]
    Unreachable {
        addr: SocketAddr,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("impossible de préparer la connexion d'administration : {0}")]
    Setup(#[source] tonic::transport::Error),
}

/// Where to dial for a listen address: an unspecified address means "this host".
fn dial_addr(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    }
}

fn read(path: std::path::PathBuf) -> Result<String, AdminClientError> {
    std::fs::read_to_string(&path).map_err(|source| AdminClientError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Connects to the admin listener named in `collector.toml`.
pub async fn connect(data_dir: &DataDir) -> Result<AdminClient<Channel>, AdminClientError> {
    if !data_dir.config().is_file() {
        return Err(AdminClientError::NotInitialised(
            data_dir.path().display().to_string(),
        ));
    }
    let config = CollectorConfig::load(data_dir)?;
    connect_at(data_dir, config.admin_listen).await
}

/// Connects to an admin listener at `listen` (for a collector started on port 0, say) with the
/// admin certificate of `data_dir`.
pub async fn connect_at(
    data_dir: &DataDir,
    listen: SocketAddr,
) -> Result<AdminClient<Channel>, AdminClientError> {
    let addr = dial_addr(listen);
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(data_dir.ca_cert())?))
        .identity(Identity::from_pem(
            read(data_dir.admin_cert())?,
            read(data_dir.admin_key())?,
        ))
        // The server certificate always names localhost; the admin listener is local.
        .domain_name("localhost");
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))
        .map_err(AdminClientError::Setup)?
        .tls_config(tls)
        .map_err(AdminClientError::Setup)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60));
    let channel = endpoint
        .connect()
        .await
        .map_err(|source| AdminClientError::Unreachable { addr, source })?;
    Ok(AdminClient::new(channel).max_decoding_message_size(MAX_ADMIN_MESSAGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_listen_address_dials_loopback() {
        let dial = |s: &str| dial_addr(s.parse().expect("addr")).to_string();
        assert_eq!(dial("0.0.0.0:7444"), "127.0.0.1:7444");
        assert_eq!(dial("[::]:7444"), "[::1]:7444");
        assert_eq!(dial("127.0.0.1:7444"), "127.0.0.1:7444");
    }
}
