//! Where a store keeps things on disk, defined once: the store folder holds `runs/`, and each run
//! has a folder `runs/<run id>/` with its config, its event log, its checkpoints and its final
//! weights. The trainer writes these, `regimen rm` and `gc` delete them, readers find them here;
//! none of them spells a file name of its own.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::StoreError;
use crate::model::GcOptions;
use crate::sqlite::{DB_FILE, SqliteOptions, SqliteStore};
use crate::store::RunStore;
use regimen_fs::FileError;

/// The folder under a store's root that holds one folder per run.
pub const RUNS_DIR: &str = "runs";

/// A run's folder and the files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// The folder of run `run_id` in the store folder `root`.
    pub fn of(root: &Path, run_id: &str) -> RunDir {
        RunDir { path: root.join(RUNS_DIR).join(run_id) }
    }

    /// A run folder at `path`, wherever it is.
    pub fn at(path: impl Into<PathBuf>) -> RunDir {
        RunDir { path: path.into() }
    }

    /// Creates the folder of a new run under `root`, with an id made of `stem` and a random
    /// suffix, and returns the id with the folder. The folder is created with `create_dir`, which
    /// fails when it exists, so two runs started at once never share one: a taken id is retried.
    pub fn create(root: &Path, stem: &str) -> io::Result<(String, RunDir)> {
        let runs = root.join(RUNS_DIR);
        std::fs::create_dir_all(&runs)?;
        loop {
            let id = format!("{stem}-{:04x}", rand::random::<u16>());
            let dir = RunDir::of(root, &id);
            match std::fs::create_dir(&dir.path) {
                Ok(()) => return Ok((id, dir)),
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(error),
            }
        }
    }

    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run id: the folder's name.
    pub fn id(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// The store folder that holds this run folder (`<root>/runs/<id>`), when it is in one.
    pub fn store_root(&self) -> Option<&Path> {
        let runs = self.path.parent()?;
        (runs.file_name()? == RUNS_DIR).then(|| runs.parent()).flatten()
    }

    /// The resolved configuration, replayable with `regimen train --config`.
    pub fn config(&self) -> PathBuf {
        self.path.join("config.toml")
    }

    /// Every event of the run, one JSON object a line.
    pub fn events(&self) -> PathBuf {
        self.path.join("events.jsonl")
    }

    /// The checkpoint folders.
    pub fn checkpoints(&self) -> PathBuf {
        self.path.join("checkpoints")
    }

    /// The weights the run hands over.
    pub fn final_model(&self) -> PathBuf {
        self.path.join("model.safetensors")
    }
}

/// Whether a run id can name a folder: not empty, no path separators, not `.` or `..`, no NUL.
pub(crate) fn is_safe_component(run_id: &str) -> bool {
    !run_id.is_empty() && run_id != "." && run_id != ".." && !run_id.contains(['/', '\\', '\0'])
}

/// Removes the folder of run `run_id` under the store folder `root`, if there is one.
pub(crate) fn remove_run_folder(root: &Path, run_id: &str) -> Result<(), StoreError> {
    if !is_safe_component(run_id) {
        return Ok(());
    }
    let dir = RunDir::of(root, run_id).path;
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|source| StoreError::Io(FileError { path: dir, action: "remove the run folder", source }))?;
    }
    Ok(())
}

