//! Whole folders in an [`ArtifactStore`]: published complete or not at all, verified both ways.
//!
//! S3 has no rename, so a folder cannot be uploaded under a temporary name and moved into place.
//! Instead its **index** ([`INDEX`]: one line per file with its BLAKE3, size and path) is the
//! commit point: files are created first, each with a conditional put, read back and checked
//! against its hash, and only then is the index created, conditionally too. Readers take a folder
//! without an index for absent, so a publisher that dies half-way leaves nothing anyone uses, and a
//! second publisher of the same folder either finds identical files (harmless) or stops with
//! [`ArtifactError::Mismatch`] without having overwritten a byte.

use std::path::{Path, PathBuf};

use crate::{ArtifactError, ArtifactStore, check_key, file_error};

/// The name of a published folder's index, written last.
pub const INDEX: &str = ".regimen-index";

/// What [`publish_folder`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Files in the folder.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The same folder was already published (by this machine earlier, or another one).
    pub already: bool,
}

/// One file of a folder: its path relative to the folder (with `/`), size and BLAKE3.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    path: String,
    bytes: u64,
    hash: String,
}

/// The files under `folder`, sorted by relative path.
fn files(folder: &Path) -> Result<Vec<(String, PathBuf)>, ArtifactError> {
    let mut found = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(file_error(&dir, "list the folder to publish"))? {
            let entry = entry.map_err(file_error(&dir, "list the folder to publish"))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(file_error(&path, "inspect"))?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                let relative = path.strip_prefix(folder).unwrap_or(&path);
                let relative =
                    relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
                if relative != INDEX {
                    found.push((relative, path));
                }
            }
        }
    }
    found.sort();
    Ok(found)
}

fn index_text(entries: &[Entry]) -> String {
    entries.iter().map(|e| format!("{} {} {}\n", e.hash, e.bytes, e.path)).collect()
}

fn parse_index(text: &str, location: &str, key: &str) -> Result<Vec<Entry>, ArtifactError> {
    let bad = |why: String| ArtifactError::Mismatch { location: location.to_string(), key: key.to_string(), why };
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let mut parts = line.splitn(3, ' ');
            let (Some(hash), Some(bytes), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad(format!("line {} is not `BLAKE3 SIZE PATH`", i + 1)));
            };
            let bytes = bytes.parse().map_err(|_| bad(format!("line {} has the size `{bytes}`", i + 1)))?;
            check_key(path).map_err(|_| bad(format!("line {} has the path `{path}`", i + 1)))?;
            Ok(Entry { path: path.to_string(), bytes, hash: hash.to_string() })
        })
        .collect()
}

/// Publishes the files under `local` at `prefix` (see the module's doc for the protocol).
pub fn publish_folder(store: &dyn ArtifactStore, local: &Path, prefix: &str) -> Result<Published, ArtifactError> {
    check_key(prefix)?;
    let mut entries = Vec::new();
    let mut contents = Vec::new();
    for (relative, path) in files(local)? {
        let bytes = std::fs::read(&path).map_err(file_error(&path, "read the file to publish"))?;
        entries.push(Entry {
            path: relative,
            bytes: bytes.len() as u64,
            hash: blake3::hash(&bytes).to_hex().to_string(),
        });
        contents.push(bytes);
    }
    let index = index_text(&entries);
    let index_key = format!("{prefix}/{INDEX}");
    let total = Published { files: entries.len() as u64, bytes: entries.iter().map(|e| e.bytes).sum(), already: false };
    let mismatch = |key: &str, why: &str| ArtifactError::Mismatch {
        location: store.location().to_string(),
        key: key.to_string(),
        why: why.to_string(),
    };
    let compare_index = |existing: Vec<u8>| {
        if existing == index.as_bytes() {
            Ok(Published { already: true, ..total })
        } else {
            Err(mismatch(&index_key, "another writer published a different folder under this name"))
        }
    };
    if let Some(existing) = store.get(&index_key)? {
        return compare_index(existing);
    }
    for (entry, bytes) in entries.iter().zip(&contents) {
        let key = format!("{prefix}/{}", entry.path);
        if !store.put_new(&key, bytes)? {
            // Someone else's file, or ours from an interrupted try: fine only if identical.
            let existing = store.get(&key)?.unwrap_or_default();
            if blake3::hash(&existing).to_hex().as_str() != entry.hash {
                return Err(mismatch(&key, "another writer's different file is already there"));
            }
        }
        let stored = store.get(&key)?.ok_or_else(|| mismatch(&key, "it is missing right after it was written"))?;
        if stored.len() as u64 != entry.bytes || blake3::hash(&stored).to_hex().as_str() != entry.hash {
            return Err(mismatch(&key, "what was stored differs from what was sent"));
        }
    }
    if store.put_new(&index_key, index.as_bytes())? {
        Ok(total)
    } else {
        compare_index(store.get(&index_key)?.unwrap_or_default())
    }
}

