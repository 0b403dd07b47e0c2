//! Writing an output file so that it is either complete or absent.
//!
//! The content goes to a hidden temporary file in the destination folder, which is flushed, synced
//! and renamed over the destination; then the folder is synced. A failure at any point (an encoder
//! error, a full disk, a crash) leaves the previous file, or none, never a torn one: the temporary
//! file is removed when it is dropped unrenamed.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::ExportError;

/// Writes `path` atomically with `write`, replacing an existing file.
///
/// The folder holding `path` must exist ([`ExportError::MissingFolder`] otherwise).
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<&mut File>) -> io::Result<()>,
) -> Result<(), ExportError> {
    let folder = folder_of(path);
    if !folder.is_dir() {
        return Err(ExportError::MissingFolder { path: path.to_path_buf(), folder });
    }
    let io = |action: &'static str| move |source| ExportError::Io { path: path.to_path_buf(), action, source };
    let mut temporary = temporary_file(path, &folder).map_err(io("create a temporary file for"))?;
    let mut buffered = BufWriter::new(temporary.as_file_mut());
    write(&mut buffered).map_err(io("write"))?;
    buffered.flush().map_err(io("write"))?;
    drop(buffered);
    temporary.as_file().sync_all().map_err(io("sync"))?;
    temporary.persist(path).map_err(|e| io("move into place")(e.error))?;
    File::open(&folder).and_then(|f| f.sync_all()).map_err(|source| ExportError::Io {
        path: folder.clone(),
        action: "sync the folder",
        source,
    })
}

/// The folder that holds `path`: its parent, or the current folder for a bare file name.
pub(crate) fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A hidden temporary file in `folder` named after `path`, created with the permissions an
/// ordinary new file gets (the umask applies) rather than tempfile's owner-only default.
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
    use crate::test_run::entries;

    #[test]
    fn writes_and_replaces_a_whole_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.txt");
        write_atomically(&path, |w| w.write_all(b"first")).expect("first write");
        write_atomically(&path, |w| w.write_all(b"second")).expect("second write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "second");
        assert_eq!(entries(dir.path()), ["out.txt"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.txt");
        write_atomically(&path, |w| w.write_all(b"old")).expect("first write");
        let error = write_atomically(&path, |w| {
            w.write_all(b"half of the new")?;
            Err(io::Error::other("encoder gave up"))
        })
        .expect_err("the write fails");
        assert!(matches!(error, ExportError::Io { action: "write", .. }), "{error}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "old");
        assert_eq!(entries(dir.path()), ["out.txt"]);
    }

    #[test]
    fn a_missing_folder_is_named_and_nothing_is_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing").join("out.txt");
        let error = write_atomically(&path, |w| w.write_all(b"x")).expect_err("no folder");
        let message = error.to_string();
        assert!(message.contains("missing") && message.contains("does not exist"), "{message}");
        assert!(entries(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_readable_like_any_new_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.txt");
        write_atomically(&path, |w| w.write_all(b"x")).expect("write");
        let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
        let reference = dir.path().join("reference.txt");
        std::fs::write(&reference, b"x").expect("write reference");
        let expected = std::fs::metadata(&reference).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, expected & 0o777);
    }
}
