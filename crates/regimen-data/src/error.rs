//! The one error type of this crate.
//!
//! Data problems are the user's to fix, so every variant carries what a person needs to find and fix
//! the problem without a debugger: the file, the 1-based line (or the 0-based sample index in binary
//! files), the 1-based column, the offending value, and a sentence saying what to do. Messages are
//! full sentences meant to be printed as is by a command-line tool. Nothing in this crate panics on
//! bad input; every check ends here.

use std::fmt;
use std::path::PathBuf;

use crate::generated::BUILTIN_DATASETS;
use crate::load::{Format, TaskKind};
use crate::split::SplitName;

/// Where in a file a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// A 1-based line of a text file.
    Line(u64),
    /// A 0-based sample index in a binary file.
    Sample(usize),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line(line) => write!(f, "line {line}"),
            Position::Sample(index) => write!(f, "sample {index}"),
        }
    }
}

/// Everything that can go wrong while loading, checking or splitting data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The path given for a dataset does not exist.
    #[error(
        "{} does not exist. Check the path for typos (relative paths start from the current folder).",
        path.display()
    )]
    NotFound {
        /// The missing file or folder.
        path: PathBuf,
    },

    /// A file or folder exists but could not be read.
    #[error("cannot read {}: {error}. Check that it is readable and not damaged.", path.display())]
    Io {
        /// The file or folder that failed.
        path: PathBuf,
        /// What the operating system or decompressor said.
        error: std::io::Error,
    },

    /// A CSV file is empty or has a header but no rows.
    #[error(
        "{} has no data rows. A CSV dataset needs a header row naming the columns and at least one row of values.",
        path.display()
    )]
    CsvNoRows {
        /// The CSV file.
        path: PathBuf,
    },

    /// The CSV reader could not parse the file (for example, text that is not UTF-8).
    #[error("{}{}: cannot parse the CSV: {message}. Save the file as UTF-8 CSV with a header row.", path.display(), at_line(*line))]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// The 1-based line, when known.
        line: Option<u64>,
        /// What the CSV reader said.
        message: String,
    },

    /// A CSV row has a different number of cells than the header.
    #[error(
        "{}: line {line} has {found} values but the header has {expected} columns. Every row needs one value per header column; check for missing or extra commas.",
        path.display()
    )]
    CsvColumnCount {
        /// The CSV file.
        path: PathBuf,
        /// The 1-based line of the row.
        line: u64,
        /// The number of header columns.
        expected: usize,
        /// The number of cells in this row.
        found: usize,
    },

    /// A feature cell of a CSV row is empty or not a number.
    #[error(
        "{0}. Feature columns must be numeric: encode categories as numbers, fill in missing values, or choose this column as the label with --label {name}.",
        name = .0.name
    )]
    CsvNotNumeric(CsvCell),

    /// A regression label is empty or not a number.
    #[error(
        "{0}, but a regression label must be a number. Pass --task classification to treat the labels as class names."
    )]
    CsvLabelNotNumeric(CsvCell),

    /// The CSV file has no column left for features once the label column is taken.
    #[error(
        "{} has only the label column `{label}`; it needs at least one feature column besides it.",
        path.display()
    )]
    CsvNoFeatures {
        /// The CSV file.
        path: PathBuf,
        /// The label column's name.
        label: String,
    },

    /// The label column asked for is not in the CSV header.
    #[error(
        "{} has no column named `{label}`. Available columns: {}. Pass one of them with --label.",
        path.display(),
        available.join(", ")
    )]
    MissingLabelColumn {
        /// The CSV file.
        path: PathBuf,
        /// The column name asked for.
        label: String,
        /// The header's column names.
        available: Vec<String>,
    },

    /// An IDX file does not start with the magic number of the expected kind of file.
    #[error(
        "{}: wrong IDX magic number 0x{found:08x}, expected 0x{expected:08x} ({}). Check that this is an IDX {} file such as {}, raw or gzipped.",
        path.display(),
        idx_kind(*expected),
        idx_kind(*expected),
        idx_example(*expected)
    )]
    IdxMagic {
        /// The IDX file.
        path: PathBuf,
        /// The first four bytes, big-endian (missing bytes read as zero).
        found: u32,
        /// The magic number this file should have.
        expected: u32,
    },

    /// An IDX file's size does not match the dimensions its header declares.
    #[error(
        "{}: the IDX header declares dimensions {}, which need {expected} bytes in all, but the file has {found} bytes. The file is truncated or damaged; download it again.",
        path.display(),
        format_dims(dims)
    )]
    IdxSize {
        /// The IDX file.
        path: PathBuf,
        /// The dimensions read from the header (empty when the header itself is cut short).
        dims: Vec<usize>,
        /// The size the header implies, in bytes (`u64::MAX` when it overflows).
        expected: u64,
        /// The actual size, in bytes (after decompression).
        found: u64,
    },

    /// An IDX images file and its labels file disagree on the number of samples.
    #[error(
        "{} holds {images_count} images but {} holds {labels_count} labels. Both files must come from the same split of the same dataset.",
        images.display(),
        labels.display()
    )]
    IdxCountMismatch {
        /// The images file.
        images: PathBuf,
        /// The labels file.
        labels: PathBuf,
        /// The number of images.
        images_count: usize,
        /// The number of labels.
        labels_count: usize,
    },

    /// A file an IDX dataset needs is missing.
    #[error(
        "{} has no {file} file (raw or .gz). An IDX dataset such as MNIST needs train-images-idx3-ubyte and train-labels-idx1-ubyte, and optionally the t10k-* pair for its test split.",
        dir.display()
    )]
    IdxMissingFile {
        /// The folder searched.
        dir: PathBuf,
        /// The file name that was expected.
        file: String,
    },

    /// A CIFAR-10 binary file whose size is not a whole number of 3073-byte records.
    #[error(
        "{} is {size} bytes, which is not a multiple of 3073 (one label byte and 3072 pixel bytes per image): {} whole records and {} bytes left over. The file is truncated or is not a CIFAR-10 binary batch; download it again.",
        path.display(),
        size / 3073,
        size % 3073
    )]
    CifarSize {
        /// The CIFAR file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },

    /// A CIFAR-10 folder without any `data_batch_*.bin` file.
    #[error(
        "{} has no data_batch_*.bin files. A CIFAR-10 binary dataset needs data_batch_1.bin to data_batch_5.bin and optionally test_batch.bin; or pass the path of one .bin file.",
        dir.display()
    )]
    CifarMissing {
        /// The folder searched.
        dir: PathBuf,
    },

    /// Two images of an image-folder dataset (or an IDX train and test set) differ in size.
    #[error(
        "all images of a dataset must have the same size, but {} is {}x{} and {} is {}x{} (width x height). Resize the images to one size first.",
        first.display(),
        first_size.0,
        first_size.1,
        other.display(),
        other_size.0,
        other_size.1
    )]
    MixedImageSizes {
        /// The first image read, whose size all others must match.
        first: PathBuf,
        /// Its width and height.
        first_size: (u32, u32),
        /// The image of a different size.
        other: PathBuf,
        /// Its width and height.
        other_size: (u32, u32),
    },

    /// An image file could not be decoded.
    #[error("cannot decode the image {}: {message}. Check that it is a valid PNG or JPEG file, or move it out of the dataset folder.", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// What the decoder said.
        message: String,
    },

    /// A folder with no class subfolders holding images.
    #[error(
        "{} has no class subfolders with PNG or JPEG images. An image-folder dataset needs one subfolder per class, for example data/cat/*.png and data/dog/*.png, and optionally train/ and test/ folders laid out the same way.",
        path.display()
    )]
    NoImages {
        /// The folder searched.
        path: PathBuf,
    },

    /// A feature value (or regression label) is NaN or infinite.
    #[error(
        "{}: {position}, column {column}: the value {value} is not a finite number. Remove or fill in NaN and infinite values before training.",
        path.display()
    )]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The line or sample.
        position: Position,
        /// The 1-based column.
        column: usize,
        /// The offending value.
        value: f32,
    },

    /// A label that is not one of the dataset's classes.
    #[error(
        "{}{}: the label `{label}` is not one of the classes ({}). Fix the label, or declare the classes so that they include it.",
        path.display(),
        at_position(*position),
        classes.join(", ")
    )]
    LabelOutOfRange {
        /// The file or folder.
        path: PathBuf,
        /// The line or sample, when the label comes from a file's content.
        position: Option<Position>,
        /// The offending label as written.
        label: String,
        /// The classes the label should be one of.
        classes: Vec<String>,
    },

    /// A split (or a class within the train split) would have no samples.
    #[error("{}", describe_empty_split(*split, *available, class.as_deref()))]
    EmptySplit {
        /// The split that would be empty.
        split: SplitName,
        /// How many samples there are to split (or of the class, when `class` is set).
        available: usize,
        /// The class missing from the train split, when the problem is one class.
        class: Option<String>,
    },

    /// Split fractions that cannot be used.
    #[error(
        "the split fractions val = {val} and test = {test} cannot be used: each must be between 0 and 1 and together below 1. For example pass 0.2,0.2 for 60/20/20."
    )]
    InvalidSplit {
        /// The validation fraction given.
        val: f64,
        /// The test fraction given.
        test: f64,
    },

    /// A split specification that cannot be parsed.
    #[error(
        "cannot read the split `{value}`. Use auto, two fractions for val and test such as 0.2,0.2, or two sample counts such as 5000,5000."
    )]
    InvalidSplitSpec {
        /// The text given.
        value: String,
    },

    /// A dataset manifest is malformed, or its sources cannot be combined.
    #[error("dataset manifest {}: {message}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong, naming the sources and files involved, and what to do.
        message: String,
    },

    /// A dataset name that is neither built in nor an existing path.
    #[error(
        "`{name}` is neither a built-in dataset nor an existing file or folder. Built-in datasets: {}.",
        BUILTIN_DATASETS.join(", ")
    )]
    UnknownDataset {
        /// The name given.
        name: String,
    },

    /// The format of a path could not be guessed.
    #[error(
        "cannot tell the format of {}. Pass --format csv|idx|cifar|folder.",
        path.display()
    )]
    UndetectableFormat {
        /// The file or folder.
        path: PathBuf,
    },

    /// A format name that is not one of the supported formats.
    #[error("unknown data format `{value}`. Use one of csv, idx, cifar, folder.")]
    UnknownFormat {
        /// The name given.
        value: String,
    },

    /// A task name that is not `classification` or `regression`.
    #[error("unknown task `{value}`. Use classification or regression.")]
    UnknownTaskKind {
        /// The name given.
        value: String,
    },

    /// A task that a format cannot provide (image formats are classification only).
    #[error(
        "{format} datasets hold class labels, so they can only be used for classification, not {task}. Use a CSV file for regression."
    )]
    UnsupportedTask {
        /// The dataset format.
        format: Format,
        /// The task asked for.
        task: TaskKind,
    },
}

