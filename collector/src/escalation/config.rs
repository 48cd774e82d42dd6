//! The `[escalation]` section of `collector.toml`: graces before a ticket, response SLAs,
//! retry backoff, and the ticket sinks (`[[escalation.sinks]]`, several at once). Every field
//! has a named default; `deploy/collector-escalation.toml` is a documented example a test parses.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::alerts::policy::Rule;
use crate::secrets::SecretSetting;

/// Minutes an alert stays open before its ticket, by severity (a rule's own grace wins).
pub const DEFAULT_GRACE_CRITICAL_MINUTES: u64 = 0;
pub const DEFAULT_GRACE_MAJOR_MINUTES: u64 = 30;
pub const DEFAULT_GRACE_WARNING_MINUTES: u64 = 240;
/// Rules whose grace differs from their severity's: a failed backup is a ticket at once,
/// pending updates only after a day (they often install themselves overnight).
pub const DEFAULT_RULE_GRACES: [(Rule, u64); 6] = [
    (Rule::BackupFailed, 0),
    (Rule::BackupMissing, 0),
    (Rule::OsUpdatesPending, 24 * 60),
    (Rule::SecurityUpdatesPending, 4 * 60),
    (Rule::RebootPending, 24 * 60),
    (Rule::PrinterSupplyLow, 24 * 60),
];
/// Response SLAs, in support hours of the tier (`calendar.rs`).
pub const DEFAULT_SLA_CMP0_HOURS: u64 = 8;
pub const DEFAULT_SLA_CMP1_HOURS: u64 = 4;
pub const DEFAULT_SLA_CMP3_HOURS: u64 = 2;
/// Backoff between attempts on a failing sink: doubles from the first to the largest.
pub const DEFAULT_RETRY_FIRST_SECONDS: u64 = 30;
pub const DEFAULT_RETRY_MAX_SECONDS: u64 = 1800;
/// How long one request to a ticket system may take.
pub const DEFAULT_SINK_TIMEOUT_SECONDS: u64 = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EscalationConfig {
    /// Seconds between two looks at the queue when nothing wakes the worker (graces ending).
    pub tick_seconds: u64,
    pub retry_first_seconds: u64,
    pub retry_max_seconds: u64,
    pub grace_minutes: SeverityGraces,
    /// Per rule (`backup_failed = 0`), overriding the severity's grace; merged over
    /// [`DEFAULT_RULE_GRACES`].
    pub rule_grace_minutes: BTreeMap<Rule, u64>,
    pub response_sla_hours: TierSla,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sinks: Vec<SinkConfig>,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        EscalationConfig {
            tick_seconds: 30,
            retry_first_seconds: DEFAULT_RETRY_FIRST_SECONDS,
            retry_max_seconds: DEFAULT_RETRY_MAX_SECONDS,
            grace_minutes: SeverityGraces::default(),
            rule_grace_minutes: BTreeMap::new(),
            response_sla_hours: TierSla::default(),
            sinks: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeverityGraces {
    pub critical: u64,
    pub major: u64,
    pub warning: u64,
}

impl Default for SeverityGraces {
    fn default() -> Self {
        SeverityGraces {
            critical: DEFAULT_GRACE_CRITICAL_MINUTES,
            major: DEFAULT_GRACE_MAJOR_MINUTES,
            warning: DEFAULT_GRACE_WARNING_MINUTES,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TierSla {
    pub cmp0: u64,
    pub cmp1: u64,
    pub cmp3: u64,
}

impl Default for TierSla {
    fn default() -> Self {
        TierSla {
            cmp0: DEFAULT_SLA_CMP0_HOURS,
            cmp1: DEFAULT_SLA_CMP1_HOURS,
            cmp3: DEFAULT_SLA_CMP3_HOURS,
        }
    }
}

/// One ticket system: a name (what `tickets` shows and `escalation test --sink` takes) and
/// its type with the type's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkConfig {
    pub name: String,
    #[serde(flatten)]
    pub kind: SinkKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkKind {
    Glpi(GlpiConfig),
    Webhook(WebhookConfig),
    Email(EmailConfig),
}

impl SinkKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::Glpi(_) => "glpi",
            SinkKind::Webhook(_) => "webhook",
            SinkKind::Email(_) => "email",
        }
    }
}

/// GLPI's REST API (`…/apirest.php`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlpiConfig {
    /// e.g. `https://glpi.example.re/apirest.php`.
    pub url: String,
    /// The API client's App-Token (Configuration > Générale > API); or `app_token_file`
    /// (e.g. `$CREDENTIALS_DIRECTORY/glpi-app-token`) or `app_token_env`.
    #[serde(default)]
    pub app_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_token_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_token_env: Option<String>,
    /// The technician account's remote access key (user_token); or `user_token_file` or
    /// `user_token_env`.
    #[serde(default)]
    pub user_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_token_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_token_env: Option<String>,
    /// GLPI entity of a clinic, by clinic id or clinic name.
    #[serde(default)]
    pub entities: BTreeMap<String, u64>,
    /// Entity of clinics not in `entities` (0: the root entity).
    #[serde(default)]
    pub default_entity: u64,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// PEM file of a private CA to trust besides the system's roots (an internal server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// An HTTP endpoint receiving signed JSON (see the README: "Webhook").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookConfig {
    pub url: String,
    /// Key of the HMAC-SHA256 signature (`X-Vigie-Signature`); or `secret_file` or
    /// `secret_env`.
    #[serde(default)]
    pub secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// PEM file of a private CA to trust besides the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, required (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host (and tests).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailConfig {
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    pub security: SmtpSecurity,
    #[serde(default)]
    pub username: String,
    /// Or `password_file` or `password_env`.
    #[serde(default)]
    pub password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// PEM file of a private CA to trust besides the system's roots (`starttls`, `tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

fn secret<'a>(
    what: String,
    value: &'a mut String,
    file: &'a Option<PathBuf>,
    env: &'a Option<String>,
) -> SecretSetting<'a> {
    SecretSetting {
        what,
        value,
        file: file.as_deref(),
        env: env.as_deref(),
    }
}

