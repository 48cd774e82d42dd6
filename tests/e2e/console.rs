//! The technician console in a real browser (Debian's `chromium`, driven through
//! `chromedriver` by fantoccini) against a real collector fed by a real agent, and its JSON
//! API over HTTPS checked against the collector's CA. Each page is screenshotted into the
//! artifacts folder (`VIGIE_ARTIFACTS`, default `<target>/artifacts`) and passes the
//! accessibility check in `console/a11y.js` (labels, headings, contrast).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use vigie_tests::{Agent, Collector, free_port};

const A11Y: &str = include_str!("console/a11y.js");
const ADMIN: (&str, &str) = ("lea.admin", "mot-de-passe-admin-solide");
const TECHNICIAN: (&str, &str) = ("max", "mot-de-passe-technicien");
/// A page must stay usable over a slow clinic link.
const MAX_PAGE_BYTES: usize = 100 * 1024;

fn artifacts() -> PathBuf {
    let dir = std::env::var_os("VIGIE_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // target/<profile>/deps/e2e-HASH → target/artifacts
            let exe = std::env::current_exe().expect("test executable");
            exe.ancestors()
                .nth(3)
                .expect("target directory")
                .join("artifacts")
        })
        .join("console");
    std::fs::create_dir_all(&dir).expect("artifacts folder");
    dir
}

/// `technician add NAME --role ROLE`, the password on stdin (`lines` lines).
fn add_technician(
    collector: &Collector,
    name: &str,
    role: &str,
    stdin: &str,
) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new(vigie_tests::bin("vigie-collector"))
        .args(["technician", "add", name, "--role", role, "--data-dir"])
        .arg(&collector.data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("technician add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write password");
    child.wait_with_output().expect("technician add")
}

/// A collector with a CMP3 clinic whose agent reported a failed backup (through the real
/// agent's `backup-result` and `run --once`), two accounts, and a fast refresh and lockout.
struct Setup {
    collector: Collector,
    clinic: String,
    agent_id: String,
    alert_id: u64,
    _agent: Agent,
    _tmp: tempfile::TempDir,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut collector = Collector::init_in(&tmp.path().join("collector"));
    collector.set_config("refresh_seconds", "1");
    collector.set_config("max_failed_logins", "3");
    collector.serve();
    let clinic = collector.add_clinic("Centre d'imagerie de Saint-Pierre", "cmp3");
    let (agent, agent_id) = Agent::enrolled(&collector, &clinic, "server");
    agent
        .cmd(&[
            "backup-result",
            "--job",
            "sauvegarde-nas",
            "--status",
            "failed",
            "--message",
            "NAS injoignable",
        ])
        .ok();
    agent.run_once();
    let alerts = vigie_tests::alerts::wait_for_alerts(&collector, |all| {
        all.iter()
            .any(|a| a["clinic_id"] == clinic && a["family"] == "backup")
    });
    let alert_id = alerts
        .iter()
        .find(|a| a["clinic_id"] == clinic && a["family"] == "backup")
        .and_then(|a| a["id"].as_u64())
        .expect("backup alert id");
    let out = add_technician(&collector, ADMIN.0, "admin", &format!("{}\n", ADMIN.1));
    assert!(out.status.success(), "{out:?}");
    // Two identical lines are accepted too.
    let out = add_technician(
        &collector,
        TECHNICIAN.0,
        "technician",
        &format!("{0}\n{0}\n", TECHNICIAN.1),
    );
    assert!(out.status.success(), "{out:?}");
    Setup {
        collector,
        clinic,
        agent_id,
        alert_id,
        _agent: agent,
        _tmp: tmp,
    }
}

