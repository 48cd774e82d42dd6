//! The monthly clinic report: what was watched, what went wrong and how fast it was handled,
//! per contract tier, as a PDF in French and the same figures as JSON.
//!
//! - `month.rs`: a month and its bounds in the clinic's time zone.
//! - `figures.rs`: pure, stored facts → [`MonthlyFigures`] (injected `now` and zone).
//! - `gather.rs`: reads a clinic's facts from storage for `figures.rs`.
//! - `text.rs`: the French words (tiers, what each covers, support hours, formats).
//! - `pdf.rs`: renders the figures with krilla and the DejaVu fonts embedded in the binary.
//! - `schedule.rs`: `[reports]`, the monthly generation and e-mail delivery, once per clinic
//!   and month across restarts.

pub mod figures;
pub mod gather;
pub mod month;
pub mod pdf;
pub mod schedule;
pub mod text;

use jiff::Timestamp;

pub use figures::{MonthlyFigures, ReportContext};
pub use month::Month;

use crate::storage::{Storage, StorageError};

/// The MSP the report speaks for, unless `[reports]` says otherwise (the service description's).
pub const DEFAULT_MSP_NAME: &str = "Réunion Informatique";
pub const DEFAULT_MSP_PHONE: &str = "02 62 79 00 11";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cabinet {0} introuvable")]
    NoClinic(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("impossible de produire le PDF : {0}")]
    Pdf(String),
}

/// The month's figures of one clinic.
pub fn monthly_figures(
    storage: &Storage,
    clinic_id: &str,
    month: Month,
    now: Timestamp,
    context: &ReportContext,
) -> Result<MonthlyFigures, ReportError> {
    let clinic = storage
        .clinic(clinic_id)?
        .ok_or_else(|| ReportError::NoClinic(clinic_id.to_owned()))?;
    // The clinic's own time zone (`[clinic]` of its central configuration) counts its days.
    let mut context = context.clone();
    if let Some(section) = storage.clinic_section(&clinic.id)? {
        context.zone = section.zone();
    }
    let context = &context;
    let at = month.end(&context.zone).min(now);
    // Facts in force just before the month's end, not the first second of the next month.
    let at = at
        .checked_sub(jiff::SignedDuration::from_secs(1))
        .unwrap_or(at);
    let input = gather::month_input(storage, &clinic, at)?;
    Ok(figures::monthly_figures(&input, month, now, context))
}

/// The report of one clinic for `month`: its PDF and its figures (what the console offers
/// for download, with the default context: Réunion time, default SLAs).
pub fn monthly_pdf(
    storage: &Storage,
    clinic_id: &str,
    month: Month,
    now: Timestamp,
) -> Result<(Vec<u8>, MonthlyFigures), ReportError> {
    monthly_pdf_with(storage, clinic_id, month, now, &ReportContext::default())
}

pub fn monthly_pdf_with(
    storage: &Storage,
    clinic_id: &str,
    month: Month,
    now: Timestamp,
    context: &ReportContext,
) -> Result<(Vec<u8>, MonthlyFigures), ReportError> {
    let figures = monthly_figures(storage, clinic_id, month, now, context)?;
    let pdf = pdf::render(&figures, context).map_err(ReportError::Pdf)?;
    Ok((pdf, figures))
}

/// `<clinic-name>-2026-11.<ext>`, safe on every file system: accents dropped, anything but
/// letters and digits made a dash.
pub fn file_name(clinic_name: &str, month: Month, ext: &str) -> String {
    let mut stem = String::new();
    for c in clinic_name.chars().flat_map(fold_accent) {
        if c.is_ascii_alphanumeric() {
            stem.push(c);
        } else if !stem.ends_with('-') && !stem.is_empty() {
            stem.push('-');
        }
    }
    let mut stem: String = stem.trim_end_matches('-').chars().take(80).collect();
    if stem.is_empty() {
        stem.push_str("cabinet");
    }
    format!("{stem}-{month}.{ext}")
}

fn fold_accent(c: char) -> Vec<char> {
    let plain = match c {
        'à' | 'â' | 'ä' | 'á' | 'ã' => 'a',
        'À' | 'Â' | 'Ä' | 'Á' | 'Ã' => 'A',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'É' | 'È' | 'Ê' | 'Ë' => 'E',
        'î' | 'ï' | 'í' => 'i',
        'Î' | 'Ï' | 'Í' => 'I',
        'ô' | 'ö' | 'ó' | 'õ' => 'o',
        'Ô' | 'Ö' | 'Ó' | 'Õ' => 'O',
        'ù' | 'û' | 'ü' | 'ú' => 'u',
        'Ù' | 'Û' | 'Ü' | 'Ú' => 'U',
        'ç' => 'c',
        'Ç' => 'C',
        'ñ' => 'n',
        'œ' => return vec!['o', 'e'],
        'Œ' => return vec!['O', 'E'],
        'æ' => return vec!['a', 'e'],
        'Æ' => return vec!['A', 'E'],
        other => other,
    };
    vec![plain]
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod file_name_tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        let m: Month = "2026-11".parse().expect("month");
        let check = |name: &str, want: &str| assert_eq!(file_name(name, m, "pdf"), want, "{name}");
        check("Cabinet Dr Hoarau", "Cabinet-Dr-Hoarau-2026-11.pdf");
        check(
            "Radiologie de l'Ouest / Saint-Paul",
            "Radiologie-de-l-Ouest-Saint-Paul-2026-11.pdf",
        );
        check("Cœur & Santé", "Coeur-Sante-2026-11.pdf");
        check("../../etc", "etc-2026-11.pdf");
        check("   ", "cabinet-2026-11.pdf");
    }
}
