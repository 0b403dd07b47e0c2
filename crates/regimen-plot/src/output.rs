//! Picking the format from the file name, and writing the file atomically.

use std::path::Path;

use crate::PlotError;

/// The image formats [`crate::plot`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A bitmap, with text rendered from the embedded font.
    Png,
    /// A vector picture whose text stays text.
    Svg,
}

impl Format {
    /// The format named by `path`'s extension (`.png` or `.svg`, in any case).
    pub fn from_path(path: &Path) -> Result<Self, PlotError> {
        let extension = path.extension().map(|e| e.to_string_lossy().into_owned());
        match extension.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("png") => Ok(Self::Png),
            Some("svg") => Ok(Self::Svg),
            _ => Err(PlotError::UnsupportedFormat { path: path.to_path_buf(), extension }),
        }
    }
}

/// Fails early, before any drawing, when the folder `path` goes into does not exist.
pub(crate) fn check_folder(path: &Path) -> Result<(), PlotError> {
    let folder = regimen_fs::folder_of(path);
    if folder.is_dir() {
        Ok(())
    } else {
        Err(PlotError::MissingFolder { path: path.to_path_buf(), folder: folder.to_path_buf() })
    }
}

/// Writes `bytes` over `path` atomically ([`regimen_fs::write`]), so a reader never sees half a
/// picture and a failed write leaves any previous file intact.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PlotError> {
    regimen_fs::write(path, bytes).map_err(|source| PlotError::Write { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn the_extension_picks_the_format() {
        assert_eq!(Format::from_path(Path::new("out/curves.png")).unwrap(), Format::Png);
        assert_eq!(Format::from_path(Path::new("curves.SVG")).unwrap(), Format::Svg);
        let error = Format::from_path(Path::new("plots/curves.jpg")).unwrap_err().to_string();
        assert_eq!(
            error,
            "cannot tell which image format to write for plots/curves.jpg: extension `.jpg` is not supported; \
             supported extensions are .png and .svg"
        );
        let error = Format::from_path(Path::new("curves")).unwrap_err().to_string();
        assert!(error.contains("it has no extension"), "{error}");
    }

    #[test]
    fn a_bare_file_name_goes_into_the_current_folder() {
        assert_eq!(regimen_fs::folder_of(Path::new("curves.png")), Path::new("."));
        assert_eq!(regimen_fs::folder_of(Path::new("a/b.png")), Path::new("a"));
    }

    #[test]
    fn writes_replace_the_file_and_leave_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.svg");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["curves.svg"]);
    }

    #[test]
    fn a_failed_write_names_the_path_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        // A folder in the way makes the final rename fail.
        let path = dir.path().join("taken.png");
        fs::create_dir(&path).unwrap();
        let error = write_atomic(&path, b"x").unwrap_err().to_string();
        assert!(error.starts_with(&format!("cannot write {}: ", path.display())), "{error}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "temporary file left behind");
    }
}
