//! Exports one recorded run to files that other tools read: a long CSV table (pandas, R,
//! spreadsheets), JSON lines (scripts; nothing the store knows is lost), or a TensorBoard event
//! file (TensorBoard and everything that reads its logs).
//!
//! Each format has a writer onto any [`std::io::Write`] ([`write_csv`], [`write_jsonl`],
//! [`write_tensorboard_events`]), whose documentation is the format's schema, and [`export`]
//! puts the output on disk: always atomically (temporary file, fsync, rename, folder fsync), so an
//! export that fails leaves the previous file or nothing, never half a file that a plotting
//! script would silently read.
//!
//! The crate reads a [`RunDetail`] and nothing else: it knows nothing about training, Burn, the
//! command line or how the store keeps runs.

mod atomic;
mod csv_long;
mod error;
mod jsonl;
mod tensorboard;
#[cfg(test)]
mod test_run;

use std::fmt;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use regimen_fs::FileError;
use regimen_store::RunDetail;

pub use csv_long::{CSV_HEADER, write_csv};
pub use error::{ExportError, UnknownFormatError};
pub use jsonl::{JSONL_SCHEMA_VERSION, number, run_json, write_jsonl};
pub use tensorboard::{HPARAMS_TEXT_TAG, RUN_TEXT_TAG, event_file_name, write_tensorboard_events};

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Metric points as a long CSV table ([`write_csv`]).
    Csv,
    /// The whole run as JSON lines ([`write_jsonl`]).
    Jsonl,
    /// Metric points and the run's description as a TensorBoard event file
    /// ([`write_tensorboard_events`]).
    TensorBoard,
}

impl Format {
    /// Every format, in the order help texts list them.
    pub const ALL: [Format; 3] = [Format::Csv, Format::Jsonl, Format::TensorBoard];

    /// The name used on the command line: `csv`, `jsonl`, `tensorboard`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::TensorBoard => "tensorboard",
        }
    }

    /// The names of every format, comma-separated, for help texts and errors.
    pub fn names() -> String {
        Format::ALL.map(Format::name).join(", ")
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = UnknownFormatError;

    /// Parses a format name, ignoring ASCII case.
    fn from_str(name: &str) -> Result<Format, UnknownFormatError> {
        Format::ALL
            .into_iter()
            .find(|format| format.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownFormatError { given: name.to_string() })
    }
}

/// Exports a run to disk and returns the path of the file written.
///
/// Where the output goes:
/// - [`Format::Csv`] and [`Format::Jsonl`]: `out` is the file to write, replacing an existing
///   one; when `out` is an existing folder, the file is `<out>/<run id>.csv` (or `.jsonl`). The
///   folder holding the file must exist ([`ExportError::MissingFolder`]).
/// - [`Format::TensorBoard`]: `out` is a TensorBoard log folder (what `tensorboard --logdir`
///   takes), and the file is `<out>/<run id>/` + [`event_file_name`], so that runs exported
///   into one folder show up side by side under their ids. `out` is created when missing,
///   provided its parent exists; so is the run's folder. Exporting the same run again replaces
///   its event file.
///
/// A run id that cannot name a file (empty, `.`, `..`, or with a path separator; the store never
/// makes one) is refused with [`ExportError::UnsafeRunId`]. The file is written atomically: on
/// any error, the previous file (if any) is untouched, no partial or temporary file remains, and
/// folders this call created are removed again.
pub fn export(detail: &RunDetail, format: Format, out: &Path) -> Result<PathBuf, ExportError> {
    let run_id = &detail.row.run_id;
    if run_id.is_empty() || run_id == "." || run_id == ".." || run_id.contains(['/', '\\']) {
        return Err(ExportError::UnsafeRunId { run_id: run_id.clone() });
    }
    match format {
        Format::Csv => export_file(detail, out, format, |file| write_csv(detail, file)),
        Format::Jsonl => export_file(detail, out, format, |file| write_jsonl(detail, file)),
        Format::TensorBoard => export_tensorboard(detail, out),
    }
}

/// Writes a one-file format to `out`, or to `<out>/<run id>.<format>` when `out` is a folder.
fn export_file(
    detail: &RunDetail,
    out: &Path,
    format: Format,
    write: impl FnOnce(&mut BufWriter<&mut std::fs::File>) -> io::Result<()>,
) -> Result<PathBuf, ExportError> {
    let path =
        if out.is_dir() { out.join(format!("{}.{}", detail.row.run_id, format.name())) } else { out.to_path_buf() };
    atomic::write_atomically(&path, write)?;
    Ok(path)
}

/// Writes the event file into `<out>/<run id>/`, creating both folders as needed and removing
/// those it created if the write fails.
fn export_tensorboard(detail: &RunDetail, out: &Path) -> Result<PathBuf, ExportError> {
    let run_folder = out.join(&detail.row.run_id);
    let path = run_folder.join(event_file_name(detail));
    let mut created = Vec::new();
    let written = create_folder(out, &mut created)
        .and_then(|()| create_folder(&run_folder, &mut created))
        .and_then(|()| atomic::write_atomically(&path, |file| write_tensorboard_events(detail, file)));
    if written.is_err() {
        // Only empty folders go: `remove_dir` refuses anything else, so this never deletes what
        // someone else put there meanwhile.
        for folder in created.iter().rev() {
            let _ = std::fs::remove_dir(folder);
        }
    }
    written.map(|()| path)
}

