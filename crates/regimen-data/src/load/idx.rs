//! IDX files, the format of MNIST and Fashion-MNIST, raw or gzipped.
//!
//! An IDX file is a big-endian header (two zero bytes, a type byte, the number of dimensions, then
//! each dimension as a `u32`) followed by the data. Images are `0x00000803` (unsigned bytes, three
//! dimensions: count, rows, columns) and labels `0x00000801` (bytes, one dimension). The header and
//! the file size are checked against each other, so a truncated download is reported as such
//! instead of producing garbage images. Gzip is recognised by its magic bytes, not by the file name.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{LoadOptions, dataset_name, file_name, read_file};
use crate::error::{DataError, Position};
use crate::types::{Samples, Source, Targets, Task};

/// Magic number of an IDX file of unsigned bytes with three dimensions (images).
pub(crate) const IMAGES_MAGIC: u32 = 0x0000_0803;

/// Magic number of an IDX file of unsigned bytes with one dimension (labels).
pub(crate) const LABELS_MAGIC: u32 = 0x0000_0801;

/// Loads a folder holding the MNIST file layout, or one images file with its labels file beside it.
pub(crate) fn load(path: &Path, options: &LoadOptions) -> Result<Source, DataError> {
    let (data, test) = if path.is_dir() {
        let train = find_pair(path, "train")?.ok_or_else(|| DataError::IdxMissingFile {
            dir: path.to_owned(),
            file: "train-images-idx3-ubyte".to_owned(),
        })?;
        let data = load_pair(&train.0, &train.1)?;
        let test = match find_pair(path, "t10k")? {
            Some((images, labels)) => {
                let test = load_pair(&images, &labels)?;
                if test.samples.shape != data.samples.shape {
                    return Err(size_mismatch(&train.0, &data.samples.shape, &images, &test.samples.shape));
                }
                Some(test)
            }
            None => None,
        };
        (data, test)
    } else {
        let labels = labels_beside(path)?;
        (load_pair(path, &labels)?, None)
    };

    let max_label = data.labels.iter().chain(test.iter().flat_map(|t| &t.labels)).max().copied();
    let classes: Vec<String> = match &options.classes {
        Some(classes) => classes.clone(),
        None => (0..=max_label.unwrap_or(0)).map(|l| l.to_string()).collect(),
    };
    let data = data.into_samples(&classes)?;
    let test = test.map(|t| t.into_samples(&classes)).transpose()?;
    Ok(Source { name: dataset_name(path), task: Task::Classification { classes }, data, test })
}

/// One split read from an images file and a labels file, before the labels are checked against the
/// classes.
struct Pair {
    /// The images, with empty targets.
    samples: Samples,
    /// The raw label bytes.
    labels: Vec<u8>,
    /// The labels file, for errors.
    labels_path: PathBuf,
}

impl Pair {
    /// Checks the labels against the classes and sets them as the samples' targets.
    fn into_samples(self, classes: &[String]) -> Result<Samples, DataError> {
        let Pair { mut samples, labels, labels_path } = self;
        if let Some(index) = labels.iter().position(|&l| usize::from(l) >= classes.len()) {
            return Err(DataError::LabelOutOfRange {
                path: labels_path,
                position: Some(Position::Sample(index)),
                label: labels[index].to_string(),
                classes: classes.to_vec(),
            });
        }
        samples.targets = Targets::Classes(labels.into_iter().map(u32::from).collect());
        Ok(samples)
    }
}

/// Reads an images file and its labels file into samples and raw labels.
fn load_pair(images_path: &Path, labels_path: &Path) -> Result<Pair, DataError> {
    let images_bytes = decompress(read_file(images_path)?, images_path)?;
    let (dims, pixels) = parse(&images_bytes, IMAGES_MAGIC, images_path)?;
    let labels_bytes = decompress(read_file(labels_path)?, labels_path)?;
    let (label_dims, labels) = parse(&labels_bytes, LABELS_MAGIC, labels_path)?;
    if dims[0] != label_dims[0] {
        return Err(DataError::IdxCountMismatch {
            images: images_path.to_owned(),
            labels: labels_path.to_owned(),
            images_count: dims[0],
            labels_count: label_dims[0],
        });
    }
    let samples = Samples {
        shape: vec![1, dims[1], dims[2]],
        features: pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
        targets: Targets::Classes(Vec::new()),
    };
    Ok(Pair { samples, labels: labels.to_vec(), labels_path: labels_path.to_owned() })
}

