//! Windows event log records as `Get-WinEvent ... | Select-Object Id, RecordId, Level,
//! TimeCreated, Message | ConvertTo-Json` prints them (one object, or an array), and the thin
//! adapter that runs that query on Windows. Windows PowerShell 5.1 writes `TimeCreated` as
//! `/Date(ms)/`, PowerShell 7 as an ISO time; both are read.

use jiff::Timestamp;
use serde::Deserialize;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("not Get-WinEvent JSON: {0}")]
    Json(String),
    #[error("event time {0:?} is not a time")]
    Time(String),
}

/// One event, as far as the backup readers care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: u32,
    pub record_id: u64,
    /// 1 critical, 2 error, 3 warning, 4 information.
    pub level: u8,
    pub time: Timestamp,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawEvent {
    id: u32,
    #[serde(default)]
    record_id: u64,
    #[serde(default)]
    level: u8,
    time_created: serde_json::Value,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<RawEvent>),
    One(RawEvent),
}

/// Parses the JSON; empty output (no event matched) is no event. Pure; never panics.
pub fn parse(text: &str) -> Result<Vec<Event>, ParseError> {
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let raw = match serde_json::from_str::<OneOrMany>(text) {
        Ok(OneOrMany::Many(events)) => events,
        Ok(OneOrMany::One(event)) => vec![event],
        Err(e) => return Err(ParseError::Json(e.to_string())),
    };
    let mut events = raw
        .into_iter()
        .map(|e| {
            Ok(Event {
                id: e.id,
                record_id: e.record_id,
                level: e.level,
                time: time(&e.time_created)?,
                message: e.message.unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, ParseError>>()?;
    events.sort_by_key(|e| (e.time, e.record_id));
    Ok(events)
}

fn time(value: &serde_json::Value) -> Result<Timestamp, ParseError> {
    let bad = || ParseError::Time(super::bounded(&value.to_string(), 40));
    let text = value.as_str().ok_or_else(bad)?;
    if let Some(ms) = text
        .strip_prefix("/Date(")
        .and_then(|rest| rest.strip_suffix(")/"))
    {
        // "/Date(1764268212345)/", sometimes with an offset suffix: "/Date(1764268212345+0400)/".
        let digits = ms
            .char_indices()
            .find(|(i, c)| *i > 0 && (*c == '+' || *c == '-'))
            .map_or(ms, |(i, _)| &ms[..i]);
        let ms: i64 = digits.parse().map_err(|_| bad())?;
        return Timestamp::from_millisecond(ms).map_err(|_| bad());
    }
    text.parse::<Timestamp>().map_err(|_| bad())
}

/// Reads a product's job-result events and names the runs after the configured job: the
/// events know only the product's own job name, the collector knows the declared one.
pub fn read_runs(
    job: &super::BackupJob,
    log: &str,
    ids: &[u32],
    max_events: u32,
    parse: impl Fn(&str) -> Result<Vec<super::BackupRun>, ParseError>,
) -> Result<Vec<super::BackupRun>, String> {
    let json = query(log, ids, max_events)?;
    let runs = parse(&json).map_err(|e| e.to_string())?;
    Ok(runs
        .into_iter()
        .map(|mut run| {
            job.name.clone_into(&mut run.job);
            job.target.clone_into(&mut run.target);
            run
        })
        .collect())
}

/// Runs the query for `ids` in `log` through PowerShell (Windows only) and returns its JSON.
#[cfg(windows)]
pub fn query(log: &str, ids: &[u32], max_events: u32) -> Result<String, String> {
    let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
    let script = format!(
        "Get-WinEvent -FilterHashtable @{{LogName='{log}'; Id={}}} -MaxEvents {max_events} \
         -ErrorAction SilentlyContinue | Select-Object Id, RecordId, Level, \
         @{{n='TimeCreated';e={{$_.TimeCreated.ToUniversalTime().ToString('o')}}}}, Message \
         | ConvertTo-Json -Depth 2 -Compress",
        ids.join(",")
    );
    let output = crate::command::powershell(&script)
        .timeout(std::time::Duration::from_secs(60))
        .run()
        .map_err(|e| e.to_string())?;
    if !output.success() {
        return Err(output.failure_summary());
    }
    Ok(output.stdout_text())
}

/// Not on this OS: the source fails with a clear error fact.
#[cfg(not(windows))]
pub fn query(log: &str, _ids: &[u32], _max_events: u32) -> Result<String, String> {
    Err(format!("the {log:?} event log exists only on Windows"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_powershell_time_formats_and_single_objects() {
        let one = r#"{"Id":4,"RecordId":7,"Level":4,"TimeCreated":"/Date(1764268212345)/","Message":"ok"}"#;
        let events = parse(one).expect("parses");
        assert_eq!(events[0].time.to_string(), "2025-11-27T18:30:12.345Z");
        let many = r#"[{"Id":5,"RecordId":8,"Level":2,"TimeCreated":"2026-11-27T18:30:12.0000000Z"},
                       {"Id":4,"RecordId":7,"Level":4,"TimeCreated":"/Date(1764268212345+0400)/"}]"#;
        let events = parse(many).expect("parses");
        assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(parse("  ").expect("empty"), []);
    }

    #[test]
    fn broken_input_is_an_error() {
        assert!(parse("{").is_err());
        assert!(parse(r#"{"Id":4,"TimeCreated":"/Date(x)/"}"#).is_err());
        assert!(parse(r#"{"Id":4,"TimeCreated":12}"#).is_err());
        assert!(parse(r#"{"Id":-4,"TimeCreated":"/Date(1)/"}"#).is_err());
    }
}