/// Creates `folder` unless it exists, recording it in `created`; its parent must exist.
fn create_folder(folder: &Path, created: &mut Vec<PathBuf>) -> Result<(), ExportError> {
    if folder.is_dir() {
        return Ok(());
    }
    if folder.exists() {
        return Err(ExportError::NotAFolder { path: folder.to_path_buf() });
    }
    let parent = atomic::folder_of(folder);
    if !parent.is_dir() {
        return Err(ExportError::MissingFolder { path: folder.to_path_buf(), folder: parent });
    }
    std::fs::create_dir(folder).map_err(|source| {
        ExportError::Io(FileError { path: folder.to_path_buf(), action: "create the folder", source })
    })?;
    created.push(folder.to_path_buf());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_run::{entries, sample_run};

    #[test]
    fn formats_parse_by_name_and_list_themselves_when_unknown() {
        for format in Format::ALL {
            assert_eq!(format.name().parse::<Format>(), Ok(format));
        }
        assert_eq!("TensorBoard".parse::<Format>(), Ok(Format::TensorBoard));
        let error = "parquet".parse::<Format>().expect_err("unknown");
        assert_eq!(error.to_string(), "unknown export format `parquet`; expected one of: csv, jsonl, tensorboard");
    }

    #[test]
    fn a_file_path_is_written_as_given() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("metrics.txt");
        assert_eq!(export(&sample_run(), Format::Csv, &path).expect("export"), path);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with("run_id,run_name,key,step,epoch,wall_time,value\n"), "{text}");
        assert_eq!(entries(dir.path()), ["metrics.txt"]);
    }

    #[test]
    fn a_folder_gets_a_file_named_after_the_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (format, name) in [(Format::Csv, "r1.csv"), (Format::Jsonl, "r1.jsonl")] {
            assert_eq!(export(&sample_run(), format, dir.path()).expect("export"), dir.path().join(name));
        }
        assert_eq!(entries(dir.path()), ["r1.csv", "r1.jsonl"]);
        let jsonl = std::fs::read_to_string(dir.path().join("r1.jsonl")).expect("read");
        assert_eq!(jsonl.lines().count(), 1 + 4 + 1 + 2 + 1);
    }

    #[test]
    fn a_missing_folder_is_a_clear_error_and_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        for format in [Format::Csv, Format::Jsonl] {
            let out = dir.path().join("nope").join("run.out");
            let error = export(&sample_run(), format, &out).expect_err("missing folder");
            assert!(matches!(&error, ExportError::MissingFolder { folder, .. } if folder == &dir.path().join("nope")));
            assert!(error.to_string().contains("does not exist"), "{error}");
        }
        let error =
            export(&sample_run(), Format::TensorBoard, &dir.path().join("a").join("b")).expect_err("missing parent");
        assert!(matches!(error, ExportError::MissingFolder { .. }), "{error}");
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn tensorboard_writes_one_event_file_per_run_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logdir = dir.path().join("tb");
        let path = export(&sample_run(), Format::TensorBoard, &logdir).expect("export");
        assert_eq!(path, logdir.join("r1").join("events.out.tfevents.1714564800.gpu-box_lab.regimen"));
        let again = export(&sample_run(), Format::TensorBoard, &logdir).expect("export again");
        assert_eq!(again, path);
        assert_eq!(entries(&logdir.join("r1")), ["events.out.tfevents.1714564800.gpu-box_lab.regimen"]);
        let mut expected = Vec::new();
        write_tensorboard_events(&sample_run(), &mut expected).expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), expected);
    }

    #[test]
    fn a_failed_tensorboard_export_removes_the_folders_it_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut run = sample_run();
        if let Some(points) = run.series.get_mut("val.acc") {
            points[0].step = u64::MAX;
        }
        let error = export(&run, Format::TensorBoard, &dir.path().join("tb")).expect_err("step too large");
        assert!(error.to_string().contains("val.acc"), "{error}");
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn tensorboard_refuses_a_file_as_its_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("tb");
        std::fs::write(&file, b"not a folder").expect("write");
        let error = export(&sample_run(), Format::TensorBoard, &file).expect_err("a file");
        assert!(matches!(error, ExportError::NotAFolder { .. }), "{error}");
    }

    #[test]
    fn run_ids_that_are_not_file_names_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        for run_id in ["", ".", "..", "a/b", "a\\b"] {
            let mut run = sample_run();
            run.row.run_id = run_id.to_string();
            let error = export(&run, Format::Csv, dir.path()).expect_err("unsafe id");
            assert!(matches!(error, ExportError::UnsafeRunId { .. }), "{error}");
        }
        assert!(entries(dir.path()).is_empty());
    }
}