/// chromedriver on a free loopback port, and a headless chromium session with a fresh profile.
struct Browser {
    driver: Child,
    client: Client,
    base: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn browser(console: SocketAddr) -> Browser {
    let port = free_port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (Debian package chromium-driver)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let profile = tempfile::tempdir().expect("profile");
    let caps = json!({
        "browserName": "chrome",
        // The console's certificate comes from the collector's own CA, which this fresh
        // profile does not know; the API test below checks the chain against ca.crt.
        "acceptInsecureCerts": true,
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--window-size=1280,1200",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("WebDriver session with chromium");
    Browser {
        driver,
        client,
        base: format!("https://{console}"),
        _profile: profile,
    }
}

impl Browser {
    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("goto");
    }

    async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("url")
            .path()
            .to_owned()
    }

    async fn source(&self) -> String {
        self.client.source().await.expect("source")
    }

    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.expect("script")
    }

    /// A POST from inside the page (same origin, the session cookie goes along): its status.
    async fn post(&self, path: &str, form: Value) -> u64 {
        let script = "const done = arguments[arguments.length - 1];\
            fetch(arguments[0], {method: 'POST', body: new URLSearchParams(arguments[1]),\
              credentials: 'same-origin', redirect: 'manual'})\
            .then(r => done(r.status), e => done(String(e)));";
        let status = self
            .client
            .execute_async(script, vec![json!(path), form])
            .await
            .expect("fetch");
        status
            .as_u64()
            .unwrap_or_else(|| panic!("fetch failed: {status}"))
    }

    /// The session's CSRF token, as the page's logout form carries it.
    async fn csrf(&self) -> String {
        self.client
            .find(Locator::Css("form.who input[name=csrf]"))
            .await
            .expect("logout form")
            .attr("value")
            .await
            .expect("attr")
            .expect("csrf value")
    }

    /// Screenshot into the artifacts, the accessibility check, and the page's weight.
    async fn check_page(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let file = artifacts().join(format!("{name}.png"));
        std::fs::write(&file, png).expect("write screenshot");
        let problems = self.js(A11Y, vec![]).await;
        assert_eq!(
            problems,
            json!([]),
            "accessibility of {name} ({})",
            self.path().await
        );
        let bytes = self.source().await.len();
        assert!(bytes < MAX_PAGE_BYTES, "{name} is {bytes} bytes");
        println!(
            "console page {name}: {bytes} bytes, screenshot {}",
            file.display()
        );
    }

    /// Clicks what `css` finds and waits for the next document to be loaded.
    async fn click_and_load(&self, css: &str) {
        self.js("window.vigieOldPage = true; return true", vec![])
            .await;
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .expect("click");
        self.wait_for(
            "the next page",
            "return window.vigieOldPage === undefined && document.readyState === 'complete'",
        )
        .await;
    }

    async fn login(&self, name: &str, password: &str) {
        self.goto("/connexion").await;
        self.login_here(name, password).await;
    }

    /// Fills and sends the login form of the current page.
    async fn login_here(&self, name: &str, password: &str) {
        self.client
            .find(Locator::Id("name"))
            .await
            .expect("name field")
            .send_keys(name)
            .await
            .expect("type name");
        self.client
            .find(Locator::Id("password"))
            .await
            .expect("password field")
            .send_keys(password)
            .await
            .expect("type password");
        self.click_and_load("form.login button[type=submit]").await;
    }

    async fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let value = self.js(script, vec![]).await;
            if value != Value::Null && value != json!(false) {
                return value;
            }
            assert!(Instant::now() < deadline, "{what} never happened");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn alert(collector: &Collector, id: u64) -> Value {
    vigie_tests::alerts::alerts(collector, &["--all"])
        .into_iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("alert {id} listed"))
}

fn tier_of(collector: &Collector, clinic: &str) -> String {
    let run = collector.admin(&["clinic", "list", "--json"]).ok();
    let clinics: Vec<Value> = serde_json::from_str(&run.stdout).expect("clinic list --json");
    clinics
        .iter()
        .find(|c| c["id"] == clinic)
        .and_then(|c| c["tier"].as_str())
        .expect("clinic listed")
        .to_owned()
}

