//! Accounts, passwords, sessions, CSRF tokens, API tokens and the login lockout.
//!
//! Passwords are hashed with argon2id (the crate's defaults: 19 MiB, 2 passes, OWASP's
//! minimum); sessions and API tokens are 256-bit random secrets of which only the SHA-256 is
//! stored. A bad password costs a delay that grows with each failure in a row, and
//! [`LoginPolicy::max_failures`] of them lock the account for [`LoginPolicy::lockout`].

use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use ring::rand::{SecureRandom as _, SystemRandom};

use crate::storage::{
    ApiTokenRecord, AuditEntry, ConsoleRole, SessionRecord, Storage, StorageError, TechnicianRecord,
};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (argon2 takes any length; this bounds the work per attempt).
pub const MAX_PASSWORD_CHARS: usize = 256;
/// Longest account or token name.
pub const MAX_NAME_CHARS: usize = 64;
/// The delay after the first bad password; it doubles with each one in a row.
const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(4);
/// Prefix of API tokens, so a leaked one is recognisable in a log or a repository.
pub const API_TOKEN_PREFIX: &str = "vigie_";

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} introuvable")]
    NotFound(String),
    #[error("{0} existe déjà")]
    Exists(String),
    #[error("le générateur aléatoire du système a échoué")]
    Random,
    #[error("impossible de hacher le mot de passe : {0}")]
    Hash(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// 32 random bytes, URL-safe base64.
pub fn new_secret() -> Result<String, AccountError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AccountError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored of a session cookie or an API token.
pub fn secret_hash(secret: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (secret_hash(a), secret_hash(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| AccountError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash of nothing anyone knows: an unknown name costs the same time as a bad password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password nobody has").unwrap_or_default())
}

pub fn check_name(name: &str) -> Result<String, AccountError> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(AccountError::Invalid(format!(
            "nom {name:?} : de 1 à {MAX_NAME_CHARS} lettres, chiffres, « . », « - », « _ » ou « @ »"
        )))
    }
}

pub fn check_password(password: &str) -> Result<(), AccountError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(AccountError::Invalid(format!(
            "mot de passe trop court : au moins {MIN_PASSWORD_CHARS} caractères"
        )));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(AccountError::Invalid(format!(
            "mot de passe trop long : au plus {MAX_PASSWORD_CHARS} caractères"
        )));
    }
    Ok(())
}

/// Who acted, from where: written into the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: ConsoleRole,
    pub address: String,
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        self.role == ConsoleRole::Admin
    }
}

pub fn audit(
    storage: &Storage,
    who: &str,
    address: &str,
    action: &str,
    target: &str,
    note: &str,
) -> Result<(), StorageError> {
    storage
        .append_audit(&AuditEntry {
            seq: 0,
            at: Timestamp::now(),
            who: who.to_owned(),
            address: address.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            note: note.chars().take(1000).collect(),
        })
        .map(drop)
}

// ---- accounts (the admin interface calls these) ----

pub fn add_technician(
    storage: &Storage,
    name: &str,
    role: ConsoleRole,
    password: &str,
    by: &str,
) -> Result<TechnicianRecord, AccountError> {
    let name = check_name(name)?;
    check_password(password)?;
    let record = TechnicianRecord {
        name: name.clone(),
        role,
        password_hash: hash_password(password)?,
        disabled: false,
        created_at: Timestamp::now(),
        last_login_at: None,
        failed_logins: 0,
        last_failed_at: None,
        locked_until: None,
    };
    if !storage.add_technician(&record)? {
        return Err(AccountError::Exists(format!("le compte {name}")));
    }
    audit(storage, by, "admin", "account_add", &name, role.as_str())?;
    Ok(record)
}

/// A new password also ends the lockout and every session of the account.
pub fn set_password(
    storage: &Storage,
    name: &str,
    password: &str,
    by: &str,
) -> Result<TechnicianRecord, AccountError> {
    check_password(password)?;
    let hash = hash_password(password)?;
    let record = storage
        .update_technician(name.trim(), |t| {
            t.password_hash = hash.clone();
            t.failed_logins = 0;
            t.locked_until = None;
        })?
        .ok_or_else(|| AccountError::NotFound(format!("le compte {}", name.trim())))?;
    storage.remove_sessions(Some(&record.name), Timestamp::now())?;
    audit(storage, by, "admin", "account_password", &record.name, "")?;
    Ok(record)
}

