//! LAN probes against real peers on 127.0.0.1: net-snmp's snmpd (v2c and v3, printer/UPS/NAS
//! values), dcmtk's dcmqrscp (C-ECHO, wrong called AE title rejected), an HTTPS server with a
//! self-signed certificate, closed ports; then the peers stop and the next round reads down.
//! The peers come from `tests/peers.sh`; a missing one fails the test, never skips it.

use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vigie_tests::{bin, free_port, run_with_timeout};

const PEERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/peers");
/// Per-probe timeout in the test config; a round must end within a few of these.
const PROBE_TIMEOUT_S: u64 = 3;

/// A started peer, killed (by its pid) when dropped.
struct Peer {
    name: &'static str,
    child: Child,
}

impl Peer {
    fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn require(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{tool} is missing: run `bash tests/peers.sh` (the test command installs the LAN test peers)"
    );
}

fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> Peer {
    let out = std::fs::File::create(log).expect("peer log");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log fd"))
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    Peer { name, child }
}

fn wait_until(peer: &mut Peer, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        if let Ok(Some(status)) = peer.child.try_wait() {
            panic!(
                "{} exited at start ({status}):\n{}",
                peer.name,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "{} not ready in 20 s", peer.name);
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn template(name: &str, vars: &[(&str, &str)], to: &Path) {
    let mut text = std::fs::read_to_string(Path::new(PEERS).join(name)).expect("peer template");
    for (key, value) in vars {
        text = text.replace(key, value);
    }
    std::fs::write(to, text).expect("write peer config");
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("bind udp")
}

/// snmpd on 127.0.0.1:`port`, unprivileged, with the test community and v3 user.
fn start_snmpd(dir: &Path, port: u16) -> Peer {
    require("snmpd");
    require("snmpget");
    let conf = dir.join("snmp");
    std::fs::create_dir_all(conf.join("persist")).expect("mkdir");
    template(
        "snmpd.conf.in",
        &[("@PORT@", &port.to_string())],
        &conf.join("snmpd.conf"),
    );
    // No MIB files on Debian: numeric OIDs only, and no complaints about missing MIBs.
    std::fs::write(conf.join("snmp.conf"), "mibs :\n").expect("snmp.conf");
    let log = dir.join("snmpd.log");
    let mut peer = spawn(
        "snmpd",
        Command::new("snmpd")
            .args(["-f", "-Lo", "-p"])
            .arg(conf.join("snmpd.pid"))
            .env("SNMPCONFPATH", &conf)
            .env("SNMP_PERSISTENT_DIR", conf.join("persist")),
        &log,
    );
    let target = format!("127.0.0.1:{port}");
    wait_until(&mut peer, &log, || {
        Command::new("snmpget")
            .args([
                "-v2c",
                "-c",
                "vigie-test",
                "-t",
                "0.3",
                "-r",
                "0",
                &target,
                "1.3.6.1.2.1.1.3.0",
            ])
            .env("SNMPCONFPATH", &conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    peer
}

/// dcmqrscp answering C-ECHO for the AE title PACS on 127.0.0.1:`port`.
fn start_pacs(dir: &Path, port: u16) -> Peer {
    require("dcmqrscp");
    let db = dir.join("pacs-db");
    std::fs::create_dir_all(&db).expect("mkdir");
    let cfg = dir.join("dcmqrscp.cfg");
    template(
        "dcmqrscp.cfg.in",
        &[
            ("@PORT@", &port.to_string()),
            ("@DB@", &db.to_string_lossy()),
        ],
        &cfg,
    );
    let log = dir.join("dcmqrscp.log");
    // Forking mode: dcmqrscp 3.6.7 in single-process mode crashes after a rejection.
    let mut peer = spawn(
        "dcmqrscp",
        Command::new("dcmqrscp").arg("-c").arg(&cfg),
        &log,
    );
    wait_until(&mut peer, &log, || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    peer
}

/// HTTPS on 127.0.0.1:`port` with a self-signed certificate valid 30 days.
fn start_https(dir: &Path, port: u16) -> Peer {
    require("openssl");
    require("python3");
    let (cert, key) = (dir.join("nas.crt"), dir.join("nas.key"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .args([
            "-subj",
            "/CN=nas.cabinet.test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(
        made.success(),
        "openssl could not make the test certificate"
    );
    let log = dir.join("https.log");
    let mut peer = spawn(
        "https server",
        Command::new("python3")
            .arg(Path::new(PEERS).join("https_server.py"))
            .arg(port.to_string())
            .arg(&cert)
            .arg(&key),
        &log,
    );
    wait_until(&mut peer, &log, || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    peer
}

struct Ports {
    snmp: u16,
    dicom: u16,
    https: u16,
    closed: u16,
}

fn agent_config(ports: &Ports) -> String {
    let Ports {
        snmp,
        dicom,
        https,
        closed,
    } = ports;
    format!(
        r#"
[lan]
interval = "30s"
probe_timeout = "{PROBE_TIMEOUT_S}s"
discover_neighbours = true

[[lan.targets]]
name = "imprimante-accueil"
kind = "printer"
address = "127.0.0.1"
probes = [{{ type = "icmp" }}, {{ type = "snmp", port = {snmp}, version = "v2c", community = "vigie-test" }}]

[[lan.targets]]
name = "onduleur"
kind = "ups"
address = "127.0.0.1"
probes = [{{ type = "snmp", port = {snmp}, version = "v3", user = "vigiev3", auth = "sha", auth_password = "auth-pass-123", privacy = "aes", privacy_password = "priv-pass-123" }}]

[[lan.targets]]
name = "nas"
kind = "nas"
address = "127.0.0.1"
probes = [
  {{ type = "http", url = "https://127.0.0.1:{https}/" }},
  {{ type = "snmp", port = {snmp}, version = "v2c", community = "vigie-test" }},
]

[[lan.targets]]
name = "pacs"
kind = "pacs"
address = "127.0.0.1"
probes = [{{ type = "dicom", port = {dicom}, calling_ae = "VIGIE", called_ae = "PACS" }}]

[[lan.targets]]
name = "pacs-mauvais-aet"
kind = "imaging-modality"
address = "127.0.0.1"
probes = [{{ type = "dicom", port = {dicom}, called_ae = "WRONG" }}]

[[lan.targets]]
name = "switch"
kind = "switch"
address = "127.0.0.1"
probes = [{{ type = "tcp", port = {closed} }}]

[[lan.targets]]
name = "routeur"
kind = "router"
address = "127.0.0.1"
probes = [{{ type = "icmp" }}, {{ type = "tcp", port = {closed} }}]
"#
    )
}

/// `vigie-agent report --json` and its LAN payload; the round must not outlast its timeouts.
fn lan_round(config: &Path, wrapper: &[&str]) -> Value {
    let agent = bin("vigie-agent");
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(&agent);
            c
        }
        None => Command::new(&agent),
    };
    cmd.args(["report", "--json", "--config"]).arg(config);
    let started = Instant::now();
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60)).expect("report runs");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "report failed: {stderr}");
    // Probes run concurrently (`a_dead_device_does_not_stall_the_others` measures that on its
    // own clock); here only a gross stall fails, since the suite shares two cores with floods.
    assert!(
        took < Duration::from_secs(15 * PROBE_TIMEOUT_S),
        "a LAN round took {took:?}: a dead device stalled the others"
    );
    let reports: Value = serde_json::from_slice(&out.stdout).expect("JSON array");
    let lan: Vec<&Value> = reports
        .as_array()
        .expect("array")
        .iter()
        .filter(|r| r["kind"] == "lan")
        .collect();
    assert_eq!(lan.len(), 1, "one LAN payload per round: {reports:#}");
    lan[0]["lan"].clone()
}

fn device<'a>(lan: &'a Value, name: &str) -> &'a Value {
    lan["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("device {name} missing: {lan:#}"))
}

fn probe<'a>(device: &'a Value, kind: &str) -> &'a Value {
    device["probes"]
        .as_array()
        .expect("probes")
        .iter()
        .find(|p| p["probe"] == kind)
        .unwrap_or_else(|| panic!("probe {kind} missing: {device:#}"))
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).expect("config");
    path
}

#[test]
fn lan_devices_up_rejected_and_down_against_real_peers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let ports = Ports {
        snmp: free_udp_port(),
        dicom: free_port(),
        https: free_port(),
        closed: free_port(),
    };
    let snmpd = start_snmpd(dir, ports.snmp);
    let pacs = start_pacs(dir, ports.dicom);
    let https = start_https(dir, ports.https);
    let config = write_config(dir, &agent_config(&ports));

    let lan = lan_round(&config, &[]);
    let at = |name: &str| device(&lan, name);

    // Printer: SNMP v2c, supplies with the MIB's special values.
    let printer = at("imprimante-accueil");
    assert_eq!(printer["state"], "up", "{printer:#}");
    assert_eq!(printer["sys_descr"], "Vigie test peer");
    assert!(printer["uptime_seconds"].is_u64());
    assert!(probe(printer, "icmp")["latency_ms"].is_f64());
    let supplies: Vec<(&str, Value, i64)> = printer["supplies"]
        .as_array()
        .expect("supplies")
        .iter()
        .map(|s| {
            let level = s["level"].as_i64().expect("level");
            (
                s["description"].as_str().expect("description"),
                s["percent"].clone(),
                level,
            )
        })
        .collect();
    assert_eq!(
        supplies,
        [
            ("Black Toner", Value::from(25.0), 5000),
            ("Cyan Toner", Value::Null, -3),
            ("Waste Toner Box", Value::Null, -2),
        ]
    );

    // UPS over SNMPv3 authPriv: on battery, low, 80 %, 25 minutes left.
    let ups = at("onduleur");
    assert_eq!(ups["state"], "up", "{ups:#}");
    assert_eq!(probe(ups, "snmp")["details"]["version"], "v3");
    assert_eq!(ups["ups"]["on_battery"], true);
    assert_eq!(ups["ups"]["battery_status"], "low");
    assert_eq!(ups["ups"]["charge_percent"], 80.0);
    assert_eq!(ups["ups"]["minutes_remaining"], 25);

    // NAS: HTTPS with a self-signed certificate (answers, chain not verified), and storage.
    let nas = at("nas");
    assert_eq!(nas["state"], "up", "{nas:#}");
    let http = &probe(nas, "http")["details"];
    assert_eq!(http["http_status"], "200");
    assert_eq!(http["tls_chain_verified"], "false");
    assert!(
        http["tls_subject"]
            .as_str()
            .is_some_and(|s| s.contains("nas.cabinet.test"))
    );
    let expires = http["tls_expires_at"].as_str().expect("expiry");
    let in_days = |n: u32| {
        let out = Command::new("date")
            .args(["-u", "-d", &format!("+{n} days"), "+%Y-%m-%d"])
            .output()
            .expect("date");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert!(
        expires.starts_with(&in_days(30)) || expires.starts_with(&in_days(29)),
        "certificate made for 30 days expires at {expires}"
    );
    let storage = nas["storage"].as_array().expect("storage");
    let root = storage
        .iter()
        .find(|s| s["description"] == "/")
        .expect("/ in hrStorage");
    assert!(
        root["total_bytes"].as_u64() > Some(0)
            && root["used_bytes"].as_u64() <= root["total_bytes"].as_u64()
    );
    assert!(
        storage
            .iter()
            .all(|s| s["description"] != "Physical memory"),
        "memory is not storage"
    );

    // PACS: C-ECHO accepted; a wrong called AE title is rejected, and says why.
    let pacs_ok = at("pacs");
    assert_eq!(pacs_ok["state"], "up", "{pacs_ok:#}");
    let echo = probe(pacs_ok, "dicom");
    assert_eq!(echo["details"]["association"], "accepted");
    assert_eq!(echo["details"]["echo_status"], "0x0000");
    assert!(echo["latency_ms"].is_f64());
    let wrong = at("pacs-mauvais-aet");
    assert_eq!(wrong["state"], "down", "{wrong:#}");
    let rejected = probe(wrong, "dicom");
    assert_eq!(rejected["details"]["association"], "rejected");
    let error = rejected["error"].as_str().expect("error");
    assert!(
        error.contains("permanent") && error.contains("called AE title not recognized"),
        "{error}"
    );

    // Closed port: down; ICMP answers but the port is closed: degraded.
    let switch = at("switch");
    assert_eq!(switch["state"], "down", "{switch:#}");
    assert_eq!(switch["error"], "tcp: connection refused");
    let router = at("routeur");
    assert_eq!(router["state"], "degraded", "{router:#}");

    assert!(lan["discovered"].is_array(), "{lan:#}");

    // The peers stop: the very next round reads them down, within its timeouts.
    snmpd.stop();
    pacs.stop();
    https.stop();
    let lan = lan_round(&config, &[]);
    for name in ["onduleur", "nas", "pacs"] {
        let d = device(&lan, name);
        assert_eq!(d["state"], "down", "{d:#}");
        assert!(!d["error"].as_str().unwrap_or_default().is_empty(), "{d:#}");
    }
    // The printer's ICMP still answers (it is 127.0.0.1): degraded, SNMP says why.
    let printer = device(&lan, "imprimante-accueil");
    assert_eq!(printer["state"], "degraded", "{printer:#}");
    assert!(
        printer["supplies"].is_null(),
        "no stale supplies: {printer:#}"
    );
}

#[test]
fn lan_icmp_without_privileges_is_a_clear_error() {
    require("setpriv");
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        tmp.path(),
        "[[lan.targets]]\nname = \"routeur\"\nkind = \"router\"\naddress = \"127.0.0.1\"\nprobes = [{ type = \"icmp\" }]\n",
    );
    // nobody may read the config; tempdirs are private.
    let open = |p: &Path, mode| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    open(tmp.path(), 0o755);
    open(&config, 0o644);
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap_or_default();
    let lan = lan_round(
        &config,
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-net_raw",
        ],
    );
    let router = device(&lan, "routeur");
    let icmp = probe(router, "icmp");
    let allowed = range
        .split_whitespace()
        .map(|n| n.parse::<u64>().unwrap_or(0))
        .collect::<Vec<_>>();
    if allowed.len() == 2 && allowed[0] <= 65534 && 65534 <= allowed[1] {
        // This machine lets every group ping: the datagram socket works without privileges.
        assert_eq!(icmp["ok"], true, "{router:#}");
    } else {
        assert_eq!(router["state"], "down", "{router:#}");
        let error = icmp["error"].as_str().expect("error");
        assert!(
            error.contains("ping_group_range") && error.contains("CAP_NET_RAW"),
            "{error}"
        );
    }
}
