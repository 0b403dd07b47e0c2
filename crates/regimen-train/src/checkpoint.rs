//! Saving and loading model weights as safetensors, atomically.
//!
//! A checkpoint is written to a temporary file in the same folder, synced, then renamed over the
//! old one, and the folder is synced: a crash at any instant leaves either the old file or the new
//! one, never a torn file. (Optimizer state, RNG streams and the data cursor join the checkpoint
//! with exact resume.)

use std::fs::File;
use std::path::{Path, PathBuf};

use burn::store::{ModuleSnapshot, SafetensorsStore};

use crate::error::TrainError;
use crate::model::Network;

/// Writes `model`'s weights to `path` atomically; returns the file size.
pub fn save_weights<M: Network>(model: &M, path: &Path) -> Result<u64, TrainError> {
    let error = |message: String| TrainError::Checkpoint { path: path.to_path_buf(), message };
    let temporary = temporary_path(path);
    let mut store = SafetensorsStore::from_file(&temporary).overwrite(true);
    if let Err(e) = model.save_into(&mut store) {
        let _ = std::fs::remove_file(&temporary);
        return Err(error(format!("could not write weights ({e}); the previous checkpoint is kept")));
    }
    let io = |action: &'static str| {
        move |source| TrainError::Io { path: path.to_path_buf(), action, source }
    };
    File::open(&temporary).and_then(|f| f.sync_all()).map_err(io("sync the checkpoint"))?;
    std::fs::rename(&temporary, path).map_err(io("move into place the checkpoint"))?;
    if let Some(folder) = path.parent() {
        File::open(folder).and_then(|f| f.sync_all()).map_err(io("sync the folder of the checkpoint"))?;
    }
    Ok(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0))
}

/// Loads weights saved by [`save_weights`] into `model`, which must have the same architecture.
pub fn load_weights<M: Network>(mut model: M, path: &Path) -> Result<M, TrainError> {
    let error = |message: String| TrainError::Checkpoint { path: path.to_path_buf(), message };
    if !path.is_file() {
        return Err(error("the file does not exist".into()));
    }
    let mut store = SafetensorsStore::from_file(path);
    let applied = model
        .load_from(&mut store)
        .map_err(|e| error(format!("could not read weights ({e}); the file may be corrupt")))?;
    if !applied.missing.is_empty() {
        return Err(error(format!(
            "it lacks {} tensors the model needs (first: {}); it was saved from a different model",
            applied.missing.len(),
            applied.missing[0].0
        )));
    }
    Ok(model)
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Mlp, MlpConfig};
    use burn::prelude::*;

    fn mlp(device: &Device) -> Mlp {
        MlpConfig {
            inputs: 3,
            hidden: vec![4],
            outputs: 2,
            activation: "relu".into(),
            dropout: 0.0,
            batch_norm: true,
        }
        .init(device)
    }

    fn outputs(model: &Mlp, device: &Device) -> Vec<f32> {
        let input = Tensor::<2>::from_data([[0.5f32, -1.0, 2.0], [1.0, 0.0, -0.5]], device);
        model.valid().forward(input).into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn saved_weights_load_into_a_fresh_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last.safetensors");
        let device = Device::flex();
        device.seed(1);
        let saved = mlp(&device);
        let bytes = save_weights(&saved, &path).unwrap();
        assert!(bytes > 0);
        assert!(!dir.path().join("last.safetensors.tmp").exists(), "no temporary file is left");
        device.seed(2);
        let fresh = mlp(&device);
        assert_ne!(outputs(&fresh, &device), outputs(&saved, &device));
        let loaded = load_weights(fresh, &path).unwrap();
        assert_eq!(outputs(&loaded, &device), outputs(&saved, &device));
    }

    #[test]
    fn missing_and_corrupt_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let device = Device::flex();
        let message = load_weights(mlp(&device), &dir.path().join("nope.safetensors")).unwrap_err().to_string();
        assert!(message.contains("nope.safetensors") && message.contains("does not exist"), "{message}");

        let path = dir.path().join("best.safetensors");
        save_weights(&mlp(&device), &path).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() / 2);
        std::fs::write(&path, bytes).unwrap();
        let message = load_weights(mlp(&device), &path).unwrap_err().to_string();
        assert!(message.contains("best.safetensors"), "{message}");
    }
}
