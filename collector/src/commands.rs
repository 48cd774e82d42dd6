//! Carries out each subcommand: the binary's edge, where errors become `anyhow` and results
//! are printed (ids and tokens alone on stdout, diagnostics on stderr).

use std::error::Error as _;

use anyhow::{Context as _, anyhow};
use tonic::transport::Channel;
use vigie_proto::v1::admin_client::AdminClient;
use vigie_proto::v1::{
    AddClinicRequest, AddMaintenanceWindowRequest, AlertActionRequest, CreateTokenRequest,
    ListAgentsRequest, ListAlertsRequest, ListClinicsRequest, ListMaintenanceWindowsRequest,
    RemoveMaintenanceWindowRequest, RevokeAgentRequest, SetClinicRulesRequest,
    SetClinicTierRequest,
};

use crate::alert_output::{
    AlertView, MaintenanceWindowView, PolicyView, alerts_table, maintenance_windows_table,
    policy_table,
};
use crate::cli::{
    AgentCommand, AgentsArgs, AlertAction, AlertsArgs, ClinicCommand, Command, InitArgs,
    MaintenanceCommand, TokenCommand,
};
use crate::cli::{EscalationCommand, ReportCommand};
use crate::config::{Build, DataDir};
use crate::output::{AgentView, ClinicView, agents_table, clinics_table};
use crate::ticket_output::{TicketView, tickets_table};
use crate::{admin_client, init, server};
use vigie_proto::v1::{ListEscalationsRequest, TestEscalationRequest};

/// Runs a subcommand as the shipped `vigie-collector`.
pub async fn run(command: Command) -> anyhow::Result<()> {
    run_as(command, Build::Shipped).await
}

