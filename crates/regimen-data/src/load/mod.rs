//! Loaders for datasets in their real, published formats.
//!
//! Users bring data as it is distributed (MNIST's IDX files, CIFAR-10's binary batches, a CSV export,
//! a folder of images sorted into class folders), so each format is read as is, one module per
//! format, with no conversion step. Every loader returns a [`Source`]: the samples as plain `f32`
//! rows, the task, and the format's own test split when it ships one. Every check a loader makes
//! names the file, line or sample, and value in its [`DataError`].

pub(crate) mod cifar;
pub(crate) mod csv;
pub(crate) mod folder;
pub(crate) mod idx;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::error::DataError;
use crate::generated::{BUILTIN_DATASETS, builtin};
use crate::types::Source;

/// A supported file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A CSV file with a header row.
    Csv,
    /// IDX files as distributed for MNIST and Fashion-MNIST, raw or gzipped.
    Idx,
    /// CIFAR-10 binary batches.
    Cifar,
    /// A folder with one subfolder of PNG or JPEG images per class.
    Folder,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Csv => "csv",
            Format::Idx => "idx",
            Format::Cifar => "cifar",
            Format::Folder => "folder",
        })
    }
}

impl FromStr for Format {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "idx" => Ok(Format::Idx),
            "cifar" => Ok(Format::Cifar),
            "folder" => Ok(Format::Folder),
            _ => Err(DataError::UnknownFormat { value: s.to_owned() }),
        }
    }
}

/// The kind of task asked for, before the classes are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Predict one class per sample.
    Classification,
    /// Predict one real value per sample.
    Regression,
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskKind::Classification => "classification",
            TaskKind::Regression => "regression",
        })
    }
}

impl FromStr for TaskKind {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "classification" => Ok(TaskKind::Classification),
            "regression" => Ok(TaskKind::Regression),
            _ => Err(DataError::UnknownTaskKind { value: s.to_owned() }),
        }
    }
}

/// How to read a dataset; every field is optional and `Default` means "detect everything".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOptions {
    /// The format; detected from the path when `None`.
    pub format: Option<Format>,
    /// The CSV label column; when `None`, a column named `label`, `target`, `y` or `class`, else the
    /// last column.
    pub label: Option<String>,
    /// The task; inferred from a CSV's labels when `None`. Other formats are classification only.
    pub task: Option<TaskKind>,
    /// The declared classes, in label order; any label outside them is an error. When `None`, the
    /// classes are the sorted distinct labels (CSV, folders), `0..=max` (IDX) or the CIFAR-10 names.
    pub classes: Option<Vec<String>>,
}

/// Loads the dataset at `path`, detecting its format unless `options.format` is set.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Source, DataError> {
    let format = match options.format {
        Some(format) => {
            if !path.exists() {
                return Err(DataError::NotFound { path: path.to_owned() });
            }
            format
        }
        None => detect_format(path)?,
    };
    if format != Format::Csv && options.task == Some(TaskKind::Regression) {
        return Err(DataError::UnsupportedTask { format, task: TaskKind::Regression });
    }
    match format {
        Format::Csv => csv::load(path, options),
        Format::Idx => idx::load(path, options),
        Format::Cifar => cifar::load(path, options),
        Format::Folder => folder::load(path, options),
    }
}

/// The feature names of the data at `path` when its format names them (a CSV's header, without
/// the label column), in column order; `None` for formats whose features are pixels.
pub fn feature_names(path: &Path, options: &LoadOptions) -> Option<Vec<String>> {
    let format = options.format.or_else(|| detect_format(path).ok())?;
    (format == Format::Csv).then(|| csv::feature_columns(path, options).ok()).flatten()
}

/// Opens a dataset given as a built-in name (see [`BUILTIN_DATASETS`]) or a path.
///
/// A built-in name wins over a file of the same name in the current folder; `size` only applies to
/// built-in datasets.
pub fn open(name_or_path: &str, options: &LoadOptions, size: Option<usize>) -> Result<Source, DataError> {
    if BUILTIN_DATASETS.contains(&name_or_path) {
        return builtin(name_or_path, size);
    }
    let path = Path::new(name_or_path);
    if !path.exists() {
        return Err(DataError::UnknownDataset { name: name_or_path.to_owned() });
    }
    load(path, options)
}

/// Guesses the format of `path` from file names.
///
/// A file: `.csv` is CSV, `.bin` is CIFAR, a name with `idx3-ubyte` is IDX. A folder: IDX files
/// (`*-idx3-ubyte[.gz]`) mean IDX, `data_batch_*.bin` or `.bin` files mean CIFAR, and subfolders
/// holding PNG or JPEG images (directly, or under `train/`) mean an image folder.
pub fn detect_format(path: &Path) -> Result<Format, DataError> {
    let metadata = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
    let undetectable = || DataError::UndetectableFormat { path: path.to_owned() };
    if metadata.is_file() {
        let name = file_name(path).to_ascii_lowercase();
        return if name.ends_with(".csv") {
            Ok(Format::Csv)
        } else if name.ends_with(".bin") {
            Ok(Format::Cifar)
        } else if name.contains("idx3-ubyte") {
            Ok(Format::Idx)
        } else {
            Err(undetectable())
        };
    }
    let entries = list_dir(path)?;
    let names: Vec<String> = entries.iter().map(|p| file_name(p).to_ascii_lowercase()).collect();
    if names.iter().any(|n| n.contains("idx3-ubyte")) {
        return Ok(Format::Idx);
    }
    if names.iter().any(|n| n.ends_with(".bin")) {
        return Ok(Format::Cifar);
    }
    for dir in entries.iter().filter(|p| p.is_dir()) {
        if has_images(dir)? {
            return Ok(Format::Folder);
        }
        // The train/ and test/ layout: class folders one level further down.
        for sub in list_dir(dir)?.iter().filter(|p| p.is_dir()) {
            if has_images(sub)? {
                return Ok(Format::Folder);
            }
        }
    }
    Err(undetectable())
}

