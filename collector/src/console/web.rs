//! The console's router: pages, forms, the login, the assets and the API, behind the
//! security headers. Sessions are a cookie (`HttpOnly; Secure; SameSite=Strict`) naming a
//! stored session; every POST carries the session's CSRF token (the login form a
//! double-submit one), checked before anything is read or changed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Form;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use maud::Markup;
use serde::Deserialize;

use super::actions::{self, ActionError};
use super::auth::{Actor, LoginOutcome, audit, new_secret, same_secret, secret_hash};
use super::pages::{self, Viewer};
use super::{ConsoleState, api, data};
use crate::alerts::opening_hours::clinic_zone;

pub const SESSION_COOKIE: &str = "vigie_session";
const LOGIN_COOKIE: &str = "vigie_login";
/// Largest form or JSON body: notes are 1,000 characters.
const MAX_BODY: usize = 64 * 1024;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The client's address, put into each request by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

pub type Shared = Arc<ConsoleState>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/connexion", get(login_form).post(login))
        .route("/deconnexion", post(logout))
        .route("/alertes", get(alerts_page))
        .route("/alertes/{id}/acquitter", post(acknowledge))
        .route("/alertes/{id}/resoudre", post(resolve))
        .route("/maintenance", post(add_window))
        .route("/maintenance/{id}/fin", post(end_window))
        .route("/cabinets", get(clinics_page))
        .route("/cabinets/{id}", get(clinic_page))
        .route("/cabinets/{id}/contrat", post(change_tier))
        .route("/cabinets/{id}/rapport", get(clinic_report))
        .route("/postes/{id}", get(agent_page))
        .route("/tickets", get(tickets_page))
        .route("/journal", get(journal_page))
        .route(
            "/assets/console.css",
            get(|| asset(CSS, "text/css; charset=utf-8")),
        )
        .route(
            "/assets/console.js",
            get(|| asset(JS, "text/javascript; charset=utf-8")),
        )
        .nest("/api/v1", api::router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Every response: no inline script, no framing, no sniffing, no referrer, not cached.
/// Also says how long the collector took (`Server-Timing`, read by `vigie-bench console`).
async fn security_headers(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    let took = format!("app;dur={:.2}", started.elapsed().as_secs_f64() * 1000.0);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&took) {
        headers.insert("server-timing", value);
    }
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, "x-frame-options", "DENY");
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "no-referrer");
    set(headers, "strict-transport-security", "max-age=31536000");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, "cache-control", "no-store");
    }
    response
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        body,
    )
        .into_response()
}

// ---- errors ----

/// A page that went wrong, as a French page with the right status.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    title: &'static str,
    text: String,
}

impl PageError {
    fn internal(text: impl std::fmt::Display) -> Self {
        tracing::error!(error = %text, "console: page failed");
        PageError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "Erreur",
            text: "Le collecteur n'a pas pu répondre (voir son journal).".into(),
        }
    }

    fn not_found(text: impl Into<String>) -> Self {
        PageError {
            status: StatusCode::NOT_FOUND,
            title: "Introuvable",
            text: text.into(),
        }
    }

    fn csrf() -> Self {
        PageError {
            status: StatusCode::FORBIDDEN,
            title: "Requête refusée",
            text:
                "Requête refusée : jeton CSRF absent ou invalide. Rechargez la page et recommencez."
                    .into(),
        }
    }
}

impl From<ActionError> for PageError {
    fn from(error: ActionError) -> Self {
        let status = match &error {
            ActionError::Forbidden(_) => StatusCode::FORBIDDEN,
            ActionError::NotFound(_) => StatusCode::NOT_FOUND,
            ActionError::Invalid(_) => StatusCode::BAD_REQUEST,
            ActionError::Conflict(_) => StatusCode::CONFLICT,
            _ => return PageError::internal(error),
        };
        PageError {
            status,
            title: "Action refusée",
            text: format!("Action refusée : {error}."),
        }
    }
}

impl From<data::DataError> for PageError {
    fn from(error: data::DataError) -> Self {
        PageError::internal(error)
    }
}

impl From<crate::storage::StorageError> for PageError {
    fn from(error: crate::storage::StorageError) -> Self {
        PageError::internal(error)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        (self.status, pages::message(self.title, None, &self.text)).into_response()
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PageError> + Send + 'static,
) -> Result<T, PageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(PageError::internal)?
}

async fn not_found() -> PageError {
    PageError::not_found("Cette page n'existe pas.")
}