impl DataError {
    /// An [`DataError::Io`] for `path`, or [`DataError::NotFound`] when the error says it is missing.
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> DataError {
        let path = path.into();
        if error.kind() == std::io::ErrorKind::NotFound {
            DataError::NotFound { path }
        } else {
            DataError::Io { path, error }
        }
    }
}

fn at_line(line: Option<u64>) -> String {
    line.map(|l| format!(": line {l}")).unwrap_or_default()
}

fn at_position(position: Option<Position>) -> String {
    position.map(|p| format!(": {p}")).unwrap_or_default()
}

/// One cell of a CSV file, for the errors that name it: shown as
/// ``data.csv: line 7, column 2 (`x`): `abc` is not a number``.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvCell {
    /// The CSV file.
    pub path: PathBuf,
    /// The 1-based line of the row, as the file counts its lines.
    pub line: u64,
    /// The 1-based column.
    pub column: usize,
    /// The column's header name.
    pub name: String,
    /// The cell as written in the file.
    pub value: String,
}

impl std::fmt::Display for CsvCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (path, line, column, name) = (self.path.display(), self.line, self.column, &self.name);
        write!(f, "{path}: line {line}, column {column} (`{name}`): {}", describe_cell(&self.value))
    }
}

fn describe_cell(value: &str) -> String {
    if value.is_empty() { "the cell is empty".to_owned() } else { format!("`{value}` is not a number") }
}

