//! Writing an output file so that it is either complete or absent ([`regimen_fs`], as for every
//! file Regimen replaces), after checking that its folder exists.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use crate::error::ExportError;
use regimen_fs::FileError;

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
    regimen_fs::write_with(path, write)
        .map_err(|source| ExportError::Io(FileError { path: path.to_path_buf(), action: "write", source }))
}

/// The folder that holds `path`: its parent, or the current folder for a bare file name.
pub(crate) fn folder_of(path: &Path) -> PathBuf {
    regimen_fs::folder_of(path).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_run::entries;
    use std::io::Write;

    #[test]
    fn a_missing_folder_is_named_and_nothing_is_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing").join("out.txt");
        let error = write_atomically(&path, |w| w.write_all(b"x")).expect_err("no folder");
        let message = error.to_string();
        assert!(message.contains("missing") && message.contains("does not exist"), "{message}");
        assert!(entries(dir.path()).is_empty());
    }
}