/// Parses IDX bytes with the given magic number into its dimensions and its data.
///
/// The magic number fixes the number of dimensions, and the data must be exactly as long as the
/// dimensions say.
pub(crate) fn parse<'a>(bytes: &'a [u8], magic: u32, path: &Path) -> Result<(Vec<usize>, &'a [u8]), DataError> {
    let mut head = [0u8; 4];
    for (h, b) in head.iter_mut().zip(bytes) {
        *h = *b;
    }
    let found = u32::from_be_bytes(head);
    if found != magic || bytes.len() < 4 {
        if bytes.len() < 4 && magic.to_be_bytes().starts_with(&bytes[..bytes.len().min(4)]) {
            return Err(truncated(path, Vec::new(), 4, bytes.len()));
        }
        return Err(DataError::IdxMagic { path: path.to_owned(), found, expected: magic });
    }
    let rank = usize::from(head[3]);
    let header_len = 4 + 4 * rank;
    let Some(header) = bytes.get(4..header_len) else {
        return Err(truncated(path, Vec::new(), header_len as u64, bytes.len()));
    };
    let dims: Vec<usize> =
        header.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let data_len = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
    let expected = data_len.and_then(|d| d.checked_add(header_len as u64)).unwrap_or(u64::MAX);
    if expected != bytes.len() as u64 {
        return Err(truncated(path, dims, expected, bytes.len()));
    }
    Ok((dims, &bytes[header_len..]))
}

fn truncated(path: &Path, dims: Vec<usize>, expected: u64, found: usize) -> DataError {
    DataError::IdxSize { path: path.to_owned(), dims, expected, found: found as u64 }
}

/// Gunzips `bytes` when they start with the gzip magic bytes; returns them unchanged otherwise.
pub(crate) fn decompress(bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>, DataError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes.as_slice()).read_to_end(&mut out).map_err(|e| DataError::io(path, e))?;
    Ok(out)
}

/// Finds `{prefix}-images-idx3-ubyte` and `{prefix}-labels-idx1-ubyte` in `dir` (raw or `.gz`, with
/// `-` or `.` before `idx`); `None` when there is no images file, an error when only labels are missing.
fn find_pair(dir: &Path, prefix: &str) -> Result<Option<(PathBuf, PathBuf)>, DataError> {
    let Some(images) = find(dir, &format!("{prefix}-images"), "idx3-ubyte") else {
        return Ok(None);
    };
    let labels = find(dir, &format!("{prefix}-labels"), "idx1-ubyte").ok_or_else(|| DataError::IdxMissingFile {
        dir: dir.to_owned(),
        file: format!("{prefix}-labels-idx1-ubyte"),
    })?;
    Ok(Some((images, labels)))
}

fn find(dir: &Path, stem: &str, kind: &str) -> Option<PathBuf> {
    ["-", "."]
        .iter()
        .flat_map(|sep| ["", ".gz"].map(|ext| dir.join(format!("{stem}{sep}{kind}{ext}"))))
        .find(|p| p.is_file())
}

/// The labels file beside an images file: the same name with `images`/`idx3` replaced by
/// `labels`/`idx1`, raw or `.gz`.
fn labels_beside(images: &Path) -> Result<PathBuf, DataError> {
    let name = file_name(images);
    let base = name.strip_suffix(".gz").unwrap_or(&name);
    let labels = base.replace("images", "labels").replace("idx3", "idx1");
    let dir = images.parent().unwrap_or(Path::new("."));
    [labels.clone(), format!("{labels}.gz")]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file() && p != images)
        .ok_or_else(|| DataError::IdxMissingFile { dir: dir.to_owned(), file: labels })
}