/// Removes (unless `dry_run`) the run folders under `root` that no run in `known` owns and that are
/// older than the grace period, and returns them sorted: what `gc` does to the files of any store.
pub(crate) fn remove_orphan_folders(
    root: &Path,
    known: &HashSet<String>,
    options: &GcOptions,
) -> Result<Vec<PathBuf>, StoreError> {
    let runs_dir = root.join(RUNS_DIR);
    let io = |path: &Path, action, source| StoreError::Io(FileError { path: path.to_path_buf(), action, source });
    let now = std::time::SystemTime::now();
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(&runs_dir).map_err(|e| io(&runs_dir, "list the run folders in", e))? {
        let entry = entry.map_err(|e| io(&runs_dir, "list the run folders in", e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let metadata = entry.metadata().map_err(|e| io(&path, "inspect", e))?;
        let age = metadata.modified().ok().and_then(|m| now.duration_since(m).ok()).unwrap_or_default();
        if !metadata.is_dir() || known.contains(&name) || age < options.orphan_grace {
            continue;
        }
        if !options.dry_run {
            std::fs::remove_dir_all(&path).map_err(|e| io(&path, "remove the orphan run folder", e))?;
        }
        removed.push(path);
    }
    removed.sort();
    Ok(removed)
}

/// Opens the run store that `spec` names: a folder path opens (creating it if needed) the embedded
/// SQLite store there; a `postgres://` URL opens the team store in that database, with run folders
/// under [`artifacts_folder`]. A URL of a kind this build cannot open (`s3://…`) is an error that
/// says so, rather than a local folder named after the scheme.
///
/// `REGIMEN_STALE_AFTER` (seconds, default 30) sets how long a running run may go without a
/// heartbeat before readers mark it crashed: raise it for stores on slow network file systems.
pub fn open(spec: &Path) -> Result<std::sync::Arc<dyn RunStore>, StoreError> {
    #[cfg(feature = "postgres")]
    if let Some(url) = postgres_url(spec) {
        return Ok(std::sync::Arc::new(open_postgres(url)?));
    }
    check_scheme(spec)?;
    Ok(std::sync::Arc::new(SqliteStore::open_with(spec, options()?)?))
}

/// The variable naming the folder that holds a team store's run folders.
pub const ARTIFACTS_ENV: &str = "REGIMEN_ARTIFACTS";

/// Where a team store keeps run folders (checkpoints, exports, pictures): `REGIMEN_ARTIFACTS`, or
/// `.regimen` in the working folder, made absolute so that child processes agree. Machines that
/// share a sweep need it on a file system they all see, or `REGIMEN_ARTIFACTS` set to an `s3://`
/// URL: run folders are then written locally (to `REGIMEN_CACHE`, default `.regimen`) and their
/// checkpoints copied there.
pub fn artifacts_folder() -> Result<PathBuf, StoreError> {
    let shared = std::env::var(ARTIFACTS_ENV).ok().filter(|value| !value.contains("://"));
    let folder =
        shared.or_else(|| std::env::var(CACHE_ENV).ok()).map_or_else(|| PathBuf::from(".regimen"), PathBuf::from);
    std::path::absolute(&folder)
        .map_err(|source| StoreError::Io(FileError { path: folder, action: "resolve the artifact folder", source }))
}

/// The variable naming the local folder for run folders when `REGIMEN_ARTIFACTS` is a URL.
pub const CACHE_ENV: &str = "REGIMEN_CACHE";

/// `spec` as child processes and other folders must see it: a folder made absolute, a URL as is.
pub fn resolve_spec(spec: &Path) -> Result<PathBuf, StoreError> {
    if spec.to_string_lossy().contains("://") {
        return Ok(spec.to_path_buf());
    }
    std::path::absolute(spec).map_err(|source| {
        StoreError::Io(FileError { path: spec.to_path_buf(), action: "resolve the store folder", source })
    })
}

#[cfg(feature = "postgres")]
fn postgres_url(spec: &Path) -> Option<&str> {
    spec.to_str().filter(|text| crate::postgres::is_postgres_url(text))
}

#[cfg(feature = "postgres")]
fn open_postgres(url: &str) -> Result<crate::postgres::PostgresStore, StoreError> {
    let options = crate::postgres::PostgresOptions {
        stale_after: options()?.stale_after,
        artifacts: Some(artifacts_folder()?),
        ..crate::postgres::PostgresOptions::default()
    };
    crate::postgres::PostgresStore::open(url, options)
}

/// The name of the variable that sets the crash threshold, in seconds.
pub const STALE_AFTER_ENV: &str = "REGIMEN_STALE_AFTER";

fn options() -> Result<SqliteOptions, StoreError> {
    let mut options = SqliteOptions::default();
    if let Ok(text) = std::env::var(STALE_AFTER_ENV) {
        let seconds: f64 = text.trim().parse().map_err(|_| StoreError::Invalid {
            what: STALE_AFTER_ENV,
            value: text.clone(),
            why: "it must be a number of seconds, such as 30",
        })?;
        options.stale_after = std::time::Duration::try_from_secs_f64(seconds).map_err(|_| StoreError::Invalid {
            what: STALE_AFTER_ENV,
            value: text.clone(),
            why: "it must be a non-negative number of seconds, such as 30",
        })?;
    }
    Ok(options)
}

/// Opens the store that `spec` names only if it exists: reading commands must not create a store
/// as a side effect of a mistyped `--store`.
pub fn open_existing(spec: &Path) -> Result<Option<std::sync::Arc<dyn RunStore>>, StoreError> {
    #[cfg(feature = "postgres")]
    if let Some(url) = postgres_url(spec) {
        // A database is created by its administrator, never by a typo; opening adds the tables.
        return Ok(Some(std::sync::Arc::new(open_postgres(url)?)));
    }
    check_scheme(spec)?;
    if !spec.join(DB_FILE).is_file() {
        return Ok(None);
    }
    Ok(Some(std::sync::Arc::new(SqliteStore::open_with(spec, options()?)?)))
}

/// Refuses a `scheme://` store this build has no backend for.
fn check_scheme(spec: &Path) -> Result<(), StoreError> {
    let spec = spec.to_string_lossy();
    match spec.split_once("://") {
        Some((scheme, _))
            if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            Err(StoreError::UnsupportedStore { spec: spec.to_string(), scheme: scheme.to_string() })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_this_build_cannot_open_is_an_error_not_a_folder() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let cwd_spec = dir.path().join("postgres:").join("host");
        for spec in ["s3://bucket/prefix", "postgresql+psycopg://u@h/d"] {
            let error = open(Path::new(spec)).err().expect("refused").to_string();
            assert!(error.contains(spec.split("://").next().unwrap_or_default()), "{error}");
            assert!(error.contains("folder path"), "{error}");
        }
        assert!(!cwd_spec.exists());
        assert!(open(&dir.path().join("store")).is_ok());
    }

    #[test]
    fn run_folders_are_never_shared() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut ids = std::collections::HashSet::new();
        for _ in 0..200 {
            let (id, run) = RunDir::create(dir.path(), "20240501-120000").expect("create");
            assert!(run.path().is_dir());
            assert_eq!(run.id(), id);
            assert_eq!(run.store_root(), Some(dir.path()));
            assert!(ids.insert(id), "two runs got one folder");
        }
    }
}
