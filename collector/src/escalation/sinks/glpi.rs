//! The GLPI sink, over GLPI's REST API (`apirest.php`): `initSession` with the App-Token and
//! the user token, `POST /Ticket` in the clinic's entity, `POST /Ticket/:id/ITILFollowup`
//! (after `GET` of the same, so a retried note is not posted twice: each carries its
//! reference), `PUT /Ticket/:id` with status 5 (solved), `GET /search/Ticket` on the name to find a
//! ticket by its tag, and `killSession` when the worker is done for now. An expired or killed
//! session (401 `ERROR_SESSION_TOKEN_INVALID`) is opened again once.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::{Lookup, SinkError, TicketSink, http_client, http_error, status_error};
use crate::escalation::config::GlpiConfig;
use crate::escalation::ticket::{TicketDraft, TicketNote};

/// GLPI's ticket status "solved".
pub const STATUS_SOLVED: u8 = 5;
/// GLPI's ticket type "incident".
const TYPE_INCIDENT: u8 = 1;
/// Search option ids of a ticket: 1 = name (title), 2 = id.
const FIELD_NAME: &str = "1";
const FIELD_ID: &str = "2";

#[derive(Debug)]
pub struct GlpiSink {
    base: String,
    app_token: String,
    user_token: String,
    entities: BTreeMap<String, u64>,
    default_entity: u64,
    client: reqwest::Client,
    session: Mutex<Option<String>>,
}

/// Plain text as GLPI's rich-text content.
fn html(text: &str) -> String {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!("<p>{}</p>", escaped.replace('\n', "<br>"))
}

impl GlpiSink {
    pub fn new(config: &GlpiConfig) -> Result<Self, SinkError> {
        reqwest::Url::parse(&config.url).map_err(|e| SinkError::Config(format!("url: {e}")))?;
        Ok(GlpiSink {
            base: config.url.trim_end_matches('/').to_owned(),
            app_token: config.app_token.clone(),
            user_token: config.user_token.clone(),
            entities: config.entities.clone(),
            default_entity: config.default_entity,
            client: http_client(config.timeout_seconds, config.ca_file.as_deref())?,
            session: Mutex::new(None),
        })
    }

    fn entity(&self, draft: &TicketDraft) -> u64 {
        self.entities
            .get(&draft.clinic_id)
            .or_else(|| self.entities.get(&draft.clinic_name))
            .copied()
            .unwrap_or(self.default_entity)
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
    ) -> reqwest::RequestBuilder {
        let url = reqwest::Url::parse(&format!("{}/{path}", self.base)).map(|mut url| {
            if !query.is_empty() {
                url.query_pairs_mut().extend_pairs(query);
            }
            url
        });
        match url {
            Ok(url) => self.client.request(method, url),
            // Checked in `new`; a path of ours cannot make it invalid.
            Err(_) => self.client.request(method, self.base.as_str()),
        }
        .header("App-Token", &self.app_token)
        .header("Content-Type", "application/json")
    }

    async fn init_session(&self) -> Result<String, SinkError> {
        let response = self
            .request(Method::GET, "initSession", &[])
            .header("Authorization", format!("user_token {}", self.user_token))
            .send()
            .await
            .map_err(|e| http_error(&e))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(status_error(status, &text));
        }
        serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["session_token"].as_str().map(str::to_owned))
            .ok_or_else(|| SinkError::Transient(format!("initSession answered {text:?}")))
    }

    /// One API call in a session, opening it (again, once) when needed. Returns the body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<String, SinkError> {
        let mut session = self.session.lock().await;
        for fresh in [false, true] {
            let token = match session.as_ref() {
                Some(token) if !fresh => token.clone(),
                _ => {
                    let token = self.init_session().await?;
                    *session = Some(token.clone());
                    token
                }
            };
            let mut request = self
                .request(method.clone(), path, query)
                .header("Session-Token", token);
            if let Some(body) = body {
                request = request.body(body.to_string());
            }
            let response = request.send().await.map_err(|e| http_error(&e))?;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            if status == StatusCode::UNAUTHORIZED && text.contains("ERROR_SESSION_TOKEN_INVALID") {
                *session = None;
                if !fresh {
                    continue;
                }
            }
            if !status.is_success() {
                return Err(status_error(status, &text));
            }
            return Ok(text);
        }
        Err(SinkError::Transient("GLPI session refused twice".into()))
    }
}