fn idx_kind(magic: u32) -> &'static str {
    if magic == crate::load::idx::IMAGES_MAGIC { "images" } else { "labels" }
}

fn idx_example(magic: u32) -> &'static str {
    if magic == crate::load::idx::IMAGES_MAGIC { "train-images-idx3-ubyte" } else { "train-labels-idx1-ubyte" }
}

fn format_dims(dims: &[usize]) -> String {
    if dims.is_empty() {
        "(the header is cut short)".to_owned()
    } else {
        dims.iter().map(usize::to_string).collect::<Vec<_>>().join("x")
    }
}

fn describe_empty_split(split: SplitName, available: usize, class: Option<&str>) -> String {
    match class {
        Some(class) => format!(
            "class `{class}` would have no samples in the train split ({available} samples of it in all). Add samples of this class, remove it from the declared classes, or use smaller val/test fractions."
        ),
        None => format!(
            "the {split} split would be empty: {available} samples are too few for the requested split. Add more data, or choose other fractions with --split (for example 0.2,0.2)."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_sentences_with_context() {
        let e = DataError::CsvNotNumeric(CsvCell {
            path: "d.csv".into(),
            line: 3,
            column: 2,
            name: "age".into(),
            value: "old".into(),
        });
        let m = e.to_string();
        assert!(m.contains("d.csv: line 3, column 2 (`age`): `old` is not a number"), "{m}");
        assert!(m.ends_with('.'));
        let empty = DataError::CsvNotNumeric(CsvCell {
            path: "d.csv".into(),
            line: 3,
            column: 2,
            name: "age".into(),
            value: String::new(),
        });
        assert!(empty.to_string().contains("the cell is empty"));
    }

    #[test]
    fn empty_split_names_split_and_class() {
        let e = DataError::EmptySplit { split: SplitName::Val, available: 3, class: None };
        assert!(e.to_string().contains("the val split would be empty: 3 samples"));
        let e = DataError::EmptySplit { split: SplitName::Train, available: 1, class: Some("cat".into()) };
        assert!(e.to_string().contains("class `cat`"));
    }

    #[test]
    fn unknown_dataset_lists_builtins() {
        let m = DataError::UnknownDataset { name: "mnits".into() }.to_string();
        for name in BUILTIN_DATASETS {
            assert!(m.contains(name), "{m}");
        }
    }

    #[test]
    fn io_not_found_becomes_not_found() {
        let e = DataError::io("x", std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(matches!(e, DataError::NotFound { .. }));
        let e = DataError::io("x", std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert!(matches!(e, DataError::Io { .. }));
    }

    #[test]
    fn idx_messages_show_found_and_expected() {
        let e = DataError::IdxMagic { path: "f".into(), found: 0x0801, expected: 0x0803 };
        let m = e.to_string();
        assert!(m.contains("0x00000801") && m.contains("0x00000803") && m.contains("images"), "{m}");
        let e = DataError::IdxSize { path: "f".into(), dims: vec![2, 28, 28], expected: 1584, found: 100 };
        assert!(e.to_string().contains("2x28x28"));
    }
}
