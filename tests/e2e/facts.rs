//! `report --json` on this Debian machine: the OS update, antivirus and software facts come
//! from the real sources (apt, ClamAV's files, dpkg), or a failure fact names the source.

use vigie_tests::Agent;

const CONFIG: &str = r#"
[[software.watch]]
name = "Shell"
pattern = "bash"
[[software.watch]]
name = "Weda"
pattern = "weda*"
"#;

#[test]
fn report_json_has_update_antivirus_and_software_facts() {
    let agent = Agent::new();
    let config = agent.state_dir.with_extension("facts.toml");
    std::fs::write(&config, CONFIG).expect("config");
    let run = agent
        .cmd(&["report", "--json", "--config", &config.to_string_lossy()])
        .ok();
    let facts: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON array");
    let facts = facts.as_array().expect("array");
    let of_kind = |kind: &str| facts.iter().find(|f| f["kind"] == kind);
    let failed = |check: &str| {
        facts
            .iter()
            .any(|f| f["kind"] == "check_failure" && f["check_failure"]["check"] == check)
    };

    // Debian has apt: a status from it, or a failure that names it.
    match of_kind("os_updates") {
        Some(updates) => {
            let updates = &updates["os_updates"];
            assert_eq!(updates["manager"], "apt", "{updates}");
            let pending = updates["pending_count"].as_u64().expect("count");
            let security = updates["security_count"].as_u64().expect("count");
            assert!(security <= pending, "{updates}");
            assert!(updates["reboot_required"].is_boolean(), "{updates}");
        }
        None => assert!(failed("os_updates.apt"), "{}", run.stdout),
    }

    // No ClamAV here unless installed: "none found" is a fact of its own.
    let antivirus = &of_kind("antivirus").expect("antivirus fact")["antivirus"];
    match antivirus["products"].as_array().expect("products").first() {
        Some(product) => assert_eq!(product["source"], "clamav", "{antivirus}"),
        None => assert_eq!(antivirus["none_found"], true, "{antivirus}"),
    }

    // bash is always installed, Weda never on a build machine.
    let software = &of_kind("software").expect("software fact")["software"];
    let item = &software["items"][0];
    assert_eq!(item["watch_name"], "Shell", "{software}");
    assert_eq!(item["name"], "bash", "{software}");
    assert!(
        !item["version"].as_str().unwrap_or("").is_empty(),
        "{software}"
    );
    assert_eq!(
        software["not_found"],
        serde_json::json!(["Weda"]),
        "{software}"
    );
}