/// Copies the file `local` to `key`, replacing what was there (a run's final model changes when the
/// run is resumed), then reads it back and checks it against the file's BLAKE3.
pub fn publish_file(store: &dyn ArtifactStore, local: &Path, key: &str) -> Result<u64, ArtifactError> {
    let bytes = std::fs::read(local).map_err(file_error(local, "read the file to publish"))?;
    store.put(key, &bytes)?;
    let stored = store.get(key)?.unwrap_or_default();
    if stored.len() != bytes.len() || blake3::hash(&stored) != blake3::hash(&bytes) {
        return Err(ArtifactError::Mismatch {
            location: store.location().to_string(),
            key: key.to_string(),
            why: "what was stored differs from what was sent".to_string(),
        });
    }
    Ok(bytes.len() as u64)
}

/// Fetches the folder published at `prefix` into `local`, which appears whole or not at all;
/// `None` when nothing is published there. Every file is checked against the index. When `local`
/// exists already (another process fetched it first), it is left as it is.
pub fn fetch_folder(store: &dyn ArtifactStore, prefix: &str, local: &Path) -> Result<Option<u64>, ArtifactError> {
    check_key(prefix)?;
    let index_key = format!("{prefix}/{INDEX}");
    let Some(index) = store.get(&index_key)? else { return Ok(None) };
    let entries = parse_index(&String::from_utf8_lossy(&index), store.location(), &index_key)?;
    let name = local.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let staging = local.with_file_name(format!(".{name}.{:016x}.fetching", rand::random::<u64>()));
    let result = (|| {
        for entry in &entries {
            let key = format!("{prefix}/{}", entry.path);
            let mismatch = |why: &str| ArtifactError::Mismatch {
                location: store.location().to_string(),
                key: key.clone(),
                why: why.to_string(),
            };
            let bytes = store.get(&key)?.ok_or_else(|| mismatch("it is missing"))?;
            if bytes.len() as u64 != entry.bytes || blake3::hash(&bytes).to_hex().as_str() != entry.hash {
                return Err(mismatch("its content differs from the BLAKE3 in the index"));
            }
            let path = staging.join(&entry.path);
            let parent = path.parent().unwrap_or(&staging);
            std::fs::create_dir_all(parent).map_err(file_error(parent, "create the fetched folder"))?;
            regimen_fs::write(&path, &bytes).map_err(file_error(&path, "write the fetched file"))?;
        }
        std::fs::create_dir_all(&staging).map_err(file_error(&staging, "create the fetched folder"))?;
        if local.exists() {
            return Ok(());
        }
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent).map_err(file_error(parent, "create the folder for"))?;
        }
        std::fs::rename(&staging, local).map_err(file_error(local, "put the fetched folder in place at"))
    })();
    if staging.exists() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result.map(|()| Some(entries.len() as u64))
}