pub fn disable_technician(
    storage: &Storage,
    name: &str,
    by: &str,
) -> Result<TechnicianRecord, AccountError> {
    let record = storage
        .update_technician(name.trim(), |t| t.disabled = true)?
        .ok_or_else(|| AccountError::NotFound(format!("le compte {}", name.trim())))?;
    storage.remove_sessions(Some(&record.name), Timestamp::now())?;
    audit(storage, by, "admin", "account_disable", &record.name, "")?;
    Ok(record)
}

/// A new API token: answered once, only its hash is kept.
pub fn create_api_token(
    storage: &Storage,
    name: &str,
    role: ConsoleRole,
    by: &str,
) -> Result<(String, ApiTokenRecord), AccountError> {
    let name = check_name(name)?;
    let token = format!("{API_TOKEN_PREFIX}{}", new_secret()?);
    let record = ApiTokenRecord {
        name: name.clone(),
        role,
        created_at: Timestamp::now(),
        revoked: false,
        revoked_at: None,
        last_used_at: None,
    };
    if !storage.add_api_token(&secret_hash(&token), &record)? {
        return Err(AccountError::Exists(format!("le jeton d'API {name}")));
    }
    audit(
        storage,
        by,
        "admin",
        "api_token_create",
        &name,
        role.as_str(),
    )?;
    Ok((token, record))
}

pub fn revoke_api_token(
    storage: &Storage,
    name: &str,
    by: &str,
) -> Result<ApiTokenRecord, AccountError> {
    let name = name.trim().to_owned();
    let now = Timestamp::now();
    let revoked = storage.update_api_tokens(
        |_, t| t.name == name && !t.revoked,
        |t| {
            t.revoked = true;
            t.revoked_at = Some(now);
        },
    )?;
    let record = revoked
        .into_iter()
        .next()
        .ok_or_else(|| AccountError::NotFound(format!("le jeton d'API {name} (non révoqué)")))?;
    audit(storage, by, "admin", "api_token_revoke", &name, "")?;
    Ok(record)
}

/// The API token a bearer header carries, if it is valid and not revoked.
pub fn api_token_of(
    storage: &Storage,
    token: &str,
) -> Result<Option<ApiTokenRecord>, StorageError> {
    if !token.starts_with(API_TOKEN_PREFIX) {
        return Ok(None);
    }
    let hash = secret_hash(token);
    let Some(record) = storage.api_token(&hash)? else {
        return Ok(None);
    };
    if record.revoked {
        return Ok(None);
    }
    let now = Timestamp::now();
    // "Last used" to the minute: not one write per request.
    if record
        .last_used_at
        .is_none_or(|at| now.duration_since(at) > SignedDuration::from_mins(1))
    {
        storage.update_api_tokens(|key, _| key == hash, |t| t.last_used_at = Some(now))?;
    }
    Ok(Some(record))
}

// ---- logins ----

/// How failed logins are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    pub max_failures: u32,
    pub lockout: SignedDuration,
    pub session: SignedDuration,
}

/// What a login attempt gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// A new session: the cookie's secret and the record stored under its hash.
    Accepted {
        cookie: String,
        session: SessionRecord,
    },
    /// Wrong name or password (the same answer for both), after `delay`.
    Refused { delay: Duration },
    /// Too many bad passwords: refused until then, whatever the password.
    Locked { until: Timestamp, delay: Duration },
}

impl LoginPolicy {
    /// The wait after the `failures`-th bad password in a row: 250 ms, 500 ms, 1 s, ... 4 s.
    pub fn delay(failures: u32) -> Duration {
        let doubling = failures.saturating_sub(1).min(16);
        FIRST_DELAY.saturating_mul(1u32 << doubling).min(MAX_DELAY)
    }

    /// Counts a bad password; locks the account at the `max_failures`-th in a row.
    pub fn note_failure(&self, account: &mut TechnicianRecord, now: Timestamp) {
        account.failed_logins = account.failed_logins.saturating_add(1);
        account.last_failed_at = Some(now);
        if account.failed_logins >= self.max_failures {
            account.locked_until = now.checked_add(self.lockout).ok();
        }
    }

    pub fn locked_until(&self, account: &TechnicianRecord, now: Timestamp) -> Option<Timestamp> {
        account.locked_until.filter(|until| *until > now)
    }