impl TicketSink for GlpiSink {
    async fn create(&self, draft: &TicketDraft) -> Result<String, SinkError> {
        let input = json!({ "input": {
            "name": draft.title,
            "content": html(&draft.content),
            "urgency": draft.priority.clamp(1, 5),
            "priority": draft.priority.clamp(1, 5),
            "entities_id": self.entity(draft),
            "type": TYPE_INCIDENT,
        }});
        let text = self.call(Method::POST, "Ticket", &[], Some(&input)).await?;
        let answer: Value = serde_json::from_str(&text)
            .map_err(|_| SinkError::Unknown(format!("POST /Ticket answered {text:?}")))?;
        match &answer["id"] {
            Value::Number(n) => Ok(n.to_string()),
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            _ => Err(SinkError::Unknown(format!(
                "POST /Ticket answered {text:?}"
            ))),
        }
    }

    async fn find(&self, draft: &TicketDraft) -> Result<Lookup, SinkError> {
        let query = [
            ("criteria[0][field]", FIELD_NAME),
            ("criteria[0][searchtype]", "contains"),
            ("criteria[0][value]", draft.tag.as_str()),
            ("forcedisplay[0]", FIELD_ID),
            ("forcedisplay[1]", FIELD_NAME),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let text = self
            .call(Method::GET, "search/Ticket", &query, None)
            .await?;
        let answer: Value = serde_json::from_str(&text)
            .map_err(|_| SinkError::Transient(format!("search answered {text:?}")))?;
        let rows = answer["data"].as_array().cloned().unwrap_or_default();
        let found = rows.iter().find_map(|row| {
            let name = row[FIELD_NAME].as_str().unwrap_or_default();
            if !name.contains(&draft.tag) {
                return None;
            }
            match &row[FIELD_ID] {
                Value::Number(n) => Some(n.to_string()),
                Value::String(s) => Some(s.clone()),
                _ => None,
            }
        });
        Ok(found.map_or(Lookup::NotFound, Lookup::Found))
    }

    async fn add_note(&self, ticket_id: &str, note: &TicketNote) -> Result<(), SinkError> {
        let id: u64 = ticket_id
            .parse()
            .map_err(|_| SinkError::Refused(format!("{ticket_id:?} is not a GLPI ticket id")))?;
        // The note's reference ends its text: a retry (after a lost answer, or after the
        // follow-up went through but the status did not) does not post it twice.
        let reference = format!("(ref. {})", note.key);
        let path = format!("Ticket/{id}/ITILFollowup");
        let all = [("range".to_owned(), "0-9999".to_owned())];
        let existing = self.call(Method::GET, &path, &all, None).await?;
        if !existing.contains(&reference) {
            let followup = json!({ "input": {
                "itemtype": "Ticket",
                "items_id": id,
                "content": html(&format!("{}\n{reference}", note.text)),
            }});
            self.call(Method::POST, &path, &[], Some(&followup)).await?;
        }
        if note.solves {
            let solved = json!({ "input": { "status": STATUS_SOLVED } });
            self.call(Method::PUT, &format!("Ticket/{id}"), &[], Some(&solved))
                .await?;
        }
        Ok(())
    }

    async fn end_round(&self) {
        let Some(token) = self.session.lock().await.take() else {
            return;
        };
        let result = self
            .request(Method::GET, "killSession", &[])
            .header("Session-Token", token)
            .send()
            .await;
        if let Err(error) = result {
            tracing::debug!(%error, "GLPI killSession failed");
        }
    }
}