#[test]
fn a_technician_works_in_the_console() {
    let s = setup();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let b = browser(s.collector.console_addr).await;

        // No session: the login page, remembering where one was going.
        b.goto("/alertes").await;
        assert_eq!(b.path().await, "/connexion");
        b.check_page("connexion").await;

        // A technician logs in and lands where they were going.
        b.login_here(TECHNICIAN.0, TECHNICIAN.1).await;
        assert_eq!(b.path().await, "/alertes");
        b.goto("/").await;
        assert!(b.source().await.contains("Centre d&#39;imagerie de Saint-Pierre")
            || b.source().await.contains("Centre d'imagerie de Saint-Pierre"));
        b.check_page("vue-ensemble").await;

        // The CMP3 clinic shows its failing backup: the last result, its message, and a red
        // day on the 30-day strip.
        b.goto(&format!("/cabinets/{}", s.clinic)).await;
        let page = b.source().await;
        assert!(page.contains("sauvegarde-nas"), "{page}");
        assert!(page.contains("NAS injoignable"), "{page}");
        let failed_days = b
            .js("return document.querySelectorAll('svg.strip rect.day-failed').length", vec![])
            .await;
        assert_eq!(failed_days, json!(1), "one failed day on the strip");
        b.check_page("cabinet").await;

        // The clinic's monthly report downloads from its page as a PDF; a bad month is refused.
        let download = "const done = arguments[arguments.length - 1];\
            fetch(arguments[0], {credentials: 'same-origin'})\
            .then(async r => { const b = new Uint8Array(await r.arrayBuffer());\
              done([r.status, r.headers.get('content-type'),\
                String.fromCharCode(...b.slice(0, 5)), b.length]); }, e => done(String(e)));";
        let month = b
            .js("return document.getElementById('report-month').value", vec![])
            .await;
        let pdf = b
            .client
            .execute_async(
                download,
                vec![json!(format!("/cabinets/{}/rapport?mois={}", s.clinic, month.as_str().expect("month")))],
            )
            .await
            .expect("fetch the report");
        assert_eq!(pdf[0], json!(200), "{pdf}");
        assert_eq!(pdf[1], json!("application/pdf"), "{pdf}");
        assert_eq!(pdf[2], json!("%PDF-"), "{pdf}");
        assert!(pdf[3].as_u64().unwrap_or(0) > 10_000, "{pdf}");
        let refused = b
            .client
            .execute_async(download, vec![json!(format!("/cabinets/{}/rapport?mois=novembre", s.clinic))])
            .await
            .expect("fetch a bad month");
        assert_eq!(refused[0], json!(400), "{refused}");

        // A technician (not an admin) cannot change a tier: no form, and a forged POST with
        // the right CSRF token is refused.
        assert!(b.client.find(Locator::Css("form.tier")).await.is_err());
        let csrf = b.csrf().await;
        let status = b
            .post(
                &format!("/cabinets/{}/contrat", s.clinic),
                json!({"csrf": csrf, "contrat": "cmp0"}),
            )
            .await;
        assert_eq!(status, 403);
        assert_eq!(tier_of(&s.collector, &s.clinic), "cmp3");

        // A POST without the CSRF token is refused and changes nothing.
        let status = b
            .post(
                &format!("/alertes/{}/acquitter", s.alert_id),
                json!({"note": "sans jeton"}),
            )
            .await;
        assert_eq!(status, 403);
        let status = b
            .post(
                &format!("/alertes/{}/acquitter", s.alert_id),
                json!({"note": "mauvais jeton", "csrf": "forged"}),
            )
            .await;
        assert_eq!(status, 403);
        assert_eq!(alert(&s.collector, s.alert_id)["state"], "open");

        // Acknowledge with a note: the row changes without the page being reloaded (a marker
        // set on the window survives).
        b.goto("/alertes").await;
        b.check_page("alertes").await;
        b.js("window.vigieMarker = 'same page'; return true", vec![])
            .await;
        b.client
            .find(Locator::Id(&format!("note-{}", s.alert_id)))
            .await
            .expect("note field")
            .send_keys("NAS redémarré, je surveille")
            .await
            .expect("type note");
        b.client
            .find(Locator::Css(&format!("#alert-{} button[value=ack]", s.alert_id)))
            .await
            .expect("acknowledge button")
            .click()
            .await
            .expect("click");
        b.wait_for(
            "the row shows the alert acknowledged",
            &format!(
                "const row = document.getElementById('alert-{}');\
                 return row && row.dataset.state === 'acknowledged' && row.textContent.includes('NAS redémarré');",
                s.alert_id
            ),
        )
        .await;
        assert_eq!(b.js("return window.vigieMarker", vec![]).await, json!("same page"));
        let acknowledged = alert(&s.collector, s.alert_id);
        assert_eq!(acknowledged["state"], "acknowledged");
        let last = acknowledged["history"]
            .as_array()
            .and_then(|h| h.last())
            .cloned()
            .expect("history");
        assert_eq!(last["by"], TECHNICIAN.0);
        assert_eq!(last["note"], "NAS redémarré, je surveille");

        // A change made elsewhere (the admin CLI resolves it) appears by itself too.
        s.collector
            .admin(&["alerts", "resolve", &s.alert_id.to_string(), "--note", "fait"])
            .ok();
        b.wait_for(
            "the resolved alert leaves the list",
            &format!("return document.getElementById('alert-{}') === null", s.alert_id),
        )
        .await;
        assert_eq!(b.js("return window.vigieMarker", vec![]).await, json!("same page"));

        // A maintenance window on the clinic, ending two hours from now (La Réunion time).
        b.js(
            "const end = new Date(Date.now() + 6 * 3600 * 1000).toISOString().slice(0, 16);\
             document.getElementById('window-end').value = end; return end;",
            vec![],
        )
        .await;
        b.client
            .find(Locator::Css(&format!("#window-clinic option[value='{}']", s.clinic)))
            .await
            .expect("clinic option")
            .click()
            .await
            .expect("select clinic");
        b.client
            .find(Locator::Id("window-reason"))
            .await
            .expect("reason field")
            .send_keys("remplacement du NAS")
            .await
            .expect("type reason");
        b.click_and_load("form.window button").await;
        assert!(b.source().await.contains("remplacement du NAS"));
        let windows = s
            .collector
            .admin(&["maintenance", "list", "--json"])
            .ok()
            .stdout;
        assert!(windows.contains("remplacement du NAS"), "{windows}");
        assert!(windows.contains(TECHNICIAN.0), "{windows}");

        // The other pages, and the audit log saying who did what from where.
        b.goto(&format!("/postes/{}", s.agent_id)).await;
        assert!(b.source().await.contains("config-version"));
        b.check_page("poste").await;
        b.goto("/tickets").await;
        b.check_page("tickets").await;
        b.goto("/journal").await;
        let journal = b.source().await;
        assert!(journal.contains("alerte acquittée"), "{journal}");
        assert!(journal.contains("fenêtre de maintenance ouverte"), "{journal}");
        assert!(journal.contains("action refusée"), "{journal}");
        assert!(journal.contains("127.0.0.1"), "{journal}");
        b.check_page("journal").await;

        // Logout ends the session.
        b.click_and_load("form.who button").await;
        assert_eq!(b.path().await, "/connexion");
        b.goto("/").await;
        assert_eq!(b.path().await, "/connexion");

        // Repeated bad passwords lock the account, even against the right one afterwards.
        for _ in 0..3 {
            b.login(TECHNICIAN.0, "pas le bon mot de passe").await;
        }
        let page = b.source().await;
        assert!(page.contains("Compte verrouillé"), "{page}");
        b.login(TECHNICIAN.0, TECHNICIAN.1).await;
        assert_eq!(b.path().await, "/connexion");
        assert!(b.source().await.contains("Compte verrouillé"));
        let list = s
            .collector
            .admin(&["technician", "list", "--json"])
            .ok()
            .stdout;
        let accounts: Vec<Value> = serde_json::from_str(&list).expect("technician list --json");
        let max = accounts
            .iter()
            .find(|a| a["name"] == TECHNICIAN.0)
            .expect("listed");
        assert!(max["locked_until"].is_string(), "{max}");

        // An admin may change the tier from the clinic page.
        b.login(ADMIN.0, ADMIN.1).await;
        b.goto(&format!("/cabinets/{}", s.clinic)).await;
        b.client
            .find(Locator::Css("#tier option[value=cmp1]"))
            .await
            .expect("tier option")
            .click()
            .await
            .expect("select");
        b.click_and_load("form.tier button").await;
        assert_eq!(tier_of(&s.collector, &s.clinic), "cmp1");
        assert!(b.source().await.contains("CMP1"));
        let _ = b.client.clone().close().await;
    });
}