    /// Checks a name and password and, when they are right, opens a session.
    pub fn login(
        &self,
        storage: &Storage,
        name: &str,
        password: &str,
        address: &str,
        now: Timestamp,
    ) -> Result<LoginOutcome, AccountError> {
        let name = name.trim();
        let Some(account) = storage.technician(name)? else {
            let _ = verify_password(decoy_hash(), password);
            return Ok(LoginOutcome::Refused {
                delay: Self::delay(1),
            });
        };
        if let Some(until) = self.locked_until(&account, now) {
            return Ok(LoginOutcome::Locked {
                until,
                delay: Self::delay(account.failed_logins),
            });
        }
        let right = verify_password(&account.password_hash, password);
        if !right || account.disabled {
            let mut failures = 0;
            let mut locked = None;
            if right {
                // A disabled account: no counting, the same answer as a bad password.
            } else {
                let updated = storage.update_technician(name, |t| {
                    if t.locked_until.is_some_and(|until| until <= now) {
                        // The lockout is over: a fresh count.
                        t.failed_logins = 0;
                        t.locked_until = None;
                    }
                    self.note_failure(t, now);
                })?;
                if let Some(t) = updated {
                    failures = t.failed_logins;
                    locked = self.locked_until(&t, now);
                }
            }
            let delay = Self::delay(failures.max(1));
            return Ok(match locked {
                Some(until) => LoginOutcome::Locked { until, delay },
                None => LoginOutcome::Refused { delay },
            });
        }
        storage.update_technician(name, |t| {
            t.failed_logins = 0;
            t.locked_until = None;
            t.last_login_at = Some(now);
        })?;
        // Expired sessions go at each login: the table stays small without a timer.
        storage.remove_sessions(None, now)?;
        let cookie = new_secret()?;
        let session = SessionRecord {
            technician: account.name.clone(),
            csrf: new_secret()?,
            created_at: now,
            expires_at: now
                .checked_add(self.session)
                .map_err(|e| AccountError::Invalid(e.to_string()))?,
            address: address.to_owned(),
        };
        storage.put_session(&secret_hash(&cookie), &session)?;
        Ok(LoginOutcome::Accepted { cookie, session })
    }

