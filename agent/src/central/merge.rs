//! Layers of configuration text, later layers winning key by key: the clinic's version, then
//! the agent's own, then the local `agent.toml`. Lists of named entries (`[[lan.targets]]`,
//! `[[backup.jobs]]`, `[[software.watch]]`) merge by `name`: a later entry replaces the earlier
//! one of the same name, others are added. Any other value is replaced whole. Each value keeps
//! where it came from (`config show --effective`).

use std::collections::BTreeMap;

use toml::{Table, Value};

/// The merged table and, for each value (`lan.targets["ct"].address`), its origin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layered {
    pub table: Table,
    pub origins: BTreeMap<String, String>,
}

impl Layered {
    /// Puts `layer` over what is there, noting `origin` for every value it sets.
    pub fn push(&mut self, layer: &Table, origin: &str) {
        merge_table(&mut self.table, layer, "", origin, &mut self.origins);
    }

    /// Every value with its key path and origin, in key order.
    pub fn values(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        leaves(&self.table, "", &mut |path, value| {
            let origin = self.origins.get(&path).cloned().unwrap_or_default();
            out.push((path, value, origin));
        });
        out
    }

    /// The merged table as TOML text.
    pub fn text(&self) -> String {
        toml::to_string(&self.table).unwrap_or_default()
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn element_path(prefix: &str, name: &str) -> String {
    format!("{prefix}[{name:?}]")
}

/// The `name` of every entry, if every entry is a table with one.
fn names(items: &[Value]) -> Option<Vec<&str>> {
    items
        .iter()
        .map(|v| v.as_table()?.get("name")?.as_str())
        .collect()
}

fn merge_table(
    base: &mut Table,
    over: &Table,
    prefix: &str,
    origin: &str,
    origins: &mut BTreeMap<String, String>,
) {
    for (key, value) in over {
        let path = join(prefix, key);
        match (base.get_mut(key), value) {
            (Some(Value::Table(old)), Value::Table(new)) => {
                merge_table(old, new, &path, origin, origins);
            }
            (Some(Value::Array(old)), Value::Array(new))
                if names(old).is_some() && names(new).is_some() =>
            {
                for item in new {
                    let name = item
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let at = element_path(&path, &name);
                    forget(origins, &at);
                    note(item, &at, origin, origins);
                    match old
                        .iter_mut()
                        .find(|v| v.get("name").and_then(Value::as_str) == Some(name.as_str()))
                    {
                        Some(slot) => *slot = item.clone(),
                        None => old.push(item.clone()),
                    }
                }
            }
            _ => {
                forget(origins, &path);
                note(value, &path, origin, origins);
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Drops the origins of what a replaced value held.
fn forget(origins: &mut BTreeMap<String, String>, path: &str) {
    origins.retain(|p, _| {
        !(p == path || p.starts_with(&format!("{path}.")) || p.starts_with(&format!("{path}[")))
    });
}

fn note(value: &Value, path: &str, origin: &str, origins: &mut BTreeMap<String, String>) {
    match value {
        Value::Table(table) => {
            for (key, v) in table {
                note(v, &join(path, key), origin, origins);
            }
        }
        Value::Array(items) if names(items).is_some_and(|n| !n.is_empty()) => {
            for item in items {
                let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
                note(item, &element_path(path, name), origin, origins);
            }
        }
        _ => {
            origins.insert(path.to_owned(), origin.to_owned());
        }
    }
}

fn leaves(table: &Table, prefix: &str, out: &mut impl FnMut(String, String)) {
    for (key, value) in table {
        leaf(value, &join(prefix, key), out);
    }
}

fn leaf(value: &Value, path: &str, out: &mut impl FnMut(String, String)) {
    match value {
        Value::Table(table) => leaves(table, path, out),
        Value::Array(items) if names(items).is_some_and(|n| !n.is_empty()) => {
            for item in items {
                let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
                leaf(item, &element_path(path, name), out);
            }
        }
        other => out(path.to_owned(), other.to_string()),
    }
}

/// Masks secrets (SNMP communities and pass phrases) before a table leaves the machine.
pub fn masked(table: &Table) -> Table {
    let mut out = table.clone();
    mask_table(&mut out);
    out
}

fn mask_table(table: &mut Table) {
    for (key, value) in table.iter_mut() {
        if key.contains("password") || key == "community" {
            *value = Value::String("***".to_owned());
        } else {
            mask_value(value);
        }
    }
}

fn mask_value(value: &mut Value) {
    match value {
        Value::Table(t) => mask_table(t),
        Value::Array(items) => items.iter_mut().for_each(mask_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        text.parse().expect("toml")
    }

    #[test]
    fn later_layers_win_key_by_key_and_named_lists_merge_by_name() {
        let mut layered = Layered::default();
        layered.push(
            &table(
                "[lan]\ninterval = \"5m\"\nprobe_timeout = \"5s\"\n[[lan.targets]]\nname = \"a\"\naddress = \"10.0.0.1\"\n[[lan.targets]]\nname = \"b\"\naddress = \"10.0.0.2\"\n",
            ),
            "clinic v1",
        );
        layered.push(
            &table(
                "[lan]\ninterval = \"1m\"\n[[lan.targets]]\nname = \"b\"\naddress = \"10.0.0.3\"\n",
            ),
            "agent v2",
        );
        layered.push(&table("[updates]\nenabled = false\n"), "local");
        let values = layered.values();
        let get = |key: &str| {
            values
                .iter()
                .find(|(k, _, _)| k == key)
                .map(|(_, v, o)| (v.as_str(), o.as_str()))
        };
        assert_eq!(get("lan.interval"), Some(("\"1m\"", "agent v2")));
        assert_eq!(get("lan.probe_timeout"), Some(("\"5s\"", "clinic v1")));
        assert_eq!(
            get("lan.targets[\"a\"].address"),
            Some(("\"10.0.0.1\"", "clinic v1"))
        );
        assert_eq!(
            get("lan.targets[\"b\"].address"),
            Some(("\"10.0.0.3\"", "agent v2"))
        );
        assert_eq!(get("updates.enabled"), Some(("false", "local")));
        let merged = table(&layered.text());
        assert_eq!(merged["lan"]["targets"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn secrets_are_masked() {
        let t = masked(&table(
            "[[lan.targets]]\nname = \"p\"\nprobes = [{ type = \"snmp\", community = \"secret\", auth_password = \"longsecret\" }]\n",
        ));
        let text = toml::to_string(&t).expect("toml");
        assert!(!text.contains("secret\""), "{text}");
        assert!(text.contains("***"), "{text}");
    }
}