/// The API over HTTPS, trusting only the collector's CA.
fn https(collector: &Collector) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(collector.ca_pem().as_bytes()).expect("ca.crt");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[test]
fn the_api_answers_only_valid_tokens() {
    let s = setup();
    let token = |name: &str, role: &str| {
        s.collector
            .admin(&["api-token", "create", "--name", name, "--role", role])
            .ok()
            .stdout
            .trim()
            .to_owned()
    };
    let technician = token("script-technicien", "technician");
    let admin = token("script-admin", "admin");
    let revoked = token("ancien", "technician");
    s.collector.admin(&["api-token", "revoke", "ancien"]).ok();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = https(&s.collector);
        let base = format!(
            "https://localhost:{}/api/v1",
            s.collector.console_addr.port()
        );
        let call =
            |method: reqwest::Method, path: &str, bearer: Option<&str>, body: Option<Value>| {
                let mut request = client.request(method, format!("{base}{path}"));
                if let Some(bearer) = bearer {
                    request = request.bearer_auth(bearer);
                }
                if let Some(body) = body {
                    request = request
                        .header("content-type", "application/json")
                        .body(body.to_string());
                }
                request.send()
            };
        let gets = ["/clinics", "/agents", "/alerts", "/tickets"];
        let posts = [
            format!("/alerts/{}/ack", s.alert_id),
            format!("/alerts/{}/resolve", s.alert_id),
            format!("/clinics/{}/tier", s.clinic),
        ];
        // Without a token, with a wrong one, with a revoked one: 401 everywhere.
        for bad in [
            None,
            Some("vigie_nope"),
            Some("not even a token"),
            Some(revoked.as_str()),
        ] {
            for path in gets {
                let answer = call(reqwest::Method::GET, path, bad, None)
                    .await
                    .expect("GET");
                assert_eq!(answer.status(), 401, "GET {path} with {bad:?}");
                assert!(answer.headers().contains_key("www-authenticate"));
            }
            for path in &posts {
                let answer = call(reqwest::Method::POST, path, bad, Some(json!({"note": "x"})))
                    .await
                    .expect("POST");
                assert_eq!(answer.status(), 401, "POST {path} with {bad:?}");
            }
        }
        // With a valid token: the same objects as the admin CLI's --json.
        let json_of = |answer: reqwest::Response| async move {
            assert_eq!(answer.status(), 200, "{answer:?}");
            serde_json::from_slice::<Value>(&answer.bytes().await.expect("body")).expect("JSON")
        };
        let clinics = json_of(
            call(reqwest::Method::GET, "/clinics", Some(&technician), None)
                .await
                .expect("GET"),
        )
        .await;
        assert_eq!(clinics[0]["id"], s.clinic);
        assert_eq!(clinics[0]["tier"], "cmp3");
        let agents = json_of(
            call(reqwest::Method::GET, "/agents", Some(&technician), None)
                .await
                .expect("GET"),
        )
        .await;
        assert_eq!(agents[0]["id"], s.agent_id);
        let alerts = json_of(
            call(reqwest::Method::GET, "/alerts", Some(&technician), None)
                .await
                .expect("GET"),
        )
        .await;
        let cli = vigie_tests::alerts::alerts(&s.collector, &[]);
        assert_eq!(
            alerts,
            Value::Array(cli),
            "the API's alerts are alerts --json's"
        );
        let tickets = json_of(
            call(reqwest::Method::GET, "/tickets", Some(&technician), None)
                .await
                .expect("GET"),
        )
        .await;
        assert_eq!(tickets, json!([]), "no ticket system configured");

        let acked = json_of(
            call(
                reqwest::Method::POST,
                &posts[0],
                Some(&technician),
                Some(json!({"note": "vu par script"})),
            )
            .await
            .expect("POST"),
        )
        .await;
        assert_eq!(acked["state"], "acknowledged");
        assert_eq!(
            acked["history"]
                .as_array()
                .and_then(|h| h.last())
                .expect("history")["by"],
            "api:script-technicien"
        );
        // A technician token may not change a tier; an admin token may.
        let refused = call(
            reqwest::Method::POST,
            &posts[2],
            Some(&technician),
            Some(json!({"tier": "cmp1"})),
        )
        .await
        .expect("POST");
        assert_eq!(refused.status(), 403);
        assert_eq!(tier_of(&s.collector, &s.clinic), "cmp3");
        let resolved = json_of(
            call(
                reqwest::Method::POST,
                &posts[1],
                Some(&admin),
                Some(json!({"note": "réglé"})),
            )
            .await
            .expect("POST"),
        )
        .await;
        assert_eq!(resolved["state"], "resolved");
        let again = call(reqwest::Method::POST, &posts[1], Some(&admin), None)
            .await
            .expect("POST");
        assert_eq!(again.status(), 409, "an alert resolved already");
        let changed = json_of(
            call(
                reqwest::Method::POST,
                &posts[2],
                Some(&admin),
                Some(json!({"tier": "cmp1"})),
            )
            .await
            .expect("POST"),
        )
        .await;
        assert_eq!(changed["tier"], "cmp1");
        assert_eq!(tier_of(&s.collector, &s.clinic), "cmp1");
        let missing = call(
            reqwest::Method::POST,
            "/alerts/999999/ack",
            Some(&admin),
            None,
        )
        .await
        .expect("POST");
        assert_eq!(missing.status(), 404);
    });
    let listed = s
        .collector
        .admin(&["api-token", "list", "--json"])
        .ok()
        .stdout;
    let tokens: Vec<Value> = serde_json::from_str(&listed).expect("api-token list --json");
    assert_eq!(tokens.len(), 3);
    assert!(
        !listed.contains(&technician),
        "the token itself is never listed"
    );
}

#[test]
fn accounts_refuse_weak_or_mismatched_passwords() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut collector = Collector::init_in(&tmp.path().join("collector"));
    collector.serve();
    let short = add_technician(&collector, "zoe", "technician", "court\n");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("trop court"));
    let differ = add_technician(
        &collector,
        "zoe",
        "technician",
        "mot-de-passe-un-1\nmot-de-passe-deux\n",
    );
    assert!(!differ.status.success());
    assert!(String::from_utf8_lossy(&differ.stderr).contains("diffèrent"));
    assert!(
        add_technician(&collector, "zoe", "technician", "mot-de-passe-valable\n")
            .status
            .success()
    );
    let again = add_technician(&collector, "zoe", "admin", "mot-de-passe-valable\n");
    assert!(String::from_utf8_lossy(&again.stderr).contains("existe déjà"));
    collector.admin(&["technician", "disable", "zoe"]).ok();
    let list = collector.admin(&["technician", "list"]).ok().stdout;
    assert!(list.contains("zoe") && list.contains("désactivé"), "{list}");
}
