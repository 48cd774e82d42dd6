//! The figures of one benchmark run, the ratios between figures of the same run, and the goals
//! of the performance goals: printed as a table and written as JSON with the same numbers.

use serde_json::{Value, json};

/// One measured number (or one that could not be measured, with why).
#[derive(Debug, Clone)]
pub struct Figure {
    pub section: &'static str,
    pub key: String,
    pub label: String,
    pub value: Option<f64>,
    pub unit: &'static str,
    pub note: String,
}

/// `numerator / denominator`, both figures of this run.
#[derive(Debug, Clone)]
pub struct Ratio {
    pub label: String,
    pub numerator: String,
    pub denominator: String,
    pub value: Option<f64>,
}

/// A goal from the issue and whether this run met it.
#[derive(Debug, Clone)]
pub struct Goal {
    pub label: String,
    pub target: String,
    pub measured: String,
    pub met: Option<bool>,
}

#[derive(Debug, Default)]
pub struct Results {
    pub figures: Vec<Figure>,
    pub ratios: Vec<Ratio>,
    pub goals: Vec<Goal>,
    pub context: Vec<(String, Value)>,
}

impl Results {
    pub fn figure(
        &mut self,
        section: &'static str,
        key: &str,
        label: &str,
        value: f64,
        unit: &'static str,
        note: &str,
    ) {
        self.figures.push(Figure {
            section,
            key: key.to_owned(),
            label: label.to_owned(),
            value: Some(value),
            unit,
            note: note.to_owned(),
        });
    }

    /// A row that has no number (yet), with the reason.
    pub fn missing(&mut self, section: &'static str, key: &str, label: &str, why: &str) {
        self.figures.push(Figure {
            section,
            key: key.to_owned(),
            label: label.to_owned(),
            value: None,
            unit: "",
            note: why.to_owned(),
        });
    }

    pub fn value(&self, key: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|f| f.key == key)
            .and_then(|f| f.value)
    }

    /// Records `numerator / denominator` from figures already recorded.
    pub fn ratio(&mut self, label: &str, numerator: &str, denominator: &str) -> Option<f64> {
        let value = match (self.value(numerator), self.value(denominator)) {
            (Some(n), Some(d)) if d != 0.0 => Some(n / d),
            _ => None,
        };
        self.ratios.push(Ratio {
            label: label.to_owned(),
            numerator: numerator.to_owned(),
            denominator: denominator.to_owned(),
            value,
        });
        value
    }

    pub fn goal(&mut self, label: &str, target: &str, measured: String, met: Option<bool>) {
        self.goals.push(Goal {
            label: label.to_owned(),
            target: target.to_owned(),
            measured,
            met,
        });
    }

    pub fn context(&mut self, key: &str, value: Value) {
        self.context.push((key.to_owned(), value));
    }

    pub fn to_json(&self) -> Value {
        let figures: Vec<Value> = self
            .figures
            .iter()
            .map(|f| {
                json!({"section": f.section, "key": f.key, "label": f.label,
                       "value": f.value, "unit": f.unit, "note": f.note})
            })
            .collect();
        let ratios: Vec<Value> = self
            .ratios
            .iter()
            .map(|r| {
                json!({"label": r.label, "numerator": r.numerator,
                       "denominator": r.denominator, "value": r.value})
            })
            .collect();
        let goals: Vec<Value> = self
            .goals
            .iter()
            .map(|g| {
                json!({"goal": g.label, "target": g.target, "measured": g.measured, "met": g.met})
            })
            .collect();
        let context: serde_json::Map<String, Value> = self.context.iter().cloned().collect();
        json!({"context": context, "figures": figures, "ratios": ratios, "goals": goals})
    }

    /// The table a person reads.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut section = "";
        for f in &self.figures {
            if f.section != section {
                section = f.section;
                out.push_str(&format!("\n== {section} ==\n"));
            }
            let value = f
                .value
                .map_or_else(|| "—".to_owned(), |v| format!("{} {}", fmt(v), f.unit));
            let note = if f.note.is_empty() {
                String::new()
            } else {
                format!("  ({})", f.note)
            };
            out.push_str(&format!("  {:<58} {:>16}{note}\n", f.label, value));
        }
        if !self.ratios.is_empty() {
            out.push_str("\n== ratios (same run) ==\n");
            for r in &self.ratios {
                let value = r
                    .value
                    .map_or_else(|| "—".to_owned(), |v| format!("{v:.3}"));
                out.push_str(&format!("  {:<58} {value:>16}\n", r.label));
            }
        }
        if !self.goals.is_empty() {
            out.push_str("\n== goals ==\n");
            for g in &self.goals {
                let verdict = match g.met {
                    Some(true) => "MET",
                    Some(false) => "MISSED",
                    None => "n/a",
                };
                out.push_str(&format!(
                    "  {:<7} {:<48} target {:<22} measured {}\n",
                    verdict, g.label, g.target, g.measured
                ));
            }
        }
        out
    }
}

/// Three significant digits or so, without scientific notation.
pub fn fmt(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}