fn size_mismatch(first: &Path, first_shape: &[usize], other: &Path, other_shape: &[usize]) -> DataError {
    let size = |shape: &[usize]| (shape[2] as u32, shape[1] as u32);
    DataError::MixedImageSizes {
        first: first.to_owned(),
        first_size: size(first_shape),
        other: other.to_owned(),
        other_size: size(other_shape),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    /// Encodes an IDX file of unsigned bytes.
    pub(crate) fn encode(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
        for d in dims {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend_from_slice(data);
        bytes
    }

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = encoder.write_all(bytes);
        encoder.finish().unwrap_or_default()
    }

    /// Writes an MNIST-like pair of `n` images `rows x cols` with labels `i % classes`.
    fn write_pair(
        dir: &Path,
        prefix: &str,
        n: u32,
        rows: u32,
        cols: u32,
        classes: u8,
        gz: bool,
    ) -> std::io::Result<()> {
        let pixels: Vec<u8> = (0..n * rows * cols).map(|i| (i % 256) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % u32::from(classes)) as u8).collect();
        let images = encode(&[n, rows, cols], &pixels);
        let labels = encode(&[n], &labels);
        let (images, labels, ext) = if gz { (gzip(&images), gzip(&labels), ".gz") } else { (images, labels, "") };
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte{ext}")), images)?;
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte{ext}")), labels)
    }

    #[test]
    fn loads_mnist_layout_with_test_split() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        write_pair(dir.path(), "train", 20, 4, 3, 10, false)?;
        write_pair(dir.path(), "t10k", 10, 4, 3, 10, true)?;
        let source = super::super::load(dir.path(), &LoadOptions::default())?;
        assert_eq!(source.data.shape, vec![1, 4, 3]);
        assert_eq!(source.data.len(), 20);
        assert_eq!(source.data.row(0)[1], 1.0 / 255.0);
        assert_eq!(source.data.targets, Targets::Classes((0..20).map(|i| i % 10).collect()));
        assert_eq!(source.task.num_outputs(), 10);
        assert_eq!(source.test.map(|t| t.len()), Some(10));
        Ok(())
    }

    #[test]
    fn loads_a_single_gzipped_images_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        write_pair(dir.path(), "train", 6, 2, 2, 3, true)?;
        let path = dir.path().join("train-images-idx3-ubyte.gz");
        let source = super::super::load(&path, &LoadOptions::default())?;
        assert_eq!(source.data.len(), 6);
        assert_eq!(source.task, Task::Classification { classes: vec!["0".into(), "1".into(), "2".into()] });
        assert!(source.test.is_none());
        Ok(())
    }

    #[test]
    fn wrong_magic_shows_found_and_expected() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        write_pair(dir.path(), "train", 2, 2, 2, 2, false)?;
        // Swap the files: the images path now holds labels.
        let labels = std::fs::read(dir.path().join("train-labels-idx1-ubyte"))?;
        std::fs::write(dir.path().join("train-images-idx3-ubyte"), labels)?;
        match super::super::load(dir.path(), &LoadOptions::default()) {
            Err(DataError::IdxMagic { found, expected, .. }) => {
                assert_eq!((found, expected), (LABELS_MAGIC, IMAGES_MAGIC))
            }
            other => panic!("unexpected {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn truncated_file_is_a_size_error() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        write_pair(dir.path(), "train", 5, 4, 4, 2, false)?;
        let path = dir.path().join("train-images-idx3-ubyte");
        let mut bytes = std::fs::read(&path)?;
        bytes.truncate(bytes.len() - 7);
        std::fs::write(&path, &bytes)?;
        match super::super::load(dir.path(), &LoadOptions::default()) {
            Err(DataError::IdxSize { dims, expected, found, .. }) => {
                assert_eq!(dims, vec![5, 4, 4]);
                assert_eq!((expected, found), (16 + 80, 16 + 80 - 7));
            }
            other => panic!("unexpected {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn count_mismatch_between_images_and_labels() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        write_pair(dir.path(), "train", 4, 2, 2, 2, false)?;
        std::fs::write(dir.path().join("train-labels-idx1-ubyte"), encode(&[3], &[0, 1, 0]))?;
        let err = super::super::load(dir.path(), &LoadOptions::default());
        assert!(matches!(err, Err(DataError::IdxCountMismatch { images_count: 4, labels_count: 3, .. })));
        Ok(())
    }

    #[test]
    fn missing_labels_file_is_named() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        write_pair(dir.path(), "train", 4, 2, 2, 2, false)?;
        std::fs::remove_file(dir.path().join("train-labels-idx1-ubyte"))?;
        let err = super::super::load(dir.path(), &LoadOptions::default());
        assert!(matches!(err, Err(DataError::IdxMissingFile { ref file, .. }) if file == "train-labels-idx1-ubyte"));
        Ok(())
    }

    #[test]
    fn label_outside_declared_classes() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        write_pair(dir.path(), "train", 4, 2, 2, 4, false)?;
        let options = LoadOptions { classes: Some(vec!["a".into(), "b".into(), "c".into()]), ..LoadOptions::default() };
        let err = super::super::load(dir.path(), &options);
        assert!(matches!(err, Err(DataError::LabelOutOfRange { position: Some(Position::Sample(3)), .. })));
        Ok(())
    }

    #[test]
    fn test_split_of_another_size_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        write_pair(dir.path(), "train", 4, 2, 2, 2, false)?;
        write_pair(dir.path(), "t10k", 4, 3, 3, 2, false)?;
        let err = super::super::load(dir.path(), &LoadOptions::default());
        assert!(matches!(err, Err(DataError::MixedImageSizes { first_size: (2, 2), other_size: (3, 3), .. })));
        Ok(())
    }

    #[test]
    fn short_or_odd_headers_are_errors() {
        let path = Path::new("f");
        assert!(matches!(parse(&[], IMAGES_MAGIC, path), Err(DataError::IdxSize { .. })));
        assert!(matches!(parse(&[0, 0, 8], IMAGES_MAGIC, path), Err(DataError::IdxSize { .. })));
        assert!(matches!(parse(&[0, 0, 8, 3, 0, 0], IMAGES_MAGIC, path), Err(DataError::IdxSize { .. })));
        assert!(matches!(
            parse(&[1, 2, 3, 4], IMAGES_MAGIC, path),
            Err(DataError::IdxMagic { found: 0x0102_0304, .. })
        ));
        let huge = encode(&[u32::MAX, u32::MAX, u32::MAX], &[]);
        assert!(matches!(parse(&huge, IMAGES_MAGIC, path), Err(DataError::IdxSize { expected: u64::MAX, .. })));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any valid images file round-trips through encode and parse, raw or gzipped.
        #[test]
        fn valid_files_round_trip(n in 0u32..6, rows in 1u32..6, cols in 1u32..6, seed in any::<u8>(), gz in any::<bool>()) {
            let data: Vec<u8> = (0..n * rows * cols).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
            let mut bytes = encode(&[n, rows, cols], &data);
            if gz {
                bytes = gzip(&bytes);
            }
            let bytes = decompress(bytes, Path::new("p")).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let (dims, parsed) = parse(&bytes, IMAGES_MAGIC, Path::new("p")).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(dims, vec![n as usize, rows as usize, cols as usize]);
            prop_assert_eq!(parsed, data.as_slice());
        }

        /// Arbitrary bytes never panic, whether taken as raw or as gzip.
        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..64), gz in any::<bool>()) {
            if gz {
                bytes.splice(0..0, [0x1f, 0x8b]);
            }
            if let Ok(bytes) = decompress(bytes, Path::new("p")) {
                let _ = parse(&bytes, IMAGES_MAGIC, Path::new("p"));
                let _ = parse(&bytes, LABELS_MAGIC, Path::new("p"));
            }
        }

        /// A valid header followed by arbitrary data never panics and only succeeds at the right size.
        #[test]
        fn arbitrary_payloads_never_panic(dims in proptest::collection::vec(0u32..5, 3), len in 0usize..80) {
            let bytes = encode(&dims, &vec![7u8; len]);
            let ok = parse(&bytes, IMAGES_MAGIC, Path::new("p")).is_ok();
            prop_assert_eq!(ok, len as u32 == dims.iter().product::<u32>());
        }
    }
}
