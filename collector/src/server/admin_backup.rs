//! The backup part of the `Admin` service: the collector's own archive, taken while it serves.
//! `admin.rs` routes the RPC here.
//!
//! The archive is first written to an unnamed temporary file in the data directory (gone if
//! the collector dies; it holds the CA key), so writes pause only for a local copy and not for
//! as long as a slow client reads; then it is streamed in chunks.

use std::io::{Seek as _, SeekFrom};
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::AsyncReadExt as _;
use tokio::sync::{Mutex, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use vigie_proto::v1::{BackupChunk, BackupRequest};

use super::admin::AdminService;
use super::identity::require_admin;
use crate::archive;

/// Bytes per streamed chunk (well under the 4 MiB message limit).
const CHUNK_BYTES: usize = 1024 * 1024;

pub type BackupStream = Pin<Box<dyn Stream<Item = Result<BackupChunk, Status>> + Send>>;

/// One backup at a time: two would double the pause and the disk space for nothing.
#[derive(Debug, Default, Clone)]
pub struct BackupSlot(Arc<Mutex<()>>);

impl AdminService {
    pub(super) async fn do_backup(
        &self,
        request: Request<BackupRequest>,
    ) -> Result<Response<BackupStream>, Status> {
        require_admin(&request)?;
        let Ok(slot) = self.backup_slot.0.clone().try_lock_owned() else {
            return Err(Status::failed_precondition(
                "a backup is already running on this collector",
            ));
        };
        let (tx, rx) = mpsc::channel(4);
        let data_dir = self.state.data_dir.clone();
        let storage = self.state.storage.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let written = tokio::task::spawn_blocking(move || {
                let file = tempfile::tempfile_in(data_dir.path()).map_err(|e| e.to_string())?;
                let (mut file, stats) =
                    archive::write_archive(&data_dir, &storage, file).map_err(|e| e.to_string())?;
                file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
                Ok::<_, String>((file, stats))
            })
            .await
            .unwrap_or_else(|e| Err(format!("backup task failed: {e}")));
            let (file, stats) = match written {
                Ok(done) => done,
                Err(error) => {
                    tracing::error!(%error, "backup failed");
                    let _ = tx
                        .send(Err(Status::internal(format!(
                            "sauvegarde échouée : {error}"
                        ))))
                        .await;
                    return;
                }
            };
            let mut file = tokio::fs::File::from_std(file);
            let mut sent = 0u64;
            loop {
                let mut buf = vec![0u8; CHUNK_BYTES];
                let n = match file.read(&mut buf).await {
                    Ok(n) => n,
                    Err(error) => {
                        tracing::error!(%error, "backup: cannot read the archive back");
                        let _ = tx.send(Err(Status::internal(error.to_string()))).await;
                        return;
                    }
                };
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                sent += n as u64;
                if tx.send(Ok(BackupChunk { data: buf })).await.is_err() {
                    tracing::warn!(sent_bytes = sent, "backup: the client went away");
                    return;
                }
            }
            tracing::info!(
                bytes = sent,
                trees = stats.trees,
                entries = stats.entries,
                paused_ms = stats.paused.as_millis() as u64,
                "backup sent"
            );
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
