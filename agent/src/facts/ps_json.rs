//! Reading what Windows PowerShell 5.1's `ConvertTo-Json` writes: a lone object where a list
//! was meant (one result), `null` for none, and dates as `/Date(1709712000000)/`.

use jiff::Timestamp;
use serde::{Deserialize, Deserializer};

#[derive(Debug, thiserror::Error)]
pub enum PsJsonError {
    #[error("no JSON in the output")]
    Empty,
    #[error("invalid JSON: {0}")]
    Invalid(#[from] serde_json::Error),
}

/// Parses `ConvertTo-Json` output into a list, whether it holds an array, one object or
/// nothing (`null`, empty output is an error: the script did not run to its end).
pub fn parse_list<T: for<'de> Deserialize<'de>>(text: &str) -> Result<Vec<T>, PsJsonError> {
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err(PsJsonError::Empty);
    }
    let one_or_many: OneOrMany<T> = serde_json::from_str(text)?;
    Ok(one_or_many.into_vec())
}

/// Parses one object.
pub fn parse_one<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, PsJsonError> {
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err(PsJsonError::Empty);
    }
    Ok(serde_json::from_str(text)?)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    Many(Vec<T>),
    One(T),
    None(()),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::Many(v) => v,
            OneOrMany::One(t) => vec![t],
            OneOrMany::None(()) => Vec::new(),
        }
    }
}

/// For a field that may be a list, a lone value or `null`: `#[serde(deserialize_with = ...)]`.
pub fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(OneOrMany::<T>::deserialize(d)?.into_vec())
}

/// A date as PowerShell writes it: `/Date(1709712000000)/` (ms since the epoch, maybe with a
/// `+0400` offset suffix, which does not change the instant) or an RFC 3339 text.
pub fn parse_date(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Some(inner) = text
        .strip_prefix("/Date(")
        .and_then(|t| t.strip_suffix(")/"))
    {
        // The offset suffix starts at a sign after the first digit.
        let end = inner
            .char_indices()
            .skip(1)
            .find(|(_, c)| *c == '+' || *c == '-')
            .map_or(inner.len(), |(i, _)| i);
        let ms: i64 = inner[..end].parse().ok()?;
        // Windows writes 0 or year 1601 for "never".
        if ms <= 0 {
            return None;
        }
        return Timestamp::from_millisecond(ms).ok();
    }
    text.parse().ok()
}

/// Deserializes an optional PowerShell date; anything unreadable is `None`.
pub fn date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match value {
        Some(serde_json::Value::String(s)) => parse_date(&s),
        // `ConvertTo-Json -Depth` > 1 may write a DateTime as an object with a `value` field.
        Some(serde_json::Value::Object(o)) => {
            o.get("value").and_then(|v| v.as_str()).and_then(parse_date)
        }
        _ => None,
    })
}

/// Deserializes a value PowerShell may write as a string, a number or `null` into a string.
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match value {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let check = |input: &str, expected: Option<&str>| {
            assert_eq!(
                parse_date(input).map(|t| t.to_string()).as_deref(),
                expected,
                "{input:?}"
            );
        };
        check("/Date(1709712000000)/", Some("2024-03-06T08:00:00Z"));
        check("/Date(1709712000000+0400)/", Some("2024-03-06T08:00:00Z"));
        check("/Date(-11644473600000)/", None);
        check("/Date(0)/", None);
        check("/Date()/", None);
        check("/Date(99999999999999999999)/", None);
        check("2024-03-06T08:00:00Z", Some("2024-03-06T08:00:00Z"));
        check("2024-03-06T12:00:00+04:00", Some("2024-03-06T08:00:00Z"));
        check("hier", None);
        check("", None);
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Item {
        #[serde(rename = "A")]
        a: u32,
    }

    #[test]
    fn lists() {
        let check = |input: &str, expected: Option<Vec<u32>>| {
            let got = parse_list::<Item>(input)
                .ok()
                .map(|v| v.into_iter().map(|i| i.a).collect::<Vec<_>>());
            assert_eq!(got, expected, "{input:?}");
        };
        check("[{\"A\":1},{\"A\":2}]", Some(vec![1, 2]));
        check("{\"A\":1}", Some(vec![1]));
        check("\u{feff}\r\n{\"A\":1}\r\n", Some(vec![1]));
        check("null", Some(vec![]));
        check("", None);
        check("{\"A\":", None);
        check("\u{0}\u{1}", None);
    }
}