// ---- sessions ----

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn address(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ClientAddr>()
        .map_or_else(|| "inconnue".to_owned(), |a| a.0.ip().to_string())
}

/// A logged-in technician: the extractor sends anyone else to the login page.
pub struct Session {
    pub viewer: Viewer,
    pub actor: Actor,
    cookie_hash: [u8; 32],
}

impl Session {
    /// Refuses a form whose CSRF token is not this session's.
    fn check(&self, token: &str) -> Result<(), PageError> {
        if !token.is_empty() && same_secret(token, &self.viewer.csrf) {
            Ok(())
        } else {
            Err(PageError::csrf())
        }
    }
}

fn login_redirect(uri: &Uri) -> Response {
    let next = uri.path_and_query().map_or("/", |p| p.as_str());
    Redirect::to(&format!("/connexion?suite={}", encode(next))).into_response()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl FromRequestParts<Shared> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Response> {
        let Some(cookie) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_owned) else {
            return Err(login_redirect(&parts.uri));
        };
        let (storage, policy) = (state.collector.storage.clone(), state.policy);
        let found = {
            let cookie = cookie.clone();
            tokio::task::spawn_blocking(move || {
                policy.session_of(&storage, &cookie, Timestamp::now())
            })
            .await
        };
        match found {
            Ok(Ok(Some((session, account)))) => Ok(Session {
                viewer: Viewer {
                    name: account.name.clone(),
                    role: account.role,
                    csrf: session.csrf,
                },
                actor: Actor {
                    name: account.name,
                    role: account.role,
                    address: address(parts),
                },
                cookie_hash: secret_hash(&cookie),
            }),
            Ok(Ok(None)) => Err(login_redirect(&parts.uri)),
            Ok(Err(error)) => Err(PageError::internal(error).into_response()),
            Err(error) => Err(PageError::internal(error).into_response()),
        }
    }
}

/// Where to go after a form: a path on this site only.
fn back_to(target: &str, default: &str) -> String {
    let ok = target.starts_with('/') && !target.starts_with("//") && !target.contains('\\');
    if ok { target } else { default }.to_owned()
}

fn session_cookie(value: &str, max_age_seconds: i64) -> HeaderValue {
    let text = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age_seconds}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

// ---- login ----

#[derive(Debug, Default, Deserialize)]
struct LoginQuery {
    #[serde(default)]
    suite: String,
}

#[derive(Debug, Default, Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    suite: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

