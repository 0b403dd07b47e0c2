//! [`ArtifactStore`] in a folder: local, or a network file system every machine mounts.
//!
//! A put writes a temporary file beside the target and renames it into place (`regimen_fs::write`), so
//! readers never see part of an object. A conditional put links the temporary file to the target
//! name instead of renaming it: `link` fails when the name exists, on every POSIX file system and
//! NFS, so exactly one of several writers creates the key.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::{ArtifactError, ArtifactStore, check_key, file_error};

/// Objects as files under one folder.
#[derive(Debug, Clone)]
pub struct Folder {
    root: PathBuf,
    location: String,
}

impl Folder {
    /// The store in folder `root` (created when first written to).
    pub fn new(root: impl Into<PathBuf>) -> Folder {
        let root = root.into();
        Folder { location: root.display().to_string(), root }
    }

    fn path(&self, key: &str) -> Result<PathBuf, ArtifactError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

/// A temporary name beside `path`, unique to this writer.
fn temporary(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{:016x}.tmp", rand::random::<u64>()))
}

impl ArtifactStore for Folder {
    fn location(&self) -> &str {
        &self.location
    }

    fn put_new(&self, key: &str, bytes: &[u8]) -> Result<bool, ArtifactError> {
        let path = self.path(key)?;
        if path.exists() {
            return Ok(false);
        }
        let parent = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent).map_err(file_error(parent, "create the artifact folder"))?;
        let staged = temporary(&path);
        regimen_fs::write(&staged, bytes).map_err(file_error(&staged, "write the artifact"))?;
        let linked = std::fs::hard_link(&staged, &path);
        let _ = std::fs::remove_file(&staged);
        match linked {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(error) => Err(file_error(&path, "create the artifact")(error)),
        }
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), ArtifactError> {
        let path = self.path(key)?;
        let parent = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent).map_err(file_error(parent, "create the artifact folder"))?;
        regimen_fs::write(&path, bytes).map_err(file_error(&path, "write the artifact"))
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArtifactError> {
        let path = self.path(key)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(file_error(&path, "read the artifact")(error)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, ArtifactError> {
        let start = if prefix.is_empty() { self.root.clone() } else { self.path(prefix)? };
        let mut found = Vec::new();
        let mut pending = vec![start];
        while let Some(dir) = pending.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(error) if error.kind() == ErrorKind::NotFound => continue,
                Err(error) => return Err(file_error(&dir, "list the artifact folder")(error)),
            };
            for entry in entries {
                let entry = entry.map_err(file_error(&dir, "list the artifact folder"))?;
                let path = entry.path();
                let metadata = entry.metadata().map_err(file_error(&path, "inspect the artifact"))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if metadata.is_dir() {
                    pending.push(path);
                } else if !(name.starts_with('.') && name.ends_with(".tmp")) {
                    let key = path.strip_prefix(&self.root).unwrap_or(&path);
                    let key = key.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
                    found.push((key, metadata.len()));
                }
            }
        }
        found.sort();
        Ok(found)
    }

    fn delete_prefix(&self, prefix: &str) -> Result<u64, ArtifactError> {
        let listed = self.list(prefix)?;
        for (key, _) in &listed {
            let path = self.path(key)?;
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == ErrorKind::NotFound => {}
                Err(error) => return Err(file_error(&path, "delete the artifact")(error)),
            }
        }
        if !prefix.is_empty() {
            let folder = self.path(prefix)?;
            if folder.is_dir() {
                std::fs::remove_dir_all(&folder).map_err(file_error(&folder, "delete the artifact folder"))?;
            }
        }
        Ok(listed.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::conformance::Factory;

    const IN_A_FOLDER: Factory = || {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary folder: {e}"));
        Some((Arc::new(Folder::new(dir.path().join("artifacts"))), Box::new(dir)))
    };

    crate::artifact_conformance!(conformance, IN_A_FOLDER);
}
