//! Real backups through `vigie-agent exec`: Debian's restic, borg and rsync run into
//! throwaway repositories under a temp dir, good runs and the ways they fail (a source file
//! `nobody` cannot read, a missing source, a wrong password, a missing repository, a target
//! that refuses writes, a command that does not exist, a timeout, a damaged repository). Each
//! result goes through the spool of a running `vigie-agent run` to a real collector, and must
//! reach the CMP1 clinic as the right alert (or none), its cause named in French, with no
//! patient file name anywhere.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vigie_tests::alerts::alerts;
use vigie_tests::{Agent, Collector, bin, run_with_timeout};

use vigie_tests::RunningAgent;

/// The unreadable file's name: it must never leave the machine.
const PATIENT_FILE: &str = "Dupont Jean - compte rendu.pdf";

/// (job, exit code `exec` must return, rule expected or "", words the alert must contain)
type Expectation = (&'static str, i32, &'static str, &'static str);

struct Sandbox {
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_owned();
        // `nobody` must reach into it.
        chmod(&dir, "755");
        Sandbox { dir, _tmp: tmp }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn sh(args: &[&str]) {
    let out = run_with_timeout(
        Command::new(args[0])
            .args(&args[1..])
            .env("RESTIC_PASSWORD", "secret")
            .env("BORG_PASSPHRASE", "secret")
            .env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes")
            .env("BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes"),
        Duration::from_secs(120),
    )
    .expect("setup command");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chmod(path: &Path, mode: &str) {
    sh(&["chmod", mode, &path.to_string_lossy()]);
}

/// The command as `nobody`, whatever runs the tests (CI is root).
fn as_nobody(home: &Path, command: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = [
        "setpriv",
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "env",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    all.push(format!("HOME={}", home.display()));
    all.extend(command.iter().map(|s| (*s).to_owned()));
    all
}

/// `vigie-agent exec` as a scheduled task would run it; returns its exit code.
fn exec(
    agent: &Agent,
    config: &Path,
    job: &str,
    source: &str,
    extra: &[&str],
    command: &[String],
) -> i32 {
    let mut cmd = Command::new(bin("vigie-agent"));
    cmd.arg("exec")
        .arg("--state-dir")
        .arg(&agent.state_dir)
        .arg("--config")
        .arg(config)
        .args([
            "--job",
            job,
            "--source",
            source,
            "--target",
            "dépôt de test",
        ])
        .args(extra)
        .arg("--")
        .args(command)
        .env("RESTIC_PASSWORD", "secret")
        .env("BORG_PASSPHRASE", "secret")
        .env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes")
        .env("BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes")
        .env("VIGIE_LOG", "warn");
    let out = run_with_timeout(&mut cmd, Duration::from_secs(120)).expect("vigie-agent exec");
    out.status.code().unwrap_or(-1)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn config(jobs: &[Expectation]) -> String {
    let mut text = String::from(
        "[collection]\nsnapshot_interval = \"1h\"\n[sender]\nbackoff_initial = \"200ms\"\nbackoff_max = \"1s\"\n\
         [updates]\nenabled = false\n[antivirus]\nenabled = false\n[software]\nenabled = false\n\
         [backup]\nscan_interval = \"1s\"\n",
    );
    for (job, ..) in jobs {
        text.push_str(&format!(
            "[[backup.jobs]]\nname = \"{job}\"\nevery = \"24h\"\n"
        ));
        if job.ends_with("-ok") {
            text.push_str("check_every = \"30d\"\n");
        }
    }
    text
}

#[test]
fn real_backups_reach_a_cmp1_clinic_as_the_right_alerts() {
    let s = Sandbox::new();
    let src = s.path("cabinet");
    std::fs::create_dir_all(src.join("Patients")).expect("mkdir");
    std::fs::write(src.join("agenda.db"), b"rendez-vous").expect("write");
    std::fs::write(src.join("Patients").join(PATIENT_FILE), b"confidentiel").expect("write");
    chmod(&src, "755");
    chmod(&src.join("Patients"), "755");
    chmod(&src.join("agenda.db"), "644");
    // Only root may read the patient file: `nobody` cannot.
    chmod(&src.join("Patients").join(PATIENT_FILE), "600");
    let src_s = src.to_string_lossy().into_owned();
    let missing = s.path("absent").to_string_lossy().into_owned();
    let home = s.path("home");
    std::fs::create_dir_all(&home).expect("mkdir");
    sh(&["chown", "nobody", &home.to_string_lossy()]);

    // Repositories: root's, and one `nobody` owns (so only the patient file is unreadable).
    let restic = s.path("restic").to_string_lossy().into_owned();
    sh(&["restic", "init", "-r", &restic]);
    let restic_nobody = home.join("restic").to_string_lossy().into_owned();
    sh(&as_nobody(
        &home,
        &[
            "env",
            "RESTIC_PASSWORD=secret",
            "restic",
            "init",
            "-r",
            &restic_nobody,
        ],
    )
    .iter()
    .map(String::as_str)
    .collect::<Vec<_>>());
    let borg = s.path("borg").to_string_lossy().into_owned();
    sh(&["borg", "init", "-e", "repokey", &borg]);
    let borg_damaged = s.path("borg-damaged").to_string_lossy().into_owned();
    sh(&["borg", "init", "-e", "repokey", &borg_damaged]);
    sh(&["borg", "create", &format!("{borg_damaged}::one"), &src_s]);
    damage_largest_segment(&s.path("borg-damaged"));
    let rsync_target = home.join("copie");
    std::fs::create_dir_all(&rsync_target).expect("mkdir");
    sh(&["chown", "nobody", &rsync_target.to_string_lossy()]);
    // Root's folder: `nobody` cannot write into it.
    let read_only = s.path("lecture-seule");
    std::fs::create_dir_all(&read_only).expect("mkdir");
    chmod(&read_only, "755");

    let collector = Collector::start();
    let clinic = collector.add_clinic("Cabinet du Tampon", "cmp1");
    let (agent, _) = Agent::enrolled(&collector, &clinic, "server");
    let expectations: Vec<Expectation> = vec![
        ("restic-ok", 0, "", ""),
        (
            "restic-unreadable",
            3,
            "backup_warning",
            "1 fichier illisible",
        ),
        (
            "restic-missing-source",
            1,
            "backup_failed",
            "dossier source introuvable",
        ),
        (
            "restic-wrong-password",
            1,
            "backup_failed",
            "mot de passe du dépôt refusé",
        ),
        (
            "restic-missing-repo",
            1,
            "backup_failed",
            "dépôt de sauvegarde introuvable",
        ),
        ("borg-ok", 0, "", ""),
        (
            "borg-missing-source",
            1,
            "backup_warning",
            "dossier source introuvable",
        ),
        (
            "borg-wrong-passphrase",
            2,
            "backup_failed",
            "mot de passe du dépôt refusé",
        ),
        (
            "borg-read-only",
            2,
            "backup_failed",
            "destination non accessible en écriture",
        ),
        ("rsync-ok", 0, "", ""),
        (
            "rsync-unreadable",
            23,
            "backup_warning",
            "1 fichier illisible",
        ),
        (
            "rsync-missing-source",
            23,
            "backup_failed",
            "dossier source introuvable",
        ),
        (
            "rsync-read-only",
            11,
            "backup_failed",
            "destination non accessible en écriture",
        ),
        (
            "not-found",
            127,
            "backup_failed",
            "commande de sauvegarde introuvable",
        ),
        (
            "timeout",
            124,
            "backup_failed",
            "délai dépassé, sauvegarde arrêtée",
        ),
        (
            "borg-damaged",
            1,
            "backup_check_failed",
            "dépôt de sauvegarde endommagé",
        ),
    ];
    let config_path = agent.state_dir.with_extension("toml");
    std::fs::write(&config_path, config(&expectations)).expect("config");
    let mut running = RunningAgent::start(&agent, &config_path);

    let restic_repo = |repo: &str| strings(&["restic", "-r", repo, "backup", "--json"]);
    let mut codes = Vec::new();
    let mut run = |job: &str, source: &str, extra: &[&str], command: Vec<String>| {
        codes.push((
            job.to_owned(),
            exec(&agent, &config_path, job, source, extra, &command),
        ));
    };
    let mut cmd = restic_repo(&restic);
    cmd.push(src_s.clone());
    run("restic-ok", "restic", &[], cmd);
    run(
        "restic-ok",
        "restic",
        &["--kind", "check"],
        strings(&["restic", "-r", &restic, "check"]),
    );
    run(
        "restic-unreadable",
        "restic",
        &[],
        as_nobody(
            &home,
            &[
                "env",
                "RESTIC_PASSWORD=secret",
                "restic",
                "-r",
                &restic_nobody,
                "backup",
                &src_s,
            ],
        ),
    );
    let mut cmd = restic_repo(&restic);
    cmd.push(missing.clone());
    run("restic-missing-source", "restic", &[], cmd);
    run(
        "restic-wrong-password",
        "restic",
        &[],
        strings(&[
            "env",
            "RESTIC_PASSWORD=wrong",
            "restic",
            "-r",
            &restic,
            "backup",
            &src_s,
        ]),
    );
    let nowhere = s.path("no-repo").to_string_lossy().into_owned();
    run(
        "restic-missing-repo",
        "restic",
        &[],
        strings(&["restic", "-r", &nowhere, "backup", &src_s]),
    );

    run(
        "borg-ok",
        "borg",
        &[],
        strings(&["borg", "create", "--json", &format!("{borg}::ok"), &src_s]),
    );
    run(
        "borg-ok",
        "borg",
        &["--kind", "check"],
        strings(&["borg", "check", &borg]),
    );
    run(
        "borg-missing-source",
        "borg",
        &[],
        strings(&[
            "borg",
            "create",
            &format!("{borg}::partial"),
            &src_s,
            &missing,
        ]),
    );
    run(
        "borg-wrong-passphrase",
        "borg",
        &[],
        strings(&[
            "env",
            "BORG_PASSPHRASE=wrong",
            "borg",
            "create",
            &format!("{borg}::bad"),
            &src_s,
        ]),
    );
    run(
        "borg-read-only",
        "borg",
        &[],
        as_nobody(
            &home,
            &[
                "env",
                "BORG_PASSPHRASE=secret",
                "borg",
                "create",
                &format!("{borg}::ro"),
                &src_s,
            ],
        ),
    );
    run(
        "borg-damaged",
        "borg",
        &["--kind", "check"],
        strings(&["borg", "check", &borg_damaged]),
    );

    let copy = format!("{}/", rsync_target.display());
    run(
        "rsync-ok",
        "rsync",
        &[],
        strings(&[
            "rsync",
            "-a",
            "--stats",
            &format!("{src_s}/agenda.db"),
            &copy,
        ]),
    );
    run(
        "rsync-unreadable",
        "rsync",
        &[],
        as_nobody(
            &home,
            &["rsync", "-a", "--stats", &format!("{src_s}/"), &copy],
        ),
    );
    run(
        "rsync-missing-source",
        "rsync",
        &[],
        strings(&["rsync", "-a", "--stats", &format!("{missing}/"), &copy]),
    );
    run(
        "rsync-read-only",
        "rsync",
        &[],
        as_nobody(
            &home,
            &[
                "rsync",
                "-a",
                "--stats",
                &format!("{src_s}/"),
                &format!("{}/sub/", read_only.display()),
            ],
        ),
    );
    run(
        "not-found",
        "command",
        &[],
        strings(&["/usr/local/bin/sauvegarde-inexistante.sh"]),
    );
    let started = Instant::now();
    run(
        "timeout",
        "command",
        &["--timeout", "1s"],
        strings(&["sh", "-c", "sleep 60 & sleep 60"]),
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the timeout stopped the command"
    );

    // The exit code is the command's (127 not found, 124 timeout), as the scheduler expects.
    for (job, want, ..) in &expectations {
        let got: Vec<i32> = codes
            .iter()
            .filter(|(j, _)| j == job)
            .map(|(_, c)| *c)
            .collect();
        assert_eq!(got.last(), Some(want), "exit code of {job}: {codes:?}");
    }

    // Every expected alert, and no other backup alert.
    let wanted: Vec<&Expectation> = expectations.iter().filter(|e| !e.2.is_empty()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = loop {
        let got: Vec<serde_json::Value> = alerts(&collector, &[])
            .into_iter()
            .filter(|a| a["clinic_id"] == clinic.as_str())
            .collect();
        let all_there = wanted.iter().all(|(job, _, rule, _)| {
            got.iter()
                .any(|a| a["subject"] == *job && a["rule"] == *rule)
        });
        if all_there {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "alerts missing after 60 s: {got:#?}\nagent log:\n{}",
            running.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    for (job, _, rule, words) in &expectations {
        let mine: Vec<&serde_json::Value> = got.iter().filter(|a| a["subject"] == *job).collect();
        if rule.is_empty() {
            assert!(mine.is_empty(), "{job} raised {mine:#?}");
            continue;
        }
        assert_eq!(mine.len(), 1, "{job}: {mine:#?}");
        let text = mine[0]["summary"].as_str().unwrap_or_default();
        assert!(
            text.contains(words),
            "{job}: {text:?} should name {words:?}"
        );
    }
    let all = serde_json::to_string(&got).expect("json");
    assert!(
        !all.contains("Dupont") && !all.contains("Patients"),
        "a patient file name left the machine: {all}"
    );
    let severity = |job: &str| {
        got.iter()
            .find(|a| a["subject"] == job)
            .map(|a| a["severity"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(severity("borg-damaged").as_deref(), Some("critical"));
    running.stop();

    // Nothing left behind: every result was taken from the spool.
    let spool = agent.state_dir.join("spool");
    let left: Vec<_> = std::fs::read_dir(&spool)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// Flips a byte in the middle of the repository's largest segment file.
fn damage_largest_segment(repo: &Path) {
    let mut segments: Vec<(u64, PathBuf)> = Vec::new();
    let mut dirs = vec![repo.join("data")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("segments").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(meta) = entry.metadata() {
                segments.push((meta.len(), path));
            }
        }
    }
    segments.sort();
    let (_, largest) = segments.last().expect("a segment");
    let mut bytes = std::fs::read(largest).expect("segment");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(largest, bytes).expect("damage");
}
