//! `report monthly` and `clinic set-contact`: through the running collector's admin interface
//! (the database is never opened here); the files are written where `--out` says.

use std::path::Path;

use anyhow::{Context as _, anyhow};
use vigie_proto::v1::{MonthlyReportRequest, SetClinicContactRequest};

use crate::cli::MonthlyReportArgs;
use crate::commands::status_error;
use crate::config::DataDir;
use crate::report::Month;

pub async fn run_monthly(data_dir: &DataDir, args: MonthlyReportArgs) -> anyhow::Result<()> {
    // Refuse a bad month before connecting.
    let month: Month = args.month.parse()?;
    let mut admin = crate::admin_client::connect(data_dir).await?;
    let answer = admin
        .monthly_report(MonthlyReportRequest {
            clinic_id: args.clinic.clone().unwrap_or_default(),
            all: args.all,
            month: month.to_string(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("impossible de créer {}", args.out.display()))?;
    if answer.reports.is_empty() {
        eprintln!("aucun cabinet");
    }
    for report in &answer.reports {
        let pdf = args.out.join(safe(&report.pdf_name)?);
        write(&pdf, &report.pdf)?;
        println!("{}", pdf.display());
        if args.json {
            let json = args.out.join(safe(&report.json_name)?);
            write(&json, report.figures_json.as_bytes())?;
            println!("{}", json.display());
        }
        // What the schedule did with it: a refusal must not go unseen.
        match report.delivery.as_str() {
            "sent" => eprintln!(
                "{} : envoyé à {} le {}",
                report.clinic_name,
                report.delivery_to,
                crate::time_text::local_proto(report.delivery_sent_at.as_ref())
            ),
            "sending" => eprintln!(
                "{} : envoi à {} en cours, nouvel essai à venir ({})",
                report.clinic_name, report.delivery_to, report.delivery_error
            ),
            "refused" => eprintln!(
                "{} : envoi à {} refusé par le serveur de courrier : {}",
                report.clinic_name, report.delivery_to, report.delivery_error
            ),
            "no_contact" => eprintln!(
                "{} : non envoyé, le cabinet n'a pas d'adresse de contact",
                report.clinic_name
            ),
            _ => {}
        }
        if !report.has_data {
            eprintln!(
                "{} : aucune donnée pour {month}, le rapport le dit",
                report.clinic_name
            );
        }
    }
    Ok(())
}

pub async fn run_set_contact(
    data_dir: &DataDir,
    clinic_id: String,
    email: String,
) -> anyhow::Result<()> {
    let mut admin = crate::admin_client::connect(data_dir).await?;
    let clinic = admin
        .set_clinic_contact(SetClinicContactRequest { clinic_id, email })
        .await
        .map_err(status_error)?
        .into_inner();
    if clinic.contact_email.is_empty() {
        eprintln!("{} : plus d'adresse de contact", clinic.name);
    } else {
        eprintln!(
            "{} : le rapport mensuel sera envoyé à {}",
            clinic.name, clinic.contact_email
        );
    }
    Ok(())
}

/// The collector names the files; a name with a folder in it is refused, not followed.
fn safe(name: &str) -> anyhow::Result<&str> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(anyhow!(
            "le collecteur a envoyé un nom de fichier dangereux : {name:?}"
        ));
    }
    Ok(name)
}

/// Written beside, then renamed: a report is either whole or absent.
fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, bytes)
        .with_context(|| format!("impossible d'écrire {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("impossible d'écrire {}", path.display()))
}