    /// The account behind a session cookie, if the session is live and the account usable.
    pub fn session_of(
        &self,
        storage: &Storage,
        cookie: &str,
        now: Timestamp,
    ) -> Result<Option<(SessionRecord, TechnicianRecord)>, StorageError> {
        let hash = secret_hash(cookie);
        let Some(session) = storage.session(&hash)? else {
            return Ok(None);
        };
        if session.expires_at <= now {
            storage.remove_session(&hash)?;
            return Ok(None);
        }
        match storage.technician(&session.technician)? {
            Some(account) if !account.disabled => Ok(Some((session, account))),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LoginPolicy {
        LoginPolicy {
            max_failures: 3,
            lockout: SignedDuration::from_mins(15),
            session: SignedDuration::from_hours(12),
        }
    }

    fn storage() -> (tempfile::TempDir, Storage) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let storage = Storage::open(&tmp.path().join("db")).expect("open");
        (tmp, storage)
    }

    const GOOD: &str = "correct horse battery";

    #[test]
    fn passwords_are_argon2id_and_verify() {
        let hash = hash_password(GOOD).expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&hash, GOOD));
        assert!(!verify_password(&hash, "correct horse battery!"));
        assert!(!verify_password("not a hash", GOOD));
        assert_ne!(hash, hash_password(GOOD).expect("hash"), "salted");
    }

    #[test]
    fn weak_passwords_and_odd_names_are_refused() {
        let (_tmp, storage) = storage();
        for (name, password) in [("lea", "short"), ("lea moreau", GOOD), ("", GOOD)] {
            assert!(
                matches!(
                    add_technician(&storage, name, ConsoleRole::Technician, password, "t"),
                    Err(AccountError::Invalid(_))
                ),
                "{name:?} {password:?}"
            );
        }
        add_technician(&storage, "lea", ConsoleRole::Technician, GOOD, "t").expect("add");
        assert!(matches!(
            add_technician(&storage, "lea", ConsoleRole::Admin, GOOD, "t"),
            Err(AccountError::Exists(_))
        ));
    }

    #[test]
    fn the_delay_grows_and_is_capped() {
        let delays: Vec<_> = (1..=7).map(LoginPolicy::delay).collect();
        assert_eq!(delays[0], Duration::from_millis(250));
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
        assert_eq!(delays[6], MAX_DELAY);
        assert_eq!(LoginPolicy::delay(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn repeated_bad_passwords_lock_even_the_right_one_out_until_the_lockout_ends() {
        let (_tmp, storage) = storage();
        add_technician(&storage, "lea", ConsoleRole::Technician, GOOD, "t").expect("add");
        let policy = policy();
        let now = Timestamp::from_second(1_800_000_000).expect("ts");
        for attempt in 1..=2 {
            let outcome = policy
                .login(&storage, "lea", "wrong password!", "127.0.0.1", now)
                .expect("login");
            assert_eq!(
                outcome,
                LoginOutcome::Refused {
                    delay: LoginPolicy::delay(attempt)
                }
            );
        }
        let third = policy
            .login(&storage, "lea", "wrong password!", "127.0.0.1", now)
            .expect("login");
        assert!(matches!(third, LoginOutcome::Locked { .. }), "{third:?}");
        let right_while_locked = policy
            .login(&storage, "lea", GOOD, "127.0.0.1", now)
            .expect("login");
        assert!(matches!(right_while_locked, LoginOutcome::Locked { .. }));
        let later = now + SignedDuration::from_mins(16);
        let after = policy
            .login(&storage, "lea", GOOD, "127.0.0.1", later)
            .expect("login");
        let LoginOutcome::Accepted { cookie, session } = after else {
            panic!("accepted after the lockout: {after:?}");
        };
        assert_eq!(session.technician, "lea");
        let account = storage.technician("lea").expect("get").expect("exists");
        assert_eq!((account.failed_logins, account.locked_until), (0, None));
        let (found, _) = policy
            .session_of(&storage, &cookie, later)
            .expect("session")
            .expect("live");
        assert_eq!(found.csrf, session.csrf);
        assert!(
            policy
                .session_of(&storage, &cookie, later + SignedDuration::from_hours(13))
                .expect("session")
                .is_none(),
            "expired"
        );
    }

    #[test]
    fn unknown_and_disabled_accounts_get_the_bad_password_answer() {
        let (_tmp, storage) = storage();
        add_technician(&storage, "max", ConsoleRole::Admin, GOOD, "t").expect("add");
        let now = Timestamp::now();
        let policy = policy();
        let LoginOutcome::Accepted { cookie, .. } = policy
            .login(&storage, "max", GOOD, "127.0.0.1", now)
            .expect("login")
        else {
            panic!("accepted");
        };
        disable_technician(&storage, "max", "t").expect("disable");
        assert!(
            policy
                .session_of(&storage, &cookie, now)
                .expect("session")
                .is_none(),
            "disabling ends the sessions"
        );
        for name in ["max", "nobody"] {
            assert!(matches!(
                policy
                    .login(&storage, name, GOOD, "127.0.0.1", now)
                    .expect("login"),
                LoginOutcome::Refused { .. }
            ));
        }
        let audit = storage.audit_latest(10).expect("audit");
        assert!(
            audit
                .iter()
                .any(|e| e.action == "account_disable" && e.target == "max")
        );
    }

    #[test]
    fn api_tokens_are_stored_hashed_and_revocable() {
        let (_tmp, storage) = storage();
        let (token, _) =
            create_api_token(&storage, "glpi", ConsoleRole::Technician, "t").expect("create");
        assert!(token.starts_with(API_TOKEN_PREFIX));
        let (keys, records): (Vec<_>, Vec<_>) =
            storage.list_api_tokens().expect("list").into_iter().unzip();
        assert_eq!(keys, [secret_hash(&token).to_vec()]);
        assert_eq!(records[0].name, "glpi");
        assert!(api_token_of(&storage, &token).expect("check").is_some());
        assert!(
            api_token_of(&storage, "vigie_other")
                .expect("check")
                .is_none()
        );
        revoke_api_token(&storage, "glpi", "t").expect("revoke");
        assert!(api_token_of(&storage, &token).expect("check").is_none());
        assert!(matches!(
            revoke_api_token(&storage, "glpi", "t"),
            Err(AccountError::NotFound(_))
        ));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", ""));
    }
}