/// Runs a subcommand as the binary `build` says.
pub async fn run_as(command: Command, build: Build) -> anyhow::Result<()> {
    let Some(dir) = command.data_dir() else {
        return crate::demo::run().await;
    };
    let data_dir = DataDir::new(dir);
    match command {
        Command::Demo => crate::demo::run().await,
        Command::Technician(command) => crate::console::cli::run_technician(command).await,
        Command::ApiToken(command) => crate::console::cli::run_api_token(command).await,
        Command::Init(args) => run_init(&data_dir, args),
        Command::Serve(_) => {
            let running = server::start_as(&data_dir, build).await?;
            running.run_until(server::shutdown_signal()).await?;
            Ok(())
        }
        Command::Clinic(ClinicCommand::Add { name, tier, .. }) => {
            let mut admin = admin_client::connect(&data_dir).await?;
            let clinic = admin
                .add_clinic(AddClinicRequest {
                    name,
                    tier: tier.as_str().to_owned(),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            println!("{}", clinic.id);
            Ok(())
        }
        Command::Clinic(ClinicCommand::List { json, .. }) => {
            let mut admin = admin_client::connect(&data_dir).await?;
            let clinics = admin
                .list_clinics(ListClinicsRequest {})
                .await
                .map_err(status_error)?
                .into_inner()
                .clinics;
            let views: Vec<_> = clinics.iter().map(ClinicView::from).collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&views)?);
            } else {
                print!("{}", clinics_table(&views));
            }
            Ok(())
        }
        Command::Token(TokenCommand::Create { clinic, ttl, .. }) => {
            let mut admin = admin_client::connect(&data_dir).await?;
            let created = admin
                .create_token(CreateTokenRequest {
                    clinic_id: clinic.clone(),
                    // Zero would mean "default" on the wire; the smallest real TTL is 1 s.
                    ttl_seconds: ttl.as_secs().max(1),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            println!("{}", created.token);
            if let Some(at) = created
                .expires_at
                .as_ref()
                .and_then(server::convert::timestamp_from_proto)
            {
                eprintln!(
                    "jeton d'inscription pour le cabinet {clinic}, à usage unique, valable jusqu'au {} (heure de La Réunion)",
                    crate::time_text::local_with_year(at)
                );
            }
            Ok(())
        }
        Command::Agents(AgentsArgs { clinic, json, .. }) => {
            let mut admin = admin_client::connect(&data_dir).await?;
            run_agents(&mut admin, clinic, json).await
        }
        Command::Backup(args) => crate::backup_command::run_backup(&data_dir, &args.out).await,
        Command::Config(command) => crate::central_config::command::run(&data_dir, command).await,
        Command::Restore(args) => crate::backup_command::run_restore(&args.file, &data_dir),
        Command::Alerts(args) => run_alerts(&data_dir, args).await,
        Command::Maintenance(command) => run_maintenance(&data_dir, command).await,
        Command::Tickets(args) => run_tickets(&data_dir, args.all, args.json).await,
        Command::Report(ReportCommand::Monthly(args)) => {
            crate::report_command::run_monthly(&data_dir, args).await
        }
        Command::Clinic(ClinicCommand::SetContact {
            clinic_id, email, ..
        }) => crate::report_command::run_set_contact(&data_dir, clinic_id, email).await,
        Command::Escalation(EscalationCommand::Test { sink, .. }) => {
            let mut admin = admin_client::connect(&data_dir).await?;
            let sent = admin
                .test_escalation(TestEscalationRequest { sink })
                .await
                .map_err(status_error)?
                .into_inner();
            println!("{}", sent.ticket_id);
            eprintln!("ticket de test envoyé à {} : {}", sent.sink, sent.ticket_id);
            Ok(())
        }
        Command::Clinic(ClinicCommand::SetTier {
            clinic_id,
            tier,
            by,
            ..
        }) => {
            let mut admin = admin_client::connect(&data_dir).await?;
            let policy = admin
                .set_clinic_tier(SetClinicTierRequest {
                    clinic_id,
                    tier: tier.as_str().to_owned(),
                    by: by.name,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            print!("{}", policy_table(&PolicyView::from(&policy)));
            Ok(())
        }
        Command::Clinic(ClinicCommand::Rules {
            clinic_id,
            enable,
            disable,
            reset,
            json,
            by,
            ..
        }) => {
            let names = |families: Vec<crate::alerts::Family>| {
                families.iter().map(|f| f.as_str().to_owned()).collect()
            };
            let mut admin = admin_client::connect(&data_dir).await?;
            let policy = admin
                .set_clinic_rules(SetClinicRulesRequest {
                    clinic_id,
                    enable: names(enable),
                    disable: names(disable),
                    reset: names(reset),
                    by: by.name,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            let view = PolicyView::from(&policy);
            if json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print!("{}", policy_table(&view));
            }
            Ok(())
        }
        Command::Agent(AgentCommand::Revoke { agent_id, .. }) => {
            let mut admin = admin_client::connect(&data_dir).await?;
            admin
                .revoke_agent(RevokeAgentRequest {
                    agent_id: agent_id.clone(),
                })
                .await
                .map_err(status_error)?;
            eprintln!("agent {agent_id} révoqué : son certificat est refusé désormais");
            Ok(())
        }
    }
}

fn run_init(data_dir: &DataDir, args: InitArgs) -> anyhow::Result<()> {
    let report = init::init(
        data_dir,
        &init::InitOptions {
            agent_listen: args.agent_listen,
            public_addr: args.public_addr,
            admin_listen: args.admin_listen,
            console_listen: args.console_listen,
        },
    )
    .with_context(|| format!("impossible d'initialiser {}", data_dir.path().display()))?;
    println!("dossier initialisé : {}", data_dir.path().display());
    println!("empreinte de la CA (SHA-256) : {}", report.ca_fingerprint);
    println!("écoute des agents : {}", report.config.agent_listen);
    println!("adresse publique : {}", report.config.public_addr());
    println!("écoute d'administration : {}", report.config.admin_listen);
    println!("console : https://{}", report.config.console.listen);
    println!("fichiers :");
    for file in &report.files {
        println!("  {}", file.display());
    }
    Ok(())
}

async fn run_agents(
    admin: &mut AdminClient<Channel>,
    clinic: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let agents = admin
        .list_agents(ListAgentsRequest {
            clinic_id: clinic.unwrap_or_default(),
        })
        .await
        .map_err(status_error)?
        .into_inner()
        .agents;
    let views: Vec<_> = agents.iter().map(AgentView::from).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
    } else {
        let clinic_names = admin
            .list_clinics(ListClinicsRequest {})
            .await
            .map_err(status_error)?
            .into_inner()
            .clinics
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect();
        print!("{}", agents_table(&views, &clinic_names));
    }
    Ok(())
}

async fn run_alerts(data_dir: &DataDir, args: AlertsArgs) -> anyhow::Result<()> {
    let mut admin = admin_client::connect(data_dir).await?;
    let (action, resolve) = match args.action {
        None => {
            let alerts = admin
                .list_alerts(ListAlertsRequest {
                    clinic_id: args.clinic.unwrap_or_default(),
                    all: args.all,
                })
                .await
                .map_err(status_error)?
                .into_inner()
                .alerts;
            let views: Vec<_> = alerts.iter().map(AlertView::from).collect();
            if args.json {
                println!("{}", serde_json::to_string_pretty(&views)?);
            } else {
                print!("{}", alerts_table(&views));
            }
            return Ok(());
        }
        Some(AlertAction::Ack(action)) => (action, false),
        Some(AlertAction::Resolve(action)) => (action, true),
    };
    let request = AlertActionRequest {
        alert_id: action.alert_id,
        by: action.by.name,
        note: action.note,
    };
    let alert = if resolve {
        admin.resolve_alert(request).await
    } else {
        admin.acknowledge_alert(request).await
    }
    .map_err(status_error)?
    .into_inner();
    print!("{}", alerts_table(&[AlertView::from(&alert)]));
    Ok(())
}

async fn run_tickets(data_dir: &DataDir, all: bool, json: bool) -> anyhow::Result<()> {
    let mut admin = admin_client::connect(data_dir).await?;
    let answer = admin
        .list_escalations(ListEscalationsRequest { all })
        .await
        .map_err(status_error)?
        .into_inner();
    let views: Vec<_> = answer.escalations.iter().map(TicketView::from).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
    } else {
        print!("{}", tickets_table(&views, &answer.sinks));
    }
    Ok(())
}

async fn run_maintenance(data_dir: &DataDir, command: MaintenanceCommand) -> anyhow::Result<()> {
    let mut admin = admin_client::connect(data_dir).await?;
    match command {
        MaintenanceCommand::Add {
            clinic,
            agent,
            duration,
            reason,
            by,
            ..
        } => {
            let window = admin
                .add_maintenance_window(AddMaintenanceWindowRequest {
                    clinic_id: clinic.unwrap_or_default(),
                    agent_id: agent.unwrap_or_default(),
                    duration_seconds: duration.as_secs().max(1),
                    reason,
                    by: by.name,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            println!("{}", window.id);
            let view = MaintenanceWindowView::from(&window);
            eprintln!(
                "fenêtre de maintenance {} jusqu'au {} (heure de La Réunion)",
                view.id, view.ends_at_local
            );
        }
        MaintenanceCommand::List { all, json, .. } => {
            let windows = admin
                .list_maintenance_windows(ListMaintenanceWindowsRequest { all })
                .await
                .map_err(status_error)?
                .into_inner()
                .windows;
            let views: Vec<_> = windows.iter().map(MaintenanceWindowView::from).collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&views)?);
            } else {
                print!("{}", maintenance_windows_table(&views));
            }
        }
        MaintenanceCommand::Remove { window_id, by, .. } => {
            admin
                .remove_maintenance_window(RemoveMaintenanceWindowRequest {
                    window_id,
                    by: by.name,
                })
                .await
                .map_err(status_error)?;
            eprintln!("fenêtre de maintenance {window_id} terminée");
        }
    }
    Ok(())
}

/// An admin call's failure in words: the collector's own message, or, when the TLS layer
/// refused us, which certificate problem it was.
pub(crate) fn status_error(status: tonic::Status) -> anyhow::Error {
    let mut causes = Vec::new();
    let mut source = status.source();
    while let Some(error) = source {
        causes.push(error.to_string());
        source = error.source();
    }
    let detail = causes.last().cloned();
    match (status.code(), detail) {
        (tonic::Code::Unknown | tonic::Code::Unavailable, Some(detail)) => anyhow!(
            "l'interface d'administration du collecteur a refusé la connexion ({}) : {detail} ; \
             admin.crt et ca.crt sont-ils bien ceux de ce collecteur ?",
            status.message()
        ),
        (code, _) => anyhow!("le collecteur a refusé : {} ({code:?})", status.message()),
    }
}
