//! Checkpoints copied to shared artifact storage (S3) as they are saved, and fetched back where a
//! run continues on a machine that did not write them.
//!
//! [`MirrorSink`] sits in a run's event sink: the trainer already records each saved checkpoint
//! (`Event::Artifact` of kind `checkpoint`, after the folder was written and verified), each
//! pruned one, and every other file it produces (the final model, the first batch's picture), so
//! publishing follows them exactly, without the trainer knowing about storage. A publish that fails never stops training: the checkpoint stays in the local folder,
//! the run gets a warning notice, and the next checkpoint is published as usual.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use regimen_artifacts::{ArtifactStore, INDEX, fetch_folder, publish_file, publish_folder};
use regimen_events::{Event, EventSink, SinkError};
use regimen_store::RunDir;

use crate::error::TrainError;

/// The key of a file or folder under the store folder `root`, with `/` separators; `None` when it
/// is not under `root`.
fn key_of(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    Some(relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"))
}

/// An [`EventSink`] that publishes each saved checkpoint folder to `store` and deletes pruned
/// ones there, then passes every event on.
pub struct MirrorSink<S> {
    inner: S,
    store: Arc<dyn ArtifactStore>,
    root: PathBuf,
}

impl<S: EventSink> MirrorSink<S> {
    /// Mirrors the checkpoints of run folders under `root` into `store`.
    pub fn new(inner: S, store: Arc<dyn ArtifactStore>, root: PathBuf) -> MirrorSink<S> {
        MirrorSink { inner, store, root }
    }

    fn mirror(&self, kind: &str, path: &str) -> Result<(), String> {
        let path = Path::new(path);
        let Some(key) = key_of(&self.root, path) else { return Ok(()) };
        let store = self.store.as_ref();
        match kind {
            "checkpoint" => publish_folder(store, path, &key).map(|_| ()).map_err(|e| e.to_string()),
            "checkpoint.deleted" => store.delete_prefix(&key).map(|_| ()).map_err(|e| e.to_string()),
            // The final model, pictures, exports: single files, replaced when written again.
            _ if path.is_file() => publish_file(store, path, &key).map(|_| ()).map_err(|e| e.to_string()),
            _ => Ok(()),
        }
    }
}

impl<S: EventSink> EventSink for MirrorSink<S> {
    fn record(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        self.inner.record(event)?;
        if let Event::Artifact { kind, path, .. } = event
            && let Err(error) = self.mirror(kind, path)
        {
            let message =
                format!("could not copy {path} to {}: {error}; it stays in the local folder", self.store.location());
            self.inner.record(&Event::Notice { level: "warn", message: &message })?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.inner.flush()
    }
}

/// Fetches the published checkpoints of run `run_id` that the local run folder under `root`
/// lacks; returns how many were fetched. Each arrives whole and checked against its index, and is
/// verified again (manifest and BLAKE3) when a resume opens it.
pub fn fetch_checkpoints(store: &dyn ArtifactStore, root: &Path, run_id: &str) -> Result<u64, TrainError> {
    let run = RunDir::of(root, run_id);
    let folder = run.checkpoints();
    let Some(prefix) = key_of(root, &folder) else { return Ok(0) };
    let failed = |error: regimen_artifacts::ArtifactError| TrainError::Checkpoint {
        path: folder.clone(),
        message: format!("could not fetch the run's checkpoints: {error}"),
    };
    let published: Vec<String> = store
        .list(&prefix)
        .map_err(failed)?
        .into_iter()
        .filter_map(|(key, _)| key.strip_suffix(&format!("/{INDEX}")).map(str::to_string))
        .collect();
    let mut fetched = 0;
    for key in published {
        let Some(name) = key.rsplit('/').next() else { continue };
        let local = folder.join(name);
        if !local.exists() && fetch_folder(store, &key, &local).map_err(failed)?.is_some() {
            fetched += 1;
        }
    }
    Ok(fetched)
}
