//! `vigie-collector demo`: the whole system on this machine with embedded defaults. It runs
//! the real binaries (this one and `vigie-agent` beside it) in a throwaway directory: a
//! collector on 127.0.0.1, one clinic per tier, one enrolled agent per clinic (each with a failed
//! backup and an unreachable LAN device), and prints what they report and the alerts each tier
//! gets until ctrl-c.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How often the demo agents take a snapshot, and the table is printed.
const REFRESH: Duration = Duration::from_secs(10);

const CLINICS: [(&str, &str, &str); 3] = [
    ("Cabinet du Dr Hoarau (à la carte)", "cmp0", "workstation"),
    ("Cabinet médical de Saint-Leu", "cmp1", "server"),
    ("Centre d'imagerie de Saint-Pierre", "cmp3", "imaging"),
];

/// Children are killed when the demo ends, however it ends.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub async fn run() -> Result<()> {
    let collector = std::env::current_exe().context("impossible de situer vigie-collector")?;
    let agent = collector.with_file_name(format!("vigie-agent{}", std::env::consts::EXE_SUFFIX));
    if !agent.exists() {
        bail!(
            "{} introuvable : construisez d'abord les deux binaires (cargo build --release --workspace --bins)",
            agent.display()
        );
    }
    let tmp = tempfile::Builder::new()
        .prefix("vigie-demo-")
        .tempdir()
        .context("impossible de créer le dossier de démonstration")?;
    let data_dir = tmp.path().join("collector");
    let agent_listen = format!("127.0.0.1:{}", free_port()?);
    let admin_listen = format!("127.0.0.1:{}", free_port()?);
    let console_listen = format!("127.0.0.1:{}", free_port()?);
    println!("Démonstration Vigie dans {}", tmp.path().display());

    let data = data_dir.to_string_lossy().into_owned();
    output(Command::new(&collector).args([
        "init",
        "--data-dir",
        &data,
        "--agent-listen",
        &agent_listen,
        "--admin-listen",
        &admin_listen,
        "--console-listen",
        &console_listen,
    ]))?;
    // The demo should not make anyone wait ten minutes for the LAN alert.
    let collector_toml = data_dir.join("collector.toml");
    let text = std::fs::read_to_string(&collector_toml)?;
    std::fs::write(
        &collector_toml,
        text.replace("down_after_minutes = 10", "down_after_minutes = 0"),
    )?;
    let mut children = Processes(Vec::new());
    children.0.push(spawn_logged(
        Command::new(&collector).args(["serve", "--data-dir", &data]),
        &tmp.path().join("collector.log"),
    )?);
    wait_for_admin(&collector, &data)?;
    println!("collecteur à l'écoute des agents sur {agent_listen} (TLS mutuel)");
    let password = crate::console::auth::new_secret()?
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect::<String>();
    add_demo_technician(&collector, &data, &password)?;
    println!(
        "console : https://{console_listen}  (identifiant : demo, mot de passe : {password} ; \
         certificat signé par l'autorité du collecteur {}/ca.crt)",
        data_dir.display()
    );

    // Every agent watches a "PACS" on a loopback port nobody listens on, and declares a nightly
    // backup whose last run failed: what a CMP3 clinic pays to hear about, and what CMP0 does not.
    let pacs_port = free_port()?;
    let config = tmp.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[collection]\nsnapshot_interval = \"{}s\"\n\
             [[backup.jobs]]\nname = \"sauvegarde-nas\"\nevery = \"24h\"\n\
             [lan]\ninterval = \"{}s\"\nprobe_timeout = \"2s\"\n\
             [[lan.targets]]\nname = \"pacs-demo\"\nkind = \"pacs\"\naddress = \"127.0.0.1\"\n\
             probes = [{{ type = \"tcp\", port = {pacs_port} }}]\n",
            REFRESH.as_secs(),
            REFRESH.as_secs(),
        ),
    )?;
    for (i, (name, tier, role)) in CLINICS.iter().enumerate() {
        let clinic = output(Command::new(&collector).args([
            "clinic",
            "add",
            "--data-dir",
            &data,
            "--name",
            name,
            "--tier",
            tier,
        ]))?;
        let token = output(Command::new(&collector).args([
            "token",
            "create",
            "--data-dir",
            &data,
            "--clinic",
            &clinic,
        ]))?;
        let state = tmp.path().join(format!("agent-{i}"));
        let state = state.to_string_lossy().into_owned();
        output(Command::new(&agent).args([
            "enroll",
            "--token",
            &token,
            "--state-dir",
            &state,
            "--role",
            role,
        ]))?;
        output(Command::new(&agent).args([
            "backup-result",
            "--state-dir",
            &state,
            "--job",
            "sauvegarde-nas",
            "--status",
            "failed",
            "--message",
            "NAS injoignable",
        ]))?;
        children.0.push(spawn_logged(
            Command::new(&agent)
                .args(["run", "--state-dir", &state, "--config"])
                .arg(&config),
            &tmp.path().join(format!("agent-{i}.log")),
        )?);
        println!("cabinet {tier} « {name} » : agent {role} inscrit");
    }
    println!(
        "\nCe que les agents rapportent (toutes les {} s, ctrl-c pour arrêter) :",
        REFRESH.as_secs()
    );

    let mut tick = tokio::time::interval(REFRESH);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                // Short-lived admin command: blocking this worker for it is fine.
                for what in ["agents", "alerts"] {
                    match output(Command::new(&collector).args([what, "--data-dir", &data])) {
                        Ok(table) => println!("\n$ vigie-collector {what}\n{table}"),
                        Err(e) => eprintln!("demo: {e:#}"),
                    }
                }
            }
        }
    }
    println!("\narrêt ; suppression de {}", tmp.path().display());
    drop(children);
    Ok(())
}

/// `technician add demo --role admin`, the password on stdin.
fn add_demo_technician(collector: &PathBuf, data: &str, password: &str) -> Result<()> {
    use std::io::Write as _;
    let mut child = Command::new(collector)
        .args([
            "technician",
            "add",
            "--data-dir",
            data,
            "demo",
            "--role",
            "admin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("creating the demo console account")?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{password}")?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "creating the demo console account failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs a command and returns its trimmed stdout, or its stderr as the error.
fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("impossible de lancer {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} a échoué : {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn spawn_logged(cmd: &mut Command, log: &Path) -> Result<Child> {
    let file = std::fs::File::create(log)?;
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("impossible de démarrer {cmd:?}"))
}

fn wait_for_admin(collector: &PathBuf, data: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if output(Command::new(collector).args(["clinic", "list", "--data-dir", data])).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("le collecteur n'a pas démarré en 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
