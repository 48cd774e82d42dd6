//! The report part of the `Admin` service: a month's report of one clinic or of all
//! (`report monthly`), and the contact address the schedule e-mails it to
//! (`clinic set-contact`). `admin.rs` routes the RPCs here.

use jiff::Timestamp;
use tonic::{Request, Response, Status};
use vigie_proto::v1;

use super::admin::AdminService;
use super::convert::{clinic_to_proto, timestamp_to_proto};
use super::identity::require_admin;
use super::{blocking, internal};
use crate::report::schedule::context_of;
use crate::report::{Month, ReportError, file_name, monthly_pdf_with};

/// Longest contact address accepted (RFC 5321's path limit).
const MAX_EMAIL: usize = 254;

impl AdminService {
    pub(super) async fn do_monthly_report(
        &self,
        request: Request<v1::MonthlyReportRequest>,
    ) -> Result<Response<v1::MonthlyReportResponse>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let month: Month = req
            .month
            .parse()
            .map_err(|e: crate::report::month::BadMonth| Status::invalid_argument(e.to_string()))?;
        let clinic_id = req.clinic_id.trim().to_owned();
        if req.all != clinic_id.is_empty() {
            return Err(Status::invalid_argument(
                "indiquez soit un cabinet (--clinic), soit --all",
            ));
        }
        let storage = self.state.storage.clone();
        let context = context_of(&self.state.config);
        let now = Timestamp::now();
        let reports = blocking(move || {
            let ids: Vec<String> = if req.all {
                storage.list_clinics()?.into_iter().map(|c| c.id).collect()
            } else {
                vec![clinic_id]
            };
            let mut out = Vec::new();
            for id in ids {
                let (pdf, figures) = monthly_pdf_with(&storage, &id, month, now, &context)?;
                let delivery = storage.report_delivery(&id, &month.to_string())?;
                let json = serde_json::to_string_pretty(&figures)
                    .map_err(|e| ReportError::Pdf(format!("chiffres en JSON : {e}")))?;
                out.push(v1::MonthlyReport {
                    clinic_id: figures.clinic_id.clone(),
                    clinic_name: figures.clinic_name.clone(),
                    pdf_name: file_name(&figures.clinic_name, month, "pdf"),
                    json_name: file_name(&figures.clinic_name, month, "json"),
                    pdf,
                    figures_json: json,
                    has_data: figures.has_data,
                    delivery: delivery
                        .as_ref()
                        .map(|d| d.state.as_str().to_owned())
                        .unwrap_or_default(),
                    delivery_to: delivery.as_ref().map(|d| d.to.clone()).unwrap_or_default(),
                    delivery_sent_at: delivery
                        .as_ref()
                        .and_then(|d| d.sent_at)
                        .map(timestamp_to_proto),
                    delivery_error: delivery.and_then(|d| d.last_error).unwrap_or_default(),
                });
            }
            Ok::<_, ReportError>(out)
        })
        .await?
        .map_err(|e| match e {
            ReportError::NoClinic(id) => Status::not_found(format!("cabinet {id} introuvable")),
            ReportError::Storage(e) => internal(e),
            ReportError::Pdf(e) => Status::internal(e),
        })?;
        Ok(Response::new(v1::MonthlyReportResponse { reports }))
    }

    pub(super) async fn do_set_clinic_contact(
        &self,
        request: Request<v1::SetClinicContactRequest>,
    ) -> Result<Response<v1::Clinic>, Status> {
        require_admin(&request)?;
        let req = request.into_inner();
        let email = req.email.trim().to_owned();
        if email.len() > MAX_EMAIL {
            return Err(Status::invalid_argument(format!(
                "l'adresse dépasse {MAX_EMAIL} caractères"
            )));
        }
        if !email.is_empty() {
            email.parse::<lettre::Address>().map_err(|e| {
                Status::invalid_argument(format!("« {email} » n'est pas une adresse e-mail : {e}"))
            })?;
        }
        let clinic_id = req.clinic_id.trim().to_owned();
        let storage = self.state.storage.clone();
        let id = clinic_id.clone();
        let updated = blocking(move || {
            storage.update_clinic(&id, |c| {
                c.contact_email = (!email.is_empty()).then_some(email);
            })
        })
        .await?
        .map_err(internal)?;
        let Some(clinic) = updated else {
            return Err(Status::not_found(format!(
                "cabinet {clinic_id} introuvable"
            )));
        };
        self.durable().await?;
        tracing::info!(clinic_id = %clinic.id, contact = ?clinic.contact_email, "clinic contact set");
        Ok(Response::new(clinic_to_proto(&clinic)))
    }
}
