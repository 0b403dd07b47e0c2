//! Replacing a file so that it is either complete or absent, the one way every Regimen writer puts
//! a file on disk.
//!
//! The content goes to a hidden temporary file in the destination folder, which is flushed, synced
//! and renamed over the destination; then the folder is synced, so the rename itself survives a
//! power loss. A failure at any point (an encoder error, a full disk, a crash) leaves the previous
//! file, or none, never a torn one, and no temporary file behind: it is removed when dropped
//! unrenamed. The new file gets the permissions an ordinary new file gets (the umask applies), not
//! the owner-only mode of a temporary file.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file operation that failed, with the file and what was being done: the I/O error of every
/// Regimen crate (`StoreError::Io`, `TrainError::Io`, `ExportError::Io` wrap it), shown as
/// "could not write the checkpoint file /x/y: No space left on device (os error 28)".
#[derive(Debug, thiserror::Error)]
#[error("could not {action} {}: {source}", path.display())]
pub struct FileError {
    /// The file or folder.
    pub path: PathBuf,
    /// What was being done, as a verb phrase ("create the run folder").
    pub action: &'static str,
    /// What the operating system said.
    #[source]
    pub source: io::Error,
}

/// Replaces `path` with `bytes`.
///
/// # Errors
/// What the operating system said; the folder holding `path` must exist.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, |out| out.write_all(bytes))
}

/// Replaces `path` with what `write` writes into the buffered temporary file.
///
/// # Errors
/// The first error of `write`, or what the operating system said while creating, syncing or
/// renaming the file; the folder holding `path` must exist.
pub fn write_with(path: &Path, write: impl FnOnce(&mut BufWriter<&mut File>) -> io::Result<()>) -> io::Result<()> {
    let folder = folder_of(path);
    let mut temporary = temporary_file(path, folder)?;
    let mut buffered = BufWriter::new(temporary.as_file_mut());
    write(&mut buffered)?;
    buffered.flush()?;
    drop(buffered);
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|error| error.error)?;
    File::open(folder)?.sync_all()
}

/// The folder that holds `path`: its parent, or the current folder for a bare file name.
pub fn folder_of(path: &Path) -> &Path {
    path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// A hidden temporary file in `folder` named after `path`, created with the permissions an
/// ordinary new file gets rather than tempfile's owner-only default.
fn temporary_file(path: &Path, folder: &Path) -> io::Result<tempfile::NamedTempFile> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(folder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_and_replaces_a_whole_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.txt");
        write(&path, b"first").expect("first write");
        write(&path, b"second").expect("second write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "second");
        assert_eq!(entries(dir.path()), ["out.txt"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.txt");
        write(&path, b"old").expect("first write");
        let error = write_with(&path, |w| {
            w.write_all(b"half of the new")?;
            Err(io::Error::other("encoder gave up"))
        })
        .expect_err("the write fails");
        assert_eq!(error.to_string(), "encoder gave up");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "old");
        assert_eq!(entries(dir.path()), ["out.txt"]);
    }

    #[test]
    fn a_rename_that_fails_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("taken");
        std::fs::create_dir(&path).expect("a folder in the way");
        assert!(write(&path, b"x").is_err());
        assert_eq!(entries(dir.path()), ["taken"]);
    }

    #[test]
    fn a_missing_folder_is_an_error_and_creates_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(write(&dir.path().join("missing").join("out.txt"), b"x").is_err());
        assert!(entries(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_readable_like_any_new_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.txt");
        write(&path, b"x").expect("write");
        let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
        let reference = dir.path().join("reference.txt");
        std::fs::write(&reference, b"x").expect("write reference");
        let expected = std::fs::metadata(&reference).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, expected & 0o777);
    }
}