fn login_page(status: StatusCode, next: &str, error: Option<&str>, name: &str) -> Response {
    let Ok(token) = new_secret() else {
        return PageError::internal("random generator").into_response();
    };
    let cookie = format!(
        "{LOGIN_COOKIE}={token}; Path=/connexion; HttpOnly; Secure; SameSite=Strict; Max-Age=3600"
    );
    let mut response = (status, pages::login::render(&token, next, error, name)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

async fn login_form(Query(query): Query<LoginQuery>) -> Response {
    login_page(StatusCode::OK, &back_to(&query.suite, "/"), None, "")
}

async fn login(
    State(state): State<Shared>,
    headers: HeaderMap,
    axum::Extension(client): axum::Extension<ClientAddr>,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = back_to(&form.suite, "/");
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if form.csrf.is_empty() || !same_secret(&form.csrf, expected) {
        return login_page(
            StatusCode::FORBIDDEN,
            &next,
            Some("Formulaire expiré ou jeton CSRF absent : recommencez."),
            &form.name,
        );
    }
    let name: String = form.name.trim().chars().take(64).collect();
    let address = client.0.ip().to_string();
    let (storage, policy) = (state.collector.storage.clone(), state.policy);
    let outcome = {
        let (name, address, password) = (name.clone(), address.clone(), form.password.clone());
        tokio::task::spawn_blocking(move || {
            let outcome = policy.login(&storage, &name, &password, &address, Timestamp::now());
            let action = match &outcome {
                Ok(LoginOutcome::Accepted { .. }) => "login",
                Ok(LoginOutcome::Refused { .. }) => "login_failed",
                Ok(LoginOutcome::Locked { .. }) => "login_locked",
                Err(_) => "login_failed",
            };
            let _ = audit(&storage, &name, &address, action, &name, "");
            outcome
        })
        .await
    };
    let outcome = match outcome {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => return PageError::internal(error).into_response(),
        Err(error) => return PageError::internal(error).into_response(),
    };
    if state.collector.commit.durable().await.is_err() {
        return PageError::internal("flush failed").into_response();
    }
    match outcome {
        LoginOutcome::Accepted { cookie, session } => {
            let max_age = session
                .expires_at
                .duration_since(session.created_at)
                .as_secs();
            let mut response = Redirect::to(&next).into_response();
            let headers = response.headers_mut();
            headers.append(header::SET_COOKIE, session_cookie(&cookie, max_age));
            headers.append(
                header::SET_COOKIE,
                HeaderValue::from_static(
                    "vigie_login=; Path=/connexion; HttpOnly; Secure; SameSite=Strict; Max-Age=0",
                ),
            );
            response
        }
        LoginOutcome::Refused { delay } => {
            tokio::time::sleep(delay).await;
            login_page(
                StatusCode::UNAUTHORIZED,
                &next,
                Some("Identifiant ou mot de passe incorrect."),
                &name,
            )
        }
        LoginOutcome::Locked { until, delay } => {
            tokio::time::sleep(delay).await;
            let text = format!(
                "Compte verrouillé après des mots de passe refusés à la suite, jusqu'à {} (heure de La Réunion).",
                until.to_zoned_datetime(clinic_zone()).strftime("%H:%M")
            );
            login_page(StatusCode::TOO_MANY_REQUESTS, &next, Some(&text), &name)
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<Shared>,
    session: Session,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    session.check(&form.csrf)?;
    let storage = state.collector.storage.clone();
    let (hash, actor) = (session.cookie_hash, session.actor.clone());
    blocking(move || {
        storage.remove_session(&hash)?;
        audit(
            &storage,
            &actor.name,
            &actor.address,
            "logout",
            &actor.name,
            "",
        )?;
        Ok(())
    })
    .await?;
    let mut response = Redirect::to("/connexion").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, session_cookie("", 0));
    Ok(response)
}

// ---- pages ----

fn refresh(state: &ConsoleState) -> u64 {
    state.config.refresh_seconds
}

async fn overview(State(state): State<Shared>, session: Session) -> Result<Markup, PageError> {
    let collector = state.collector.clone();
    let (clinics, alerts, agents, now) = blocking(move || {
        Ok((
            data::clinics(&collector)?,
            data::alert_views(&collector, None, false)?,
            collector.storage.list_agents(None)?,
            collector.alerts.now(),
        ))
    })
    .await?;
    Ok(pages::overview::render(
        &session.viewer,
        refresh(&state),
        &pages::overview::Overview {
            clinics: &clinics,
            alerts: &alerts,
            agents: &agents,
            now,
        },
    ))
}

async fn alerts_page(
    State(state): State<Shared>,
    session: Session,
    Query(filters): Query<pages::alerts::Filters>,
) -> Result<Markup, PageError> {
    let collector = state.collector.clone();
    let all = filters.wants_resolved();
    let (alerts, clinics, agents, windows, now) = blocking(move || {
        Ok((
            data::alert_views(&collector, None, all)?,
            data::clinics(&collector)?,
            collector.storage.list_agents(None)?,
            collector
                .alerts
                .maintenance_windows(false)
                .map_err(data::DataError::from)?,
            collector.alerts.now(),
        ))
    })
    .await?;
    Ok(pages::alerts::render(
        &session.viewer,
        refresh(&state),
        &pages::alerts::AlertsPage {
            filters: &filters,
            alerts: &alerts,
            clinics: &clinics,
            agents: &agents,
            windows: &windows,
            now,
        },
    ))
}

#[derive(Debug, Default, Deserialize)]
struct NoteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    retour: String,
}

async fn alert_form(
    state: Shared,
    session: Session,
    id: u64,
    resolve: bool,
    form: NoteForm,
) -> Result<Response, PageError> {
    session.check(&form.csrf)?;
    actions::alert_action(
        state.collector.clone(),
        session.actor,
        id,
        resolve,
        &form.note,
    )
    .await?;
    Ok(Redirect::to(&back_to(&form.retour, "/alertes")).into_response())
}

async fn acknowledge(
    State(state): State<Shared>,
    session: Session,
    Path(id): Path<u64>,
    Form(form): Form<NoteForm>,
) -> Result<Response, PageError> {
    alert_form(state, session, id, false, form).await
}

async fn resolve(
    State(state): State<Shared>,
    session: Session,
    Path(id): Path<u64>,
    Form(form): Form<NoteForm>,
) -> Result<Response, PageError> {
    alert_form(state, session, id, true, form).await
}

#[derive(Debug, Default, Deserialize)]
struct WindowForm {
    #[serde(default)]
    csrf: String,
    #[serde(default, rename = "window-clinic")]
    clinic: String,
    /// `datetime-local`: "2026-12-01T18:00", La Réunion time.
    #[serde(default)]
    fin: String,
    #[serde(default)]
    motif: String,
    #[serde(default)]
    retour: String,
}

/// A `datetime-local` value in La Réunion time.
pub fn parse_local(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    let civil = jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M", text)
        .or_else(|_| jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M:%S", text))
        .ok()?;
    civil
        .to_zoned_datetime(clinic_zone())
        .ok()
        .map(|z| z.timestamp())
}

async fn add_window(
    State(state): State<Shared>,
    session: Session,
    Form(form): Form<WindowForm>,
) -> Result<Response, PageError> {
    session.check(&form.csrf)?;
    let ends_at = parse_local(&form.fin).ok_or_else(|| {
        PageError::from(ActionError::Invalid(format!(
            "fin {:?} : date et heure attendues (AAAA-MM-JJTHH:MM)",
            form.fin
        )))
    })?;
    let wanted = form.clinic.trim().to_owned();
    if wanted.is_empty() {
        return Err(ActionError::Invalid("choisissez un cabinet".into()).into());
    }
    // An id from the list, or a name typed where there are too many clinics for a list.
    let collector = state.collector.clone();
    let clinic_id = blocking(move || {
        let clinics = data::clinics(&collector)?;
        if clinics.iter().any(|c| c.id == wanted) {
            return Ok(wanted);
        }
        let named: Vec<_> = clinics
            .iter()
            .filter(|c| c.name.to_lowercase() == wanted.to_lowercase())
            .collect();
        match named.as_slice() {
            [one] => Ok(one.id.clone()),
            [] => Err(ActionError::NotFound(format!("cabinet « {wanted} » introuvable")).into()),
            _ => Err(ActionError::Invalid(format!(
                "plusieurs cabinets s'appellent « {wanted} » : donnez son identifiant"
            ))
            .into()),
        }
    })
    .await?;
    actions::add_window(
        state.collector.clone(),
        session.actor,
        clinic_id,
        ends_at,
        &form.motif,
    )
    .await?;
    Ok(Redirect::to(&back_to(&form.retour, "/alertes")).into_response())
}

async fn end_window(
    State(state): State<Shared>,
    session: Session,
    Path(id): Path<u64>,
    Form(form): Form<NoteForm>,
) -> Result<Response, PageError> {
    session.check(&form.csrf)?;
    actions::end_window(state.collector.clone(), session.actor, id).await?;
    Ok(Redirect::to(&back_to(&form.retour, "/alertes")).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct ClinicsQuery {
    #[serde(default)]
    contrat: String,
    #[serde(default)]
    recherche: String,
    #[serde(default)]
    page: Option<usize>,
}

async fn clinics_page(
    State(state): State<Shared>,
    session: Session,
    Query(query): Query<ClinicsQuery>,
) -> Result<Markup, PageError> {
    let collector = state.collector.clone();
    let (clinics, alerts) = blocking(move || {
        Ok((
            data::clinics(&collector)?,
            data::alert_views(&collector, None, false)?,
        ))
    })
    .await?;
    let mut open: HashMap<String, usize> = HashMap::new();
    for a in alerts.iter().filter(|a| a.state == "open") {
        *open.entry(a.clinic_id.clone()).or_default() += 1;
    }
    Ok(pages::clinic::render_list(
        &session.viewer,
        refresh(&state),
        &pages::clinic::ClinicsPage {
            clinics: &clinics,
            open_alerts: &open,
            tier: &query.contrat,
            search: &query.recherche,
            page: query.page.unwrap_or(1),
        },
    ))
}

async fn clinic_page(
    State(state): State<Shared>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let collector = state.collector.clone();
    let loaded = blocking(move || {
        let storage = &collector.storage;
        let Some(clinic) = storage.clinic(&id)? else {
            return Ok(None);
        };
        let agents = storage.list_agents(Some(&id))?;
        let mut devices = Vec::new();
        let mut jobs = Vec::new();
        for agent in &agents {
            for device in storage.devices(&agent.id)? {
                devices.push((agent.hostname.clone(), device));
            }
            let declared = storage.declared_jobs(&agent.id)?;
            let runs = storage.backup_runs(&agent.id)?;
            let mut names: Vec<String> = declared.iter().map(|d| d.job.name.clone()).collect();
            for (job, job_runs) in &runs {
                if job_runs
                    .iter()
                    .all(|r| r.kind == crate::facts::RunKind::Backup)
                    && !names.contains(job)
                {
                    names.push(job.clone());
                }
            }
            for name in names {
                let of_job: Vec<_> = runs
                    .values()
                    .flatten()
                    .filter(|r| r.job_name() == name)
                    .cloned()
                    .collect();
                let (checks, backups): (Vec<_>, Vec<_>) = of_job
                    .into_iter()
                    .partition(|r| r.kind == crate::facts::RunKind::Check);
                let record = declared.iter().find(|d| d.job.name == name).cloned();
                let last_check = checks
                    .into_iter()
                    .max_by_key(|r| r.finished_at)
                    .or_else(|| record.as_ref().and_then(|d| d.job.last_check.clone()));
                jobs.push(pages::clinic::JobStrip {
                    agent_id: agent.id.clone(),
                    hostname: agent.hostname.clone(),
                    job: name,
                    runs: backups,
                    last_check,
                    declared: record,
                });
            }
        }
        let tickets: Vec<_> = data::ticket_views(&collector)?
            .into_iter()
            .filter(|t| t.clinic_id == id)
            .collect();
        let alerts = data::alert_views(&collector, Some(&id), false)?;
        let hours = storage
            .clinic_section(&id)?
            .filter(|section| section.opening_hours.is_some())
            .map(|section| format!("{} ({})", section.label(), section.time_zone));
        Ok(Some((
            clinic,
            agents,
            devices,
            jobs,
            tickets,
            alerts,
            collector.alerts.now(),
            hours,
        )))
    })
    .await?;
    let Some((clinic, agents, devices, jobs, tickets, alerts, now, hours)) = loaded else {
        return Err(PageError::not_found("Ce cabinet n'existe pas."));
    };
    Ok(pages::clinic::render(
        &session.viewer,
        refresh(&state),
        &pages::clinic::ClinicPage {
            clinic: &clinic,
            agents: &agents,
            devices: &devices,
            jobs: &jobs,
            tickets: &tickets,
            alerts: &alerts,
            now,
            hours,
        },
    ))
}

#[derive(Debug, Default, Deserialize)]
struct ReportQuery {
    /// "2026-11"; empty: last month.
    #[serde(default)]
    mois: String,
}

/// The clinic's monthly report as a PDF download, with the collector's configured SLAs.
async fn clinic_report(
    State(state): State<Shared>,
    _session: Session,
    Path(id): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, PageError> {
    let collector = state.collector.clone();
    let now = collector.alerts.now();
    let month = if query.mois.trim().is_empty() {
        crate::report::Month::containing(now, &clinic_zone()).previous()
    } else {
        query.mois.trim().parse().map_err(|_| PageError {
            status: StatusCode::BAD_REQUEST,
            title: "Requête refusée",
            text: format!("« {} » n'est pas un mois comme 2026-11.", query.mois),
        })?
    };
    let report = blocking(move || {
        let Some(clinic) = collector.storage.clinic(&id)? else {
            return Ok(None);
        };
        let context = crate::report::schedule::context_of(&collector.config);
        let (pdf, _) =
            crate::report::monthly_pdf_with(&collector.storage, &id, month, now, &context)
                .map_err(PageError::internal)?;
        Ok(Some((
            pdf,
            crate::report::file_name(&clinic.name, month, "pdf"),
        )))
    })
    .await?;
    let Some((pdf, name)) = report else {
        return Err(PageError::not_found("Ce cabinet n'existe pas."));
    };
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .map_err(PageError::internal)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pdf"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        pdf,
    )
        .into_response())
}

#[derive(Debug, Default, Deserialize)]
struct TierForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    contrat: String,
}

async fn change_tier(
    State(state): State<Shared>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<TierForm>,
) -> Result<Response, PageError> {
    session.check(&form.csrf)?;
    actions::set_tier(
        state.collector.clone(),
        session.actor,
        id.clone(),
        &form.contrat,
    )
    .await?;
    Ok(Redirect::to(&format!("/cabinets/{}", encode(&id))).into_response())
}

/// Reports read for the disk trend: about a day and a half of snapshots every five minutes.
const TREND_REPORTS: usize = 600;
/// Points drawn per disk at most.
const TREND_POINTS: usize = 60;

async fn agent_page(
    State(state): State<Shared>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    let collector = state.collector.clone();
    let loaded = blocking(move || {
        let storage = &collector.storage;
        if uuid::Uuid::parse_str(&id).is_err() {
            return Ok(None);
        }
        let Some(agent) = storage.agent(&id)? else {
            return Ok(None);
        };
        let view = data::agent_view(&collector, &agent)?;
        let clinic = storage.clinic(&agent.clinic_id)?;
        use crate::storage::FactKind;
        let updates = storage.latest_fact(&id, FactKind::OsUpdates)?;
        let antivirus = storage.latest_fact(&id, FactKind::Antivirus)?;
        let software = storage.latest_fact(&id, FactKind::Software)?;
        let history = disk_history(&storage.newest_reports(&id, TREND_REPORTS)?);
        let alerts: Vec<_> = data::alert_views(&collector, Some(&agent.clinic_id), false)?
            .into_iter()
            .filter(|a| a.agent_id == id)
            .collect();
        Ok(Some((
            agent,
            view,
            clinic,
            updates,
            antivirus,
            software,
            history,
            alerts,
            collector.alerts.now(),
        )))
    })
    .await?;
    let Some((agent, view, clinic, updates, antivirus, software, history, alerts, now)) = loaded
    else {
        return Err(PageError::not_found("Ce poste n'existe pas."));
    };
    Ok(pages::agent::render(
        &session.viewer,
        refresh(&state),
        &pages::agent::AgentPage {
            agent: &agent,
            view: &view,
            clinic: clinic.as_ref(),
            updates: updates.as_ref(),
            antivirus: antivirus.as_ref(),
            software: software.as_ref(),
            references: &state.collector.config.alerts.software,
            disk_history: &history,
            alerts: &alerts,
            now,
        },
    ))
}

/// The disks of each system snapshot among `reports` (newest first), oldest first, thinned to
/// [`TREND_POINTS`].
fn disk_history(
    reports: &[crate::storage::StoredReport],
) -> Vec<(Timestamp, Vec<crate::model::Disk>)> {
    use prost::Message as _;
    use vigie_proto::v1::report::Payload;
    let mut samples: Vec<(Timestamp, Vec<crate::model::Disk>)> = reports
        .iter()
        .filter_map(|stored| {
            let report = vigie_proto::v1::Report::decode(stored.bytes.as_slice()).ok()?;
            let Some(Payload::SystemSnapshot(snapshot)) = report.payload.as_ref() else {
                return None;
            };
            let at = report
                .collected_at
                .as_ref()
                .and_then(crate::server::convert::timestamp_from_proto)
                .or(stored.received_at)?;
            Some((
                at,
                crate::server::convert::snapshot_from_proto(snapshot).disks,
            ))
        })
        .collect();
    samples.sort_by_key(|(at, _)| *at);
    let step = samples.len().div_ceil(TREND_POINTS).max(1);
    let last = samples.len().saturating_sub(1);
    samples
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i == last)
        .map(|(_, s)| s)
        .collect()
}

async fn tickets_page(State(state): State<Shared>, session: Session) -> Result<Markup, PageError> {
    let collector = state.collector.clone();
    let tickets = blocking(move || Ok(data::ticket_views(&collector)?)).await?;
    Ok(pages::tickets::render(
        &session.viewer,
        refresh(&state),
        &tickets,
        &state.collector.escalation.sink_names(),
    ))
}

/// Audit entries the journal shows.
const JOURNAL_ROWS: usize = 200;

async fn journal_page(State(state): State<Shared>, session: Session) -> Result<Markup, PageError> {
    let storage = state.collector.storage.clone();
    let entries = blocking(move || Ok(storage.audit_latest(JOURNAL_ROWS)?)).await?;
    Ok(pages::journal::render(
        &session.viewer,
        refresh(&state),
        &entries,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_only_go_back_to_this_site() {
        assert_eq!(back_to("/alertes?etat=all", "/"), "/alertes?etat=all");
        for outside in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil",
            "alertes",
        ] {
            assert_eq!(back_to(outside, "/"), "/", "{outside}");
        }
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; vigie_session=abc; vigie_login=xyz"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "b"), None);
    }

    #[test]
    fn window_ends_are_read_in_reunion_time() {
        let at = parse_local("2026-12-01T18:00").expect("parses");
        assert_eq!(at.to_string(), "2026-12-01T14:00:00Z");
        assert!(parse_local("demain").is_none());
    }
}
