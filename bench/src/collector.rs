//! A real collector for the benchmark (`vigie-collector-bench`, the build that accepts `[bench]`): `init` in a fresh directory on loopback ports,
//! optional `[bench]` switches, `serve`, and the admin calls the benchmark needs (a clinic,
//! enrollment tokens, report counts) over the admin listener with the admin certificate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use vigie_proto::v1;
use vigie_proto::v1::admin_client::AdminClient;

use crate::process::{self, Daemon};
use crate::procfs;

/// The collector binary built with `--features bench`: the shipped `vigie-collector` refuses
/// `[bench]` switches.
pub const BENCH_COLLECTOR: &str = "vigie-collector-bench";

/// The collector's `[bench]` switches (see `collector/src/config.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switches {
    pub discard_reports: bool,
    pub fsync: bool,
}

impl Switches {
    pub const DURABLE: Switches = Switches {
        discard_reports: false,
        fsync: true,
    };
    pub const NO_STORAGE: Switches = Switches {
        discard_reports: true,
        fsync: true,
    };
    pub const NO_FSYNC: Switches = Switches {
        discard_reports: false,
        fsync: false,
    };
}

/// A running collector and an admin connection to it.
#[derive(Debug)]
pub struct Collector {
    pub data_dir: PathBuf,
    pub agent_addr: SocketAddr,
    pub ca_pem: String,
    daemon: Option<Daemon>,
    bin: PathBuf,
    admin_addr: SocketAddr,
}

impl Collector {
    /// `init` in `data_dir` (which must not exist), then `serve`.
    pub async fn start(bin_dir: &Path, data_dir: &Path, switches: Switches) -> Result<Self> {
        Self::start_with(bin_dir, data_dir, switches, "").await
    }

    /// Like `start`, with `extra` (TOML sections) appended to `collector.toml` before `serve`.
    pub async fn start_with(
        bin_dir: &Path,
        data_dir: &Path,
        switches: Switches,
        extra: &str,
    ) -> Result<Self> {
        let mut collector = Self::init(bin_dir, data_dir, switches, extra)?;
        collector.serve().await?;
        Ok(collector)
    }

    /// `init` only (nothing serving yet: the database can be filled first), then `serve`.
    pub fn init(bin_dir: &Path, data_dir: &Path, switches: Switches, extra: &str) -> Result<Self> {
        let bin = bin_dir.join(BENCH_COLLECTOR);
        let agent_addr: SocketAddr = format!("127.0.0.1:{}", process::free_port()?).parse()?;
        let admin_addr: SocketAddr = format!("127.0.0.1:{}", process::free_port()?).parse()?;
        process::run(
            Command::new(&bin)
                .arg("init")
                .arg("--data-dir")
                .arg(data_dir)
                .args(["--agent-listen", &agent_addr.to_string()])
                .args(["--admin-listen", &admin_addr.to_string()])
                .args([
                    "--console-listen",
                    &format!("127.0.0.1:{}", process::free_port()?),
                ]),
            Duration::from_secs(60),
        )?;
        let config = data_dir.join("collector.toml");
        let mut text = std::fs::read_to_string(&config)?;
        // Every simulated agent enrolls from 127.0.0.1: lift the per-address admission limits
        // (they guard enrollment only; enrolled agents' connections keep their own budget).
        text = text
            .lines()
            .map(|line| match line.split_once(" = ").map(|(key, _)| key) {
                Some(
                    key @ ("enroll_per_address_per_minute"
                    | "unauthenticated_per_address_per_minute"),
                ) => {
                    format!("{key} = 1000000")
                }
                Some(
                    key @ ("max_unauthenticated_per_address" | "max_tls_handshakes_per_address"),
                ) => {
                    format!("{key} = 64")
                }
                _ => line.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        text.push('\n');
        text.push_str(&format!(
            "\n[bench]\ndiscard_reports = {}\nfsync = {}\n",
            switches.discard_reports, switches.fsync
        ));
        text.push_str(extra);
        std::fs::write(&config, text)?;
        let ca_pem = std::fs::read_to_string(data_dir.join("ca.crt"))?;
        Ok(Collector {
            data_dir: data_dir.to_owned(),
            agent_addr,
            ca_pem,
            daemon: None,
            bin,
            admin_addr,
        })
    }

    /// Starts `serve` (again) and waits for both listeners.
    pub async fn serve(&mut self) -> Result<()> {
        let log = self.data_dir.with_extension("serve.log");
        let daemon = Daemon::spawn(
            "vigie-collector serve",
            Command::new(&self.bin)
                .arg("serve")
                .arg("--data-dir")
                .arg(&self.data_dir),
            &log,
        )?;
        self.daemon = Some(daemon);
        let (agent, admin) = (self.agent_addr, self.admin_addr);
        tokio::task::spawn_blocking(move || {
            process::wait_for_port(agent, Duration::from_secs(30))?;
            process::wait_for_port(admin, Duration::from_secs(30))
        })
        .await??;
        Ok(())
    }

    /// SIGTERM and wait (the collector flushes on the way out).
    pub fn stop(&mut self) -> Result<()> {
        if let Some(daemon) = self.daemon.take() {
            daemon.stop(Duration::from_secs(40))?;
        }
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.daemon.as_ref().map_or(0, Daemon::pid)
    }

    /// Memory and CPU of the serving process.
    pub fn sample(&mut self) -> Result<procfs::Sample> {
        if let Some(daemon) = self.daemon.as_mut() {
            daemon.check_alive()?;
        }
        procfs::sample_tree(self.pid())
    }

    async fn admin(&self) -> Result<AdminClient<Channel>> {
        let read = |name: &str| {
            std::fs::read_to_string(self.data_dir.join(name))
                .with_context(|| format!("read {name}"))
        };
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(read("admin.crt")?, read("admin.key")?))
            .domain_name("localhost");
        let channel = Channel::from_shared(format!("https://{}", self.admin_addr))?
            .tls_config(tls)?
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .connect()
            .await
            .context("connect to the admin listener")?;
        Ok(AdminClient::new(channel).max_decoding_message_size(256 * 1024 * 1024))
    }

    /// Adds a clinic and makes `count` enrollment tokens for it.
    pub async fn tokens(&self, count: usize) -> Result<Vec<String>> {
        let mut admin = self.admin().await?;
        let clinic = admin
            .add_clinic(v1::AddClinicRequest {
                name: format!("Bench clinic {}", uuid::Uuid::now_v7()),
                tier: "cmp1".into(),
            })
            .await?
            .into_inner();
        let mut tokens = Vec::with_capacity(count);
        let mut pending = tokio::task::JoinSet::new();
        for _ in 0..count {
            if pending.len() >= 32
                && let Some(done) = pending.join_next().await
            {
                tokens.push(done??);
            }
            let mut admin = admin.clone();
            let clinic_id = clinic.id.clone();
            pending.spawn(async move {
                let answer = admin
                    .create_token(v1::CreateTokenRequest {
                        clinic_id,
                        ttl_seconds: 3600,
                    })
                    .await?;
                Ok::<_, anyhow::Error>(answer.into_inner().token)
            });
        }
        while let Some(done) = pending.join_next().await {
            tokens.push(done??);
        }
        Ok(tokens)
    }

    /// Reports stored for each agent (`agents --json`'s count).
    pub async fn report_counts(&self) -> Result<Vec<(String, u64)>> {
        let mut admin = self.admin().await?;
        let agents = admin
            .list_agents(v1::ListAgentsRequest::default())
            .await?
            .into_inner()
            .agents;
        Ok(agents.into_iter().map(|a| (a.id, a.reports)).collect())
    }
}
