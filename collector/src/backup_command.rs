//! `backup` and `restore`: the binary's edge of the collector's own backup (`archive.rs`).
//!
//! `backup` asks the running `serve` for the archive over the admin interface. When no `serve`
//! answers, it opens the database itself, which sled's file lock allows only if no other
//! process holds it: a nightly timer still gets its backup while the collector is stopped for
//! maintenance, and can never copy a database under a running `serve`'s feet.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use vigie_proto::v1::BackupRequest;

use crate::admin_client::{self, AdminClientError};
use crate::archive::{self, Summary};
use crate::commands::status_error;
use crate::config::DataDir;
use crate::storage::{Storage, StorageError};

pub async fn run_backup(data_dir: &DataDir, out: &Path) -> anyhow::Result<()> {
    let partial = archive::partial_path(out);
    let summary = match admin_client::connect(data_dir).await {
        Ok(mut admin) => {
            let result = async {
                let mut stream = admin
                    .backup(BackupRequest {})
                    .await
                    .map_err(status_error)?
                    .into_inner();
                let mut file = archive::create_output(&partial)?;
                while let Some(chunk) = stream.message().await.map_err(status_error)? {
                    file.write_all(&chunk.data)
                        .with_context(|| format!("impossible d'écrire {}", partial.display()))?;
                }
                Ok::<_, anyhow::Error>(archive::commit_output(file, &partial, out)?)
            }
            .await;
            let summary = result.inspect_err(|_| {
                let _ = std::fs::remove_file(&partial);
            })?;
            eprintln!(
                "sauvegarde prise par le collecteur en service (écritures suspendues le temps de la copie)"
            );
            summary
        }
        Err(AdminClientError::Unreachable { addr, .. }) => {
            let storage = match Storage::open_unshared(&data_dir.database()) {
                Ok(storage) => storage,
                Err(StorageError::InUse(db)) => bail!(
                    "aucun collecteur ne répond sur {addr}, mais la base {db} est ouverte par un \
                     autre processus (serve en train de démarrer, bloqué, ou collector.toml modifié \
                     depuis son démarrage ?) : rien n'a été sauvegardé"
                ),
                Err(error) => return Err(error).context("impossible d'ouvrir la base de données"),
            };
            eprintln!(
                "aucun collecteur ne répond sur {addr} : sauvegarde faite directement sur la base \
                 (verrouillée pendant la copie)"
            );
            let file = archive::create_output(&partial)?;
            let result = archive::write_archive(data_dir, &storage, file)
                .and_then(|(file, _)| archive::commit_output(file, &partial, out));
            result.inspect_err(|_| {
                let _ = std::fs::remove_file(&partial);
            })?
        }
        Err(error) => return Err(error.into()),
    };
    eprintln!("{}", describe("sauvegarde écrite", out, &summary));
    eprintln!(
        "elle contient la clé de la CA : gardez-la comme la clé elle-même (fichier en mode 0600)"
    );
    Ok(())
}

pub fn run_restore(file: &Path, data_dir: &DataDir) -> anyhow::Result<()> {
    let summary = archive::restore(file, data_dir)?;
    eprintln!("{}", describe("sauvegarde restaurée", file, &summary));
    eprintln!(
        "démarrez le collecteur : vigie-collector serve --data-dir {} (les agents reprennent sans \
         se réinscrire ; les rapports acquittés après la prise de la sauvegarde n'y sont pas)",
        data_dir.path().display()
    );
    Ok(())
}

fn describe(what: &str, path: &Path, s: &Summary) -> String {
    format!(
        "{what} : {} ({} octets, prise le {}, collecteur {}) : {} fichiers, {} arbres, {} entrées",
        path.display(),
        s.bytes,
        s.created_at,
        s.collector_version,
        s.files,
        s.trees,
        s.entries
    )
}