/// True when `dir` directly holds a PNG or JPEG file.
fn has_images(dir: &Path) -> Result<bool, DataError> {
    Ok(list_dir(dir)?.iter().any(|p| p.is_file() && is_image_name(p)))
}

/// True for file names ending in `.png`, `.jpg` or `.jpeg` (any case).
pub(crate) fn is_image_name(path: &Path) -> bool {
    let name = file_name(path).to_ascii_lowercase();
    name.ends_with(".png") || name.ends_with(".jpg") || name.ends_with(".jpeg")
}

/// The entries of a folder, sorted by name, hidden ones (starting with `.`) left out.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<std::path::PathBuf>, DataError> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            entries.push(entry.path());
        }
    }
    entries.sort();
    Ok(entries)
}

/// The last component of a path as text (lossy), or the empty string.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A dataset name for a path: the file name without extension, or the folder name.
pub(crate) fn dataset_name(path: &Path) -> String {
    let name = if path.is_dir() { path.file_name() } else { path.file_stem() };
    match name {
        Some(name) => name.to_string_lossy().into_owned(),
        None => "dataset".to_owned(),
    }
}

/// Reads a whole file.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_task_parse() {
        assert_eq!("CSV".parse::<Format>().ok(), Some(Format::Csv));
        assert_eq!("folder".parse::<Format>().ok(), Some(Format::Folder));
        let err = "parquet".parse::<Format>().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("`parquet`") && err.contains("csv, idx, cifar, folder"), "{err}");
        assert_eq!("regression".parse::<TaskKind>().ok(), Some(TaskKind::Regression));
        assert!(matches!("both".parse::<TaskKind>(), Err(DataError::UnknownTaskKind { .. })));
        for format in [Format::Csv, Format::Idx, Format::Cifar, Format::Folder] {
            assert_eq!(format.to_string().parse::<Format>().ok(), Some(format));
        }
    }

    #[test]
    fn missing_path_is_not_found() {
        let err = load(Path::new("/no/such/dataset.csv"), &LoadOptions::default());
        assert!(matches!(err, Err(DataError::NotFound { .. })));
        let forced = LoadOptions { format: Some(Format::Csv), ..LoadOptions::default() };
        assert!(matches!(load(Path::new("/no/such/x"), &forced), Err(DataError::NotFound { .. })));
    }

    #[test]
    fn undetectable_format_says_to_pass_format() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("data.parquet");
        std::fs::write(&file, b"x")?;
        let err = load(&file, &LoadOptions::default()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("--format csv|idx|cifar|folder"), "{err}");
        assert!(matches!(detect_format(dir.path()), Err(DataError::UndetectableFormat { .. })));
        Ok(())
    }

    #[test]
    fn detects_each_format() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let csv = dir.path().join("a.csv");
        std::fs::write(&csv, "x,y\n1,2\n")?;
        assert_eq!(detect_format(&csv)?, Format::Csv);
        let idx = dir.path().join("idx");
        std::fs::create_dir(&idx)?;
        std::fs::write(idx.join("train-images-idx3-ubyte.gz"), b"")?;
        assert_eq!(detect_format(&idx)?, Format::Idx);
        let cifar = dir.path().join("cifar");
        std::fs::create_dir(&cifar)?;
        std::fs::write(cifar.join("data_batch_1.bin"), b"")?;
        assert_eq!(detect_format(&cifar)?, Format::Cifar);
        assert_eq!(detect_format(&cifar.join("data_batch_1.bin"))?, Format::Cifar);
        let folder = dir.path().join("folder");
        std::fs::create_dir_all(folder.join("train").join("cat"))?;
        std::fs::write(folder.join("train").join("cat").join("1.PNG"), b"")?;
        assert_eq!(detect_format(&folder)?, Format::Folder);
        assert_eq!(detect_format(&folder.join("train"))?, Format::Folder);
        Ok(())
    }

    #[test]
    fn regression_on_images_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("data_batch_1.bin"), b"")?;
        let options = LoadOptions { task: Some(TaskKind::Regression), ..LoadOptions::default() };
        let err = load(dir.path(), &options);
        assert!(matches!(err, Err(DataError::UnsupportedTask { format: Format::Cifar, .. })));
        Ok(())
    }

    #[test]
    fn open_resolves_builtins_then_paths() {
        let source = open("spirals", &LoadOptions::default(), Some(30));
        assert_eq!(source.map(|s| s.data.len()).ok(), Some(30));
        let err = open("no-such-thing", &LoadOptions::default(), None);
        assert!(matches!(err, Err(DataError::UnknownDataset { .. })));
    }
}