/// Whether a secret is given in one of its three ways (read later by `resolve_secrets`).
fn given(value: &str, file: &Option<PathBuf>, env: &Option<String>) -> bool {
    SecretSetting::is_given(value, file.as_deref(), env.as_deref())
}

fn default_timeout() -> u64 {
    DEFAULT_SINK_TIMEOUT_SECONDS
}

impl EscalationConfig {
    /// Every problem, reported at once by `CollectorConfig::validate`.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.tick_seconds == 0 {
            problems.push("escalation.tick_seconds must be at least 1".to_owned());
        }
        if self.retry_first_seconds == 0 || self.retry_max_seconds < self.retry_first_seconds {
            problems.push(
                "escalation.retry_first_seconds must be at least 1 and at most retry_max_seconds"
                    .to_owned(),
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for sink in &self.sinks {
            let name = sink.name.trim();
            let what = format!("escalation sink {name:?}");
            if name.is_empty() || name.len() > 64 {
                problems.push("an escalation sink needs a name (1 to 64 characters)".to_owned());
            }
            if !names.insert(name.to_owned()) {
                problems.push(format!("{what} is defined twice"));
            }
            let ca_file = match &sink.kind {
                SinkKind::Glpi(g) => g.ca_file.as_ref(),
                SinkKind::Webhook(w) => w.ca_file.as_ref(),
                SinkKind::Email(e) => e.ca_file.as_ref(),
            };
            if let Some(path) = ca_file
                && !path.is_file()
            {
                problems.push(format!("{what}: ca_file {} is not a file", path.display()));
            }
            let (url, timeout) = match &sink.kind {
                SinkKind::Glpi(g) => {
                    let app = given(&g.app_token, &g.app_token_file, &g.app_token_env);
                    let user = given(&g.user_token, &g.user_token_file, &g.user_token_env);
                    if !app || !user {
                        problems.push(format!(
                            "{what}: app_token and user_token are required (or their _file / _env)"
                        ));
                    }
                    (Some(&g.url), g.timeout_seconds)
                }
                SinkKind::Webhook(w) => {
                    if !given(&w.secret, &w.secret_file, &w.secret_env) {
                        problems.push(format!(
                            "{what}: secret is required (or secret_file / secret_env)"
                        ));
                    } else if !w.secret.is_empty() && w.secret.len() < 16 {
                        problems.push(format!("{what}: secret must be at least 16 characters"));
                    }
                    (Some(&w.url), w.timeout_seconds)
                }
                SinkKind::Email(e) => {
                    if e.host.trim().is_empty() {
                        problems.push(format!("{what}: host is required"));
                    }
                    if e.from.parse::<lettre::message::Mailbox>().is_err() {
                        problems.push(format!("{what}: from {:?} is not an address", e.from));
                    }
                    if e.to.is_empty() {
                        problems.push(format!("{what}: to needs at least one address"));
                    }
                    for to in &e.to {
                        if to.parse::<lettre::message::Mailbox>().is_err() {
                            problems.push(format!("{what}: to {to:?} is not an address"));
                        }
                    }
                    let password = given(&e.password, &e.password_file, &e.password_env);
                    if e.username.is_empty() == password {
                        problems.push(format!("{what}: username and password go together"));
                    }
                    (None, e.timeout_seconds)
                }
            };
            if let Some(url) = url {
                let ok =
                    reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
                if !ok {
                    problems.push(format!("{what}: url must be an http(s) URL"));
                }
            }
            if timeout == 0 {
                problems.push(format!("{what}: timeout_seconds must be at least 1"));
            }
        }
        problems
    }

    pub fn is_default(&self) -> bool {
        *self == EscalationConfig::default()
    }

    /// Reads the secrets given as `*_file` or `*_env` into their settings (at load, before
    /// the sinks are built); every problem is returned at once.
    pub fn resolve_secrets(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        for sink in &mut self.sinks {
            let name = sink.name.trim().to_owned();
            let setting = |field: &str| format!("escalation sink {name:?}: {field}");
            let settings = match &mut sink.kind {
                SinkKind::Glpi(g) => vec![
                    secret(
                        setting("app_token"),
                        &mut g.app_token,
                        &g.app_token_file,
                        &g.app_token_env,
                    ),
                    secret(
                        setting("user_token"),
                        &mut g.user_token,
                        &g.user_token_file,
                        &g.user_token_env,
                    ),
                ],
                SinkKind::Webhook(w) => {
                    vec![secret(
                        setting("secret"),
                        &mut w.secret,
                        &w.secret_file,
                        &w.secret_env,
                    )]
                }
                SinkKind::Email(e) => {
                    vec![secret(
                        setting("password"),
                        &mut e.password,
                        &e.password_file,
                        &e.password_env,
                    )]
                }
            };
            for secret in settings {
                secret.resolve(&mut problems);
            }
        }
        problems
    }

    pub fn sink(&self, name: &str) -> Option<&SinkConfig> {
        self.sinks.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../deploy/collector-escalation.toml");

    #[derive(Deserialize)]
    struct File {
        escalation: EscalationConfig,
    }

    #[test]
    fn documented_example_parses_and_is_valid() {
        let file: File = toml::from_str(EXAMPLE).expect("the example parses");
        let config = file.escalation;
        assert_eq!(config.problems(), Vec::<String>::new());
        assert_eq!(config.sinks.len(), 3);
        assert_eq!(config.rule_grace_minutes[&Rule::BackupFailed], 0);
        assert_eq!(config.rule_grace_minutes[&Rule::OsUpdatesPending], 1440);
        let kinds: Vec<_> = config.sinks.iter().map(|s| s.kind.type_name()).collect();
        assert_eq!(kinds, ["glpi", "webhook", "email"]);
    }

    #[test]
    fn empty_section_gives_named_defaults() {
        let config: EscalationConfig = toml::from_str("").expect("parses");
        assert_eq!(config, EscalationConfig::default());
        assert_eq!(config.grace_minutes.major, DEFAULT_GRACE_MAJOR_MINUTES);
        assert_eq!(config.response_sla_hours.cmp3, DEFAULT_SLA_CMP3_HOURS);
    }

    #[test]
    fn collector_toml_reports_escalation_problems_with_the_rest() {
        let text = "[escalation]\nretry_first_seconds = 0\n";
        let result =
            crate::config::CollectorConfig::from_toml(text, std::path::Path::new("x.toml"));
        let Err(crate::config::ConfigError::Invalid { problems, .. }) = result else {
            panic!("expected invalid config");
        };
        assert!(
            problems.to_string().contains("retry_first_seconds"),
            "{problems}"
        );
        let written = crate::config::CollectorConfig::default()
            .to_toml()
            .expect("serializes");
        assert!(
            !written.contains("escalation"),
            "init writes no sink:\n{written}"
        );
    }

    #[test]
    fn every_sink_problem_is_reported() {
        let text = r#"
            [[sinks]]
            name = "a"
            type = "webhook"
            url = "ftp://x"
            secret = "short"
            [[sinks]]
            name = "a"
            type = "email"
            host = ""
            security = "starttls"
            from = "nope"
            to = []
        "#;
        let config: EscalationConfig = toml::from_str(text).expect("parses");
        let problems = config.problems();
        assert_eq!(problems.len(), 6, "{problems:#?}");
    }
}
