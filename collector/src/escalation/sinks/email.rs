//! The e-mail sink: one message per ticket operation over SMTP (STARTTLS required, implicit
//! TLS, or plain for a relay on the same host), lettre on rustls with ring. The create's
//! `Message-ID` is the ticket id; follow-ups answer it (`In-Reply-To`), so a mail-fed ticket
//! system (GLPI's mail collector) threads them, and a repeat carries the same `Message-ID`.

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};

use super::{Lookup, SinkError, TicketSink, read_ca};
use crate::escalation::config::{EmailConfig, SmtpSecurity};
use crate::escalation::ticket::{TicketDraft, TicketNote};

/// Default ports: submission with STARTTLS, submission over TLS, plain relay.
const SUBMISSION_PORT: u16 = 587;
const SUBMISSIONS_PORT: u16 = 465;
const SMTP_PORT: u16 = 25;

#[derive(Debug)]
pub struct EmailSink {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

fn mailbox(text: &str) -> Result<Mailbox, SinkError> {
    text.parse()
        .map_err(|e| SinkError::Config(format!("address {text:?}: {e}")))
}

impl EmailSink {
    pub fn new(config: &EmailConfig) -> Result<Self, SinkError> {
        let setup = |e: lettre::transport::smtp::Error| SinkError::Config(e.to_string());
        let tls = || -> Result<TlsParameters, SinkError> {
            let mut params = TlsParameters::builder(config.host.clone());
            if let Some(path) = &config.ca_file {
                params = params
                    .add_root_certificate(Certificate::from_pem(&read_ca(path)?).map_err(setup)?);
            }
            params.build_rustls().map_err(setup)
        };
        let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host);
        let mut builder = match config.security {
            SmtpSecurity::Starttls => builder.port(SUBMISSION_PORT).tls(Tls::Required(tls()?)),
            SmtpSecurity::Tls => builder.port(SUBMISSIONS_PORT).tls(Tls::Wrapper(tls()?)),
            SmtpSecurity::None => builder.port(SMTP_PORT),
        };
        if let Some(port) = config.port {
            builder = builder.port(port);
        }
        builder = builder.timeout(Some(std::time::Duration::from_secs(
            config.timeout_seconds.max(1),
        )));
        if !config.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                config.username.clone(),
                config.password.clone(),
            ));
        }
        Ok(EmailSink {
            transport: builder.build(),
            from: mailbox(&config.from)?,
            to: config
                .to
                .iter()
                .map(|t| mailbox(t))
                .collect::<Result<_, _>>()?,
        })
    }

    fn message(
        &self,
        subject: String,
        id: String,
        reply_to: Option<&str>,
        body: String,
    ) -> Result<Message, SinkError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(id))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        if let Some(parent) = reply_to {
            builder = builder
                .in_reply_to(parent.to_owned())
                .references(parent.to_owned());
        }
        builder
            .body(body)
            .map_err(|e| SinkError::Config(e.to_string()))
    }

    /// The monthly report (`report/schedule.rs`): a text body and the PDF attached, to the
    /// clinic's contact from this sink's sender, with the caller's idempotent `Message-ID`.
    pub async fn send_report(
        &self,
        to: &str,
        subject: &str,
        body: &str,
        file_name: &str,
        pdf: Vec<u8>,
        message_id: &str,
    ) -> Result<(), SinkError> {
        use lettre::message::{Attachment, MultiPart, SinglePart};
        let pdf_type =
            ContentType::parse("application/pdf").map_err(|e| SinkError::Config(e.to_string()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(mailbox(to)?)
            .subject(subject)
            .message_id(Some(message_id.to_owned()))
            .multipart(
                MultiPart::mixed()
                    .singlepart(SinglePart::plain(body.to_owned()))
                    .singlepart(Attachment::new(file_name.to_owned()).body(pdf, pdf_type)),
            )
            .map_err(|e| SinkError::Config(e.to_string()))?;
        self.send(message).await
    }

    async fn send(&self, message: Message) -> Result<(), SinkError> {
        self.transport.send(message).await.map(drop).map_err(|e| {
            let text = format!("{e}");
            if e.is_permanent() {
                SinkError::Refused(text)
            } else if e.is_timeout() {
                SinkError::Unknown(text)
            } else {
                SinkError::Transient(text)
            }
        })
    }
}

impl TicketSink for EmailSink {
    async fn create(&self, draft: &TicketDraft) -> Result<String, SinkError> {
        let id = format!("<{}@vigie>", draft.key);
        let message = self.message(draft.title.clone(), id.clone(), None, draft.content.clone())?;
        self.send(message).await?;
        Ok(id)
    }

    async fn find(&self, _draft: &TicketDraft) -> Result<Lookup, SinkError> {
        Ok(Lookup::Unsupported)
    }

    async fn add_note(&self, ticket_id: &str, note: &TicketNote) -> Result<(), SinkError> {
        let what = if note.solves { "Résolu" } else { "Suivi" };
        let subject = format!("Re: {} {what} — {}", note.tag, note.alert.summary);
        let message = self.message(
            subject,
            format!("<{}@vigie>", note.key),
            Some(ticket_id),
            format!("{}\n\n{}\n", note.text, note.tag),
        )?;
        self.send(message).await
    }
}
