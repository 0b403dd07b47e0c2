//! CIFAR-10 binary batches.
//!
//! Each file is a sequence of 3073-byte records: one label byte, then 32x32 red, then green, then
//! blue bytes. The planes are already in `[channel, height, width]` order, so a record's pixels map
//! straight onto one sample. `data_batch_1.bin` to `data_batch_5.bin` are the data and
//! `test_batch.bin` the format's own test split; `batches.meta.txt` (one class name per line), when
//! present, names the classes.

use std::path::{Path, PathBuf};

use super::{LoadOptions, dataset_name, file_name, list_dir, read_file};
use crate::error::{DataError, Position};
use crate::types::{Samples, Source, Targets, Task};

/// Bytes per record: one label and 3x32x32 pixels.
const RECORD: usize = 1 + 3 * 32 * 32;

/// CIFAR-10's class names, used when there is no `batches.meta.txt`.
const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// Loads a CIFAR-10 folder, or a single `.bin` batch.
pub(crate) fn load(path: &Path, options: &LoadOptions) -> Result<Source, DataError> {
    let (dir, data_files, test_file) = if path.is_dir() {
        let entries = list_dir(path)?;
        let mut data: Vec<(u64, PathBuf)> = entries
            .iter()
            .filter_map(|p| {
                let name = file_name(p);
                let number = name.strip_prefix("data_batch_")?.strip_suffix(".bin")?.parse().ok()?;
                Some((number, p.clone()))
            })
            .collect();
        data.sort();
        if data.is_empty() {
            return Err(DataError::CifarMissing { dir: path.to_owned() });
        }
        let test = path.join("test_batch.bin");
        let test = test.is_file().then_some(test);
        (path.to_owned(), data.into_iter().map(|(_, p)| p).collect(), test)
    } else {
        let dir = path.parent().unwrap_or(Path::new(".")).to_owned();
        (dir, vec![path.to_owned()], None)
    };

    let classes = match &options.classes {
        Some(classes) => classes.clone(),
        None => read_class_names(&dir)?,
    };
    let data = read_batches(&data_files, &classes)?;
    let test = test_file.map(|file| read_batches(&[file], &classes)).transpose()?;
    Ok(Source { name: dataset_name(path), task: Task::Classification { classes }, data, test })
}

/// Class names from `batches.meta.txt` in `dir` (non-empty lines), or CIFAR-10's own names.
fn read_class_names(dir: &Path) -> Result<Vec<String>, DataError> {
    let meta = dir.join("batches.meta.txt");
    if !meta.is_file() {
        return Ok(CIFAR10_CLASSES.iter().map(|c| (*c).to_owned()).collect());
    }
    let text = String::from_utf8_lossy(&read_file(&meta)?).into_owned();
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect())
}

/// Reads batch files into one set of samples, checking the size and every label.
fn read_batches(files: &[PathBuf], classes: &[String]) -> Result<Samples, DataError> {
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for file in files {
        parse(&read_file(file)?, file, classes, &mut features, &mut labels)?;
    }
    Ok(Samples { shape: vec![3, 32, 32], features, targets: Targets::Classes(labels) })
}

/// Parses the records of one batch file, appending to `features` and `labels`.
fn parse(
    bytes: &[u8],
    path: &Path,
    classes: &[String],
    features: &mut Vec<f32>,
    labels: &mut Vec<u32>,
) -> Result<(), DataError> {
    if !bytes.len().is_multiple_of(RECORD) {
        return Err(DataError::CifarSize { path: path.to_owned(), size: bytes.len() as u64 });
    }
    features.reserve(bytes.len() / RECORD * (RECORD - 1));
    for (index, record) in bytes.chunks_exact(RECORD).enumerate() {
        let label = record[0];
        if usize::from(label) >= classes.len() {
            return Err(DataError::LabelOutOfRange {
                path: path.to_owned(),
                position: Some(Position::Sample(index)),
                label: label.to_string(),
                classes: classes.to_vec(),
            });
        }
        labels.push(u32::from(label));
        features.extend(record[1..].iter().map(|&p| f32::from(p) / 255.0));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record with label `label` whose red plane is 255, green 128 and blue `label`.
    fn record(label: u8) -> Vec<u8> {
        let mut r = vec![label];
        r.extend(std::iter::repeat_n(255u8, 1024));
        r.extend(std::iter::repeat_n(128u8, 1024));
        r.extend(std::iter::repeat_n(label, 1024));
        r
    }

    fn batch(labels: &[u8]) -> Vec<u8> {
        labels.iter().flat_map(|&l| record(l)).collect()
    }

    #[test]
    fn loads_batches_and_test_batch() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("data_batch_1.bin"), batch(&[0, 1, 2, 3, 4]))?;
        std::fs::write(dir.path().join("data_batch_2.bin"), batch(&[5, 6, 7, 8, 9]))?;
        std::fs::write(dir.path().join("data_batch_10.bin"), batch(&[9]))?;
        std::fs::write(dir.path().join("test_batch.bin"), batch(&[3, 3]))?;
        let source = super::super::load(dir.path(), &LoadOptions::default())?;
        assert_eq!(source.data.shape, vec![3, 32, 32]);
        assert_eq!(source.data.targets, Targets::Classes(vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9]));
        let row = source.data.row(7);
        assert_eq!((row[0], row[1024], row[2048]), (1.0, 128.0 / 255.0, 7.0 / 255.0));
        assert_eq!(source.test.map(|t| t.targets), Some(Targets::Classes(vec![3, 3])));
        let Task::Classification { classes } = source.task else { panic!("classification expected") };
        assert_eq!(classes[0], "airplane");
        Ok(())
    }

    #[test]
    fn reads_class_names_from_meta() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("only.bin");
        std::fs::write(&file, batch(&[1, 0]))?;
        std::fs::write(dir.path().join("batches.meta.txt"), "cold\nhot\n\n")?;
        let source = super::super::load(&file, &LoadOptions::default())?;
        assert_eq!(source.task, Task::Classification { classes: vec!["cold".into(), "hot".into()] });
        assert_eq!(source.name, "only");
        Ok(())
    }

    #[test]
    fn size_not_multiple_of_record() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let mut bytes = batch(&[1, 2]);
        bytes.truncate(RECORD + 100);
        std::fs::write(dir.path().join("data_batch_1.bin"), bytes)?;
        let err = super::super::load(dir.path(), &LoadOptions::default());
        let message = err.as_ref().err().map(ToString::to_string).unwrap_or_default();
        assert!(matches!(err, Err(DataError::CifarSize { size, .. }) if size == RECORD as u64 + 100));
        assert!(message.contains("1 whole records and 100 bytes left over"), "{message}");
        Ok(())
    }

    #[test]
    fn label_byte_out_of_range() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("data_batch_1.bin"), batch(&[1, 10]))?;
        let err = super::super::load(dir.path(), &LoadOptions::default());
        assert!(
            matches!(err, Err(DataError::LabelOutOfRange { position: Some(Position::Sample(1)), ref label, .. }) if label == "10")
        );
        Ok(())
    }

    #[test]
    fn folder_without_batches() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("test_batch.bin"), batch(&[1]))?;
        assert!(matches!(super::super::load(dir.path(), &LoadOptions::default()), Err(DataError::CifarMissing { .. })));
        Ok(())
    }
}
