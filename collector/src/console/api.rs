//! `/api/v1`: JSON for scripts, with a bearer token (`vigie-collector api-token create`).
//! The objects are the admin CLI's `--json` ones; the permissions are the pages' (a
//! technician token acknowledges and resolves, only an admin token changes a tier). Without a
//! valid token: 401 and `WWW-Authenticate: Bearer`. Errors are `{"error": "..."}`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::actions::{self, ActionError};
use super::auth::{Actor, api_token_of};
use super::data;
use super::web::{ClientAddr, Shared};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/clinics", get(clinics))
        .route("/clinics/{id}/tier", post(set_tier))
        .route("/agents", get(agents))
        .route("/alerts", get(alerts))
        .route("/alerts/{id}/ack", post(acknowledge))
        .route("/alerts/{id}/resolve", post(resolve))
        .route("/tickets", get(tickets))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()) })
}

#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(json!({ "error": self.1 }))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"vigie\""),
            );
        }
        response
    }
}

impl From<ActionError> for ApiError {
    fn from(error: ActionError) -> Self {
        let status = match &error {
            ActionError::Forbidden(_) => StatusCode::FORBIDDEN,
            ActionError::NotFound(_) => StatusCode::NOT_FOUND,
            ActionError::Invalid(_) => StatusCode::BAD_REQUEST,
            ActionError::Conflict(_) => StatusCode::CONFLICT,
            _ => {
                tracing::error!(%error, "console API: request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError(status, error.to_string())
    }
}

impl From<data::DataError> for ApiError {
    fn from(error: data::DataError) -> Self {
        ActionError::from(error).into()
    }
}

/// The caller of an API request, from its bearer token.
pub struct Caller(Actor);

impl FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let unauthorized = || {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "a valid bearer token is required".into(),
            )
        };
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned())
            .ok_or_else(unauthorized)?;
        let storage = state.collector.storage.clone();
        let record = tokio::task::spawn_blocking(move || api_token_of(&storage, &token))
            .await
            .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "task failed".into()))?
            .map_err(|e| ApiError::from(ActionError::from(e)))?
            .ok_or_else(unauthorized)?;
        let address = parts
            .extensions
            .get::<ClientAddr>()
            .map_or_else(|| "inconnue".to_owned(), |a| a.0.ip().to_string());
        Ok(Caller(Actor {
            name: format!("api:{}", record.name),
            role: record.role,
            address,
        }))
    }
}

async fn read<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, data::DataError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "task failed".into()))?
        .map_err(ApiError::from)
}

async fn clinics(
    State(state): State<Shared>,
    _caller: Caller,
) -> Result<Json<Vec<crate::output::ClinicView>>, ApiError> {
    let collector = state.collector.clone();
    Ok(Json(read(move || data::clinic_views(&collector)).await?))
}

#[derive(Debug, Default, Deserialize)]
struct ClinicFilter {
    #[serde(default)]
    clinic: Option<String>,
    #[serde(default)]
    all: bool,
}

async fn agents(
    State(state): State<Shared>,
    _caller: Caller,
    Query(filter): Query<ClinicFilter>,
) -> Result<Json<Vec<crate::output::AgentView>>, ApiError> {
    let collector = state.collector.clone();
    Ok(Json(
        read(move || data::agent_views(&collector, filter.clinic.as_deref())).await?,
    ))
}

async fn alerts(
    State(state): State<Shared>,
    _caller: Caller,
    Query(filter): Query<ClinicFilter>,
) -> Result<Json<Vec<crate::alert_output::AlertView>>, ApiError> {
    let collector = state.collector.clone();
    Ok(Json(
        read(move || data::alert_views(&collector, filter.clinic.as_deref(), filter.all)).await?,
    ))
}

async fn tickets(
    State(state): State<Shared>,
    _caller: Caller,
) -> Result<Json<Vec<crate::ticket_output::TicketView>>, ApiError> {
    let collector = state.collector.clone();
    Ok(Json(read(move || data::ticket_views(&collector)).await?))
}

#[derive(Debug, Default, Deserialize)]
struct NoteBody {
    #[serde(default)]
    note: String,
}

#[derive(Debug, Default, Deserialize)]
struct TierBody {
    tier: String,
}

/// A JSON body, or `T::default()` when there is none.
fn body<T: serde::de::DeserializeOwned + Default>(bytes: &Bytes) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

async fn acknowledge(
    State(state): State<Shared>,
    Caller(actor): Caller,
    Path(id): Path<u64>,
    bytes: Bytes,
) -> Result<Json<crate::alert_output::AlertView>, ApiError> {
    let note: NoteBody = body(&bytes)?;
    Ok(Json(
        actions::alert_action(state.collector.clone(), actor, id, false, &note.note).await?,
    ))
}

async fn resolve(
    State(state): State<Shared>,
    Caller(actor): Caller,
    Path(id): Path<u64>,
    bytes: Bytes,
) -> Result<Json<crate::alert_output::AlertView>, ApiError> {
    let note: NoteBody = body(&bytes)?;
    Ok(Json(
        actions::alert_action(state.collector.clone(), actor, id, true, &note.note).await?,
    ))
}

async fn set_tier(
    State(state): State<Shared>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let request: TierBody = body(&bytes)?;
    let resolved =
        actions::set_tier(state.collector.clone(), actor, id.clone(), &request.tier).await?;
    Ok(Json(json!({
        "clinic_id": id,
        "tier": request.tier,
        "resolved_alert_ids": resolved,
    })))
}
