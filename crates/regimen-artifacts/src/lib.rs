//! Where run folders live beyond one machine.
//!
//! A run's files (checkpoints, its final model, exports, pictures) are written to a local run
//! folder first, as always. A team that shares a store across machines also needs them somewhere
//! every machine reaches: an [`ArtifactStore`]. Two implementations pass one conformance suite:
//! [`Folder`] (a local or network-mounted folder) and [`S3`] (Amazon S3 or any S3-compatible
//! server, through Apache Arrow's `object_store`).
//!
//! On top of the trait, [`publish_folder`] and [`fetch_folder`] move whole folders with the
//! guarantees checkpoints need: a folder is visible only once complete (its index is written last),
//! every file is verified by BLAKE3 after upload and after download, and conditional puts mean two
//! machines publishing the same folder can never overwrite each other's files.

mod folder;
mod publish;
mod s3;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

use std::sync::Arc;

pub use folder::Folder;
pub use publish::{INDEX, Published, fetch_folder, publish_file, publish_folder};
pub use s3::S3;

/// Errors of an artifact store.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// A key that cannot name an object (empty, absolute, or with an empty, `.` or `..` segment).
    #[error("invalid artifact key `{key}`: keys are relative paths of plain names separated by `/`")]
    InvalidKey {
        /// The key.
        key: String,
    },
    /// The store failed or could not be reached.
    #[error("the artifact store {location} failed while trying to {action} `{key}`: {source}")]
    Store {
        /// Where the store is.
        location: String,
        /// What was being done.
        action: &'static str,
        /// The key involved.
        key: String,
        /// What the store said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file of the local folder could not be read or written.
    #[error(transparent)]
    File(#[from] regimen_fs::FileError),
    /// An object does not hold what its folder's index says: a damaged upload or download, or
    /// another writer's different file under the same name.
    #[error("the artifact `{key}` in {location} does not match its folder's index ({why}); the folder was not used")]
    Mismatch {
        /// Where the store is.
        location: String,
        /// The key.
        key: String,
        /// What differs.
        why: String,
    },
    /// The artifact location could not be understood.
    #[error("cannot use `{spec}` as an artifact store: {why}")]
    Spec {
        /// What was given.
        spec: String,
        /// Why not.
        why: String,
    },
}

/// A place that keeps objects by key, shared by every machine of a team.
///
/// # Keys
/// Keys are relative paths: plain names separated by `/` (`runs/r1/checkpoints/epoch-3/model.safetensors`).
/// Anything else is [`ArtifactError::InvalidKey`]. A prefix names a folder: `runs/r1` covers
/// `runs/r1/…`, never `runs/r10/…`.
///
/// # Atomicity
/// Readers see an object whole or not at all, never part of one, and a failed put leaves nothing
/// behind. [`put_new`](ArtifactStore::put_new) is a conditional put: of several writers creating
/// the same key, exactly one succeeds and the others are told, whatever machines they run on.
///
/// # Threads
/// Every method takes `&self` and may be called from any thread at once.
pub trait ArtifactStore: Send + Sync {
    /// Where the store is, for messages: a folder path, `s3://bucket/prefix`.
    fn location(&self) -> &str;

    /// Stores `bytes` at `key` only if nothing is there; `false` (and nothing written) when the
    /// key exists.
    fn put_new(&self, key: &str, bytes: &[u8]) -> Result<bool, ArtifactError>;

    /// Stores `bytes` at `key`, replacing what was there.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), ArtifactError>;

    /// The object at `key`; `None` when there is none.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArtifactError>;

    /// Every key under the folder `prefix` (all keys for an empty prefix), sorted, with sizes.
    fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, ArtifactError>;

    /// Deletes every key under the folder `prefix`; returns how many were deleted.
    fn delete_prefix(&self, prefix: &str) -> Result<u64, ArtifactError>;
}

/// Turns an I/O error on `path` into an [`ArtifactError`].
pub(crate) fn file_error(path: &std::path::Path, action: &'static str) -> impl FnOnce(std::io::Error) -> ArtifactError {
    let path = path.to_path_buf();
    move |source| ArtifactError::File(regimen_fs::FileError { path, action, source })
}

/// Checks that `key` is a relative path of plain names.
pub fn check_key(key: &str) -> Result<(), ArtifactError> {
    let plain =
        |segment: &str| !segment.is_empty() && segment != "." && segment != ".." && !segment.contains(['\\', '\0']);
    if key.split('/').all(plain) { Ok(()) } else { Err(ArtifactError::InvalidKey { key: key.to_string() }) }
}

/// Opens the artifact store that `spec` names: `s3://bucket[/prefix]` (credentials, region and a
/// custom endpoint from the usual `AWS_*` variables, see [`S3::from_url`]), or a folder path.
pub fn open(spec: &str) -> Result<Arc<dyn ArtifactStore>, ArtifactError> {
    if spec.starts_with("s3://") {
        return Ok(Arc::new(S3::from_url(spec)?));
    }
    if let Some((scheme, _)) = spec.split_once("://") {
        return Err(ArtifactError::Spec {
            spec: spec.to_string(),
            why: format!("no `{scheme}` artifact stores in this build; give a folder or an s3:// URL"),
        });
    }
    Ok(Arc::new(Folder::new(spec)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_relative_paths_of_plain_names() {
        for good in ["a", "runs/r1/model.safetensors", "runs/r1/.index"] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in ["", "/abs", "a//b", "a/../b", "./a", "a/", "a\\b", ".."] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_unknown_scheme_is_an_error_not_a_folder() {
        let error = open("gs://bucket/x").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("`gs`") && error.contains("s3://"), "{error}");
    }
}
