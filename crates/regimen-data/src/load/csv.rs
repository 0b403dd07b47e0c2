//! CSV tables: a header row, numeric feature columns and one label column.
//!
//! The label column is chosen by name, defaulting to the usual names (`label`, `target`, `y`,
//! `class`) and then to the last column, because that is how most exported tables are laid out.
//! Whether the labels are classes or values is inferred only when it is obvious (text labels, or a
//! few distinct integers, mean classes; other numbers mean regression), and can always be forced.
//! The whole file is checked as it is read, so the first bad cell is reported with its line and
//! column rather than surfacing later as a NaN loss. Lines are the file's own, 1-based with the
//! header on line 1, whatever its line endings (see `LineIndex`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::{LoadOptions, TaskKind, dataset_name, read_file};
use crate::error::{CsvCell, DataError, Position};
use crate::types::{Samples, Source, Targets, Task};

/// Column names taken as the label, in order of preference, when none is given.
const LABEL_NAMES: [&str; 4] = ["label", "target", "y", "class"];

/// At most this many distinct integer labels are inferred to be classes rather than values.
pub(crate) const MAX_INFERRED_CLASSES: usize = 20;

/// Loads a CSV file.
pub(crate) fn load(path: &Path, options: &LoadOptions) -> Result<Source, DataError> {
    parse(&read_file(path)?, path, options)
}

/// The feature columns of a CSV file (every column but the label), read from its header alone.
pub(crate) fn feature_columns(path: &Path, options: &LoadOptions) -> Result<Vec<String>, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut reader = ::csv::ReaderBuilder::new().has_headers(true).trim(::csv::Trim::All).from_reader(file);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| DataError::io(path, std::io::Error::other(e.to_string())))?
        .iter()
        .map(str::to_owned)
        .collect();
    if headers.is_empty() {
        return Err(DataError::CsvNoRows { path: path.to_owned() });
    }
    let label = label_column(&headers, path, options)?;
    Ok(headers.into_iter().enumerate().filter(|(i, _)| *i != label).map(|(_, h)| h).collect())
}

/// Parses CSV bytes; `path` is only used in errors and for the dataset name.
pub(crate) fn parse(bytes: &[u8], path: &Path, options: &LoadOptions) -> Result<Source, DataError> {
    let mut reader =
        ::csv::ReaderBuilder::new().has_headers(true).flexible(true).trim(::csv::Trim::All).from_reader(bytes);
    let mut line_index = LineIndex::new(bytes);
    let headers: Vec<String> =
        reader.headers().map_err(|e| csv_error(path, &e, &mut line_index))?.iter().map(str::to_owned).collect();
    if headers.is_empty() {
        return Err(DataError::CsvNoRows { path: path.to_owned() });
    }
    let label_column = label_column(&headers, path, options)?;
    if headers.len() < 2 {
        return Err(DataError::CsvNoFeatures { path: path.to_owned(), label: headers[label_column].clone() });
    }

    let mut features = Vec::new();
    let mut labels = Vec::new();
    let mut lines = Vec::new();
    let mut record = ::csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(path, &e, &mut line_index)),
        }
        let line = record.position().map_or(0, |position| line_index.record_line(position));
        if record.len() != headers.len() {
            return Err(DataError::CsvColumnCount {
                path: path.to_owned(),
                line,
                expected: headers.len(),
                found: record.len(),
            });
        }
        for (column, cell) in record.iter().enumerate() {
            if column == label_column {
                labels.push(cell.to_owned());
                continue;
            }
            let value: f32 = cell.parse().map_err(|_| {
                DataError::CsvNotNumeric(CsvCell {
                    path: path.to_owned(),
                    line,
                    column: column + 1,
                    name: headers[column].clone(),
                    value: cell.to_owned(),
                })
            })?;
            if !value.is_finite() {
                return Err(DataError::NonFinite {
                    path: path.to_owned(),
                    position: Position::Line(line),
                    column: column + 1,
                    value,
                });
            }
            features.push(value);
        }
        lines.push(line);
    }
    if labels.is_empty() {
        return Err(DataError::CsvNoRows { path: path.to_owned() });
    }

    let label = LabelColumn { path, name: &headers[label_column], column: label_column + 1, lines: &lines };
    let (task, targets) = match task_kind(&labels, options) {
        TaskKind::Regression => (Task::Regression, Targets::Values(label.values(&labels)?)),
        TaskKind::Classification => {
            let (classes, indices) = label.classes(&labels, options.classes.as_deref())?;
            (Task::Classification { classes }, Targets::Classes(indices))
        }
    };
    Ok(Source {
        name: dataset_name(path),
        task,
        data: Samples { shape: vec![headers.len() - 1], features, targets },
        test: None,
    })
}

/// The index of the label column.
fn label_column(headers: &[String], path: &Path, options: &LoadOptions) -> Result<usize, DataError> {
    match &options.label {
        Some(label) => headers.iter().position(|h| h == label).ok_or_else(|| DataError::MissingLabelColumn {
            path: path.to_owned(),
            label: label.clone(),
            available: headers.to_vec(),
        }),
        None => Ok(LABEL_NAMES
            .iter()
            .find_map(|name| headers.iter().position(|h| h.eq_ignore_ascii_case(name)))
            .unwrap_or(headers.len() - 1)),
    }
}

/// The task: as asked, else classification when classes are declared, else inferred from labels.
fn task_kind(labels: &[String], options: &LoadOptions) -> TaskKind {
    if let Some(kind) = options.task {
        return kind;
    }
    if options.classes.is_some() {
        return TaskKind::Classification;
    }
    let mut distinct = std::collections::HashSet::new();
    for label in labels {
        match label.parse::<f64>() {
            Ok(v) if v.is_finite() && v.fract() == 0.0 => {
                distinct.insert(label.as_str());
            }
            Ok(_) => return TaskKind::Regression,
            Err(_) => return TaskKind::Classification,
        }
    }
    if distinct.len() <= MAX_INFERRED_CLASSES { TaskKind::Classification } else { TaskKind::Regression }
}

/// The label column's cells, with what errors need to point at them.
struct LabelColumn<'a> {
    path: &'a Path,
    name: &'a str,
    column: usize,
    lines: &'a [u64],
}

impl LabelColumn<'_> {
    /// Labels as regression values.
    fn values(&self, labels: &[String]) -> Result<Vec<f32>, DataError> {
        labels
            .iter()
            .zip(self.lines)
            .map(|(label, &line)| {
                let value: f32 = label.parse().map_err(|_| {
                    DataError::CsvLabelNotNumeric(CsvCell {
                        path: self.path.to_owned(),
                        line,
                        column: self.column,
                        name: self.name.to_owned(),
                        value: label.clone(),
                    })
                })?;
                if value.is_finite() {
                    Ok(value)
                } else {
                    Err(DataError::NonFinite {
                        path: self.path.to_owned(),
                        position: Position::Line(line),
                        column: self.column,
                        value,
                    })
                }
            })
            .collect()
    }

    /// Labels as class indices into the declared classes, or into the sorted distinct labels
    /// (numerically sorted when they are all integers).
    fn classes(&self, labels: &[String], declared: Option<&[String]>) -> Result<(Vec<String>, Vec<u32>), DataError> {
        let classes: Vec<String> = match declared {
            Some(declared) => declared.to_vec(),
            None => {
                let distinct: BTreeMap<&str, ()> = labels.iter().map(|l| (l.as_str(), ())).collect();
                let mut classes: Vec<String> = distinct.into_keys().map(str::to_owned).collect();
                let numbers: Option<Vec<i64>> = classes.iter().map(|c| c.parse().ok()).collect();
                if let Some(numbers) = numbers {
                    let mut pairs: Vec<(i64, String)> = numbers.into_iter().zip(classes).collect();
                    pairs.sort();
                    classes = pairs.into_iter().map(|(_, c)| c).collect();
                }
                classes
            }
        };
        let index: HashMap<&str, u32> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i as u32)).collect();
        let indices = labels
            .iter()
            .zip(self.lines)
            .map(|(label, &line)| {
                index.get(label.as_str()).copied().ok_or_else(|| DataError::LabelOutOfRange {
                    path: self.path.to_owned(),
                    position: Some(Position::Line(line)),
                    label: label.clone(),
                    classes: classes.clone(),
                })
            })
            .collect::<Result<Vec<u32>, DataError>>()?;
        Ok((classes, indices))
    }
}

/// The physical line on which each record starts, counted from the record's byte offset.
///
/// The csv crate's own `Position::line` cannot be used: a record's position is where the reader
/// stopped after the previous record, and a record ends at the first byte of its line ending. After
/// a CRLF ending (what Python's csv module writes) the `\n` has not been read yet, so every record
/// would be reported one line early; blank lines that the reader skips before a record would not be
/// counted either. The byte offset in the same position is exact, so this skips the line endings
/// and blank lines that follow it and counts the line breaks before the record's first byte. A line
/// break is `\n`, `\r\n` or a lone `\r`: the endings the reader accepts, also inside quoted fields.
struct LineIndex<'a> {
    /// The whole file.
    bytes: &'a [u8],
    /// The byte offset up to which line breaks have been counted.
    offset: usize,
    /// The 1-based line on which `offset` lies.
    line: u64,
}

impl<'a> LineIndex<'a> {
    /// An index of `bytes`, the file the reader parses.
    fn new(bytes: &'a [u8]) -> LineIndex<'a> {
        LineIndex { bytes, offset: 0, line: 1 }
    }

    /// The 1-based line on which the record that the reader started reading at `position` begins.
    ///
    /// Records are read in order, so the counting resumes where the previous call stopped and a
    /// whole file costs one pass.
    fn record_line(&mut self, position: &::csv::Position) -> u64 {
        let from = usize::try_from(position.byte()).map_or(self.bytes.len(), |byte| byte.min(self.bytes.len()));
        let start = from + self.bytes[from..].iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
        if start < self.offset {
            // A position before an earlier one (not something the reader produces) is counted from
            // the start of the file, so the answer is right whatever the order of the calls.
            *self = LineIndex::new(self.bytes);
        }
        for i in self.offset..start {
            let lone_cr = self.bytes[i] == b'\r' && self.bytes.get(i + 1) != Some(&b'\n');
            if self.bytes[i] == b'\n' || lone_cr {
                self.line += 1;
            }
        }
        self.offset = start;
        self.line
    }
}

/// Converts an error of the CSV reader; its line comes from `line_index`, as for records.
fn csv_error(path: &Path, error: &::csv::Error, line_index: &mut LineIndex<'_>) -> DataError {
    let line = error.position().map(|position| line_index.record_line(position));
    let message = match error.kind() {
        ::csv::ErrorKind::Utf8 { err, .. } => format!("the text is not valid UTF-8 ({err})"),
        ::csv::ErrorKind::Io(err) => err.to_string(),
        _ => error.to_string(),
    };
    DataError::Csv { path: path.to_owned(), line, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_str(text: &str, options: &LoadOptions) -> Result<Source, DataError> {
        parse(text.as_bytes(), Path::new("data.csv"), options)
    }

    fn default() -> LoadOptions {
        LoadOptions::default()
    }

    #[test]
    fn loads_a_file_from_disk() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("iris.csv");
        std::fs::write(&path, "a,b,species\n1,2,setosa\n3,4,virginica\n5,6,setosa\n")?;
        let source = super::super::load(&path, &default())?;
        assert_eq!(source.name, "iris");
        assert_eq!(source.data.shape, vec![2]);
        assert_eq!(source.data.features, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(source.task, Task::Classification { classes: vec!["setosa".into(), "virginica".into()] });
        assert_eq!(source.data.targets, Targets::Classes(vec![0, 1, 0]));
        Ok(())
    }

    #[test]
    fn label_column_by_known_name_or_last() -> Result<(), DataError> {
        let s = parse_str("target,x\n1,0.5\n0,0.25\n", &default())?;
        assert_eq!(s.data.features, vec![0.5, 0.25]);
        assert_eq!(s.data.targets, Targets::Classes(vec![1, 0]));
        let s = parse_str("x,z\n0.5,2\n0.25,1\n", &default())?;
        assert_eq!(s.data.features, vec![0.5, 0.25]);
        let options = LoadOptions { label: Some("x".into()), task: Some(TaskKind::Regression), ..default() };
        let s = parse_str("x,z\n0.5,2\n0.25,1\n", &options)?;
        assert_eq!(s.data.features, vec![2.0, 1.0]);
        assert_eq!(s.data.targets, Targets::Values(vec![0.5, 0.25]));
        Ok(())
    }

    #[test]
    fn integer_classes_sort_numerically() -> Result<(), DataError> {
        let s = parse_str("x,y\n1,10\n2,9\n3,2\n", &default())?;
        assert_eq!(s.task, Task::Classification { classes: vec!["2".into(), "9".into(), "10".into()] });
        assert_eq!(s.data.targets, Targets::Classes(vec![2, 1, 0]));
        Ok(())
    }

    #[test]
    fn float_labels_mean_regression() -> Result<(), DataError> {
        let s = parse_str("x,y\n1,0.5\n2,1.5\n", &default())?;
        assert_eq!(s.task, Task::Regression);
        let options = LoadOptions { task: Some(TaskKind::Classification), ..default() };
        let s = parse_str("x,y\n1,0.5\n2,1.5\n", &options)?;
        assert_eq!(s.task.num_outputs(), 2);
        Ok(())
    }

    #[test]
    fn many_distinct_integers_mean_regression() -> Result<(), DataError> {
        let mut text = String::from("x,y\n");
        for i in 0..=MAX_INFERRED_CLASSES {
            text.push_str(&format!("{i},{}\n", i * 3));
        }
        assert_eq!(parse_str(&text, &default())?.task, Task::Regression);
        Ok(())
    }

    #[test]
    fn wrong_column_count_names_the_line() {
        let err = parse_str("a,b,y\n1,2,0\n1,2\n", &default());
        match err {
            Err(DataError::CsvColumnCount { line, expected, found, .. }) => {
                assert_eq!((line, expected, found), (3, 3, 2));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn non_numeric_feature_names_line_and_column() {
        let err = parse_str("a,b,y\n1,2,0\n1,two,1\n", &default());
        let message = err.as_ref().err().map(ToString::to_string).unwrap_or_default();
        assert!(
            matches!(err, Err(DataError::CsvNotNumeric(CsvCell { line: 3, column: 2, ref value, .. })) if value == "two"),
            "{message}"
        );
        assert!(message.contains("line 3, column 2 (`b`)"), "{message}");
    }

    #[test]
    fn empty_cell_is_an_error() {
        let err = parse_str("a,b,y\n1,,0\n", &default());
        assert!(matches!(err, Err(DataError::CsvNotNumeric(CsvCell { line: 2, column: 2, .. }))));
    }

    #[test]
    fn nan_and_inf_features_are_errors() {
        let err = parse_str("a,b,y\n1,NaN,0\n", &default());
        assert!(matches!(err, Err(DataError::NonFinite { position: Position::Line(2), column: 2, .. })));
        let err = parse_str("a,b,y\n1,2,0\n-inf,2,1\n", &default());
        assert!(matches!(err, Err(DataError::NonFinite { position: Position::Line(3), column: 1, .. })));
        let options = LoadOptions { task: Some(TaskKind::Regression), ..default() };
        let err = parse_str("a,y\n1,inf\n", &options);
        assert!(matches!(err, Err(DataError::NonFinite { column: 2, .. })));
    }

    #[test]
    fn missing_label_column_lists_columns() {
        let options = LoadOptions { label: Some("price".into()), ..default() };
        let err = parse_str("a,b,y\n1,2,0\n", &options).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("no column named `price`") && err.contains("a, b, y"), "{err}");
    }

    #[test]
    fn label_outside_declared_classes() {
        let options = LoadOptions { classes: Some(vec!["cat".into(), "dog".into()]), ..default() };
        let err = parse_str("a,y\n1,cat\n2,cow\n", &options);
        assert!(matches!(
            err,
            Err(DataError::LabelOutOfRange { position: Some(Position::Line(3)), ref label, .. }) if label == "cow"
        ));
        let s = parse_str("a,y\n1,dog\n", &options).map(|s| s.data.targets);
        assert_eq!(s.ok(), Some(Targets::Classes(vec![1])));
    }

    #[test]
    fn text_regression_label_is_an_error() {
        let options = LoadOptions { task: Some(TaskKind::Regression), ..default() };
        let err = parse_str("a,y\n1,high\n", &options);
        assert!(matches!(err, Err(DataError::CsvLabelNotNumeric(CsvCell { line: 2, column: 2, .. }))));
    }

    #[test]
    fn empty_files_and_label_only_files() {
        assert!(matches!(parse_str("", &default()), Err(DataError::CsvNoRows { .. })));
        assert!(matches!(parse_str("a,y\n", &default()), Err(DataError::CsvNoRows { .. })));
        assert!(matches!(parse_str("y\n1\n", &default()), Err(DataError::CsvNoFeatures { .. })));
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let err = parse(b"a,y\n1,\xff\xfe\n", Path::new("d.csv"), &default());
        assert!(matches!(err, Err(DataError::Csv { .. })), "{err:?}");
    }

    /// A table whose rows end in `ending`: the header `a,b,y`, good rows up to line `bad - 1`, and
    /// `bad_row` on line `bad`.
    fn table_with_bad_line(ending: &str, bad: usize, bad_row: &str) -> String {
        let mut text = format!("a,b,y{ending}");
        for line in 2..bad {
            text.push_str(&format!("{line},1,0{ending}"));
        }
        text.push_str(&format!("{bad_row}{ending}"));
        text.push_str(&format!("1,1,1{ending}"));
        text
    }

    #[test]
    fn crlf_errors_name_the_files_own_lines() {
        // Python's csv module ends rows with CRLF; the reader's own count is a line early there.
        let err = parse_str(&table_with_bad_line("\r\n", 7, "7,seven,0"), &default());
        assert!(matches!(err, Err(DataError::CsvNotNumeric(CsvCell { line: 7, column: 2, .. }))), "{err:?}");
        let err = parse_str(&table_with_bad_line("\r\n", 12, "12,NaN,0"), &default());
        assert!(matches!(err, Err(DataError::NonFinite { position: Position::Line(12), column: 2, .. })), "{err:?}");
        let err = parse_str(&table_with_bad_line("\r\n", 5, "5,1"), &default());
        assert!(matches!(err, Err(DataError::CsvColumnCount { line: 5, .. })), "{err:?}");
        let options = LoadOptions { task: Some(TaskKind::Regression), ..default() };
        let err = parse_str(&table_with_bad_line("\r\n", 4, "4,1,high"), &options);
        assert!(matches!(err, Err(DataError::CsvLabelNotNumeric(CsvCell { line: 4, column: 3, .. }))), "{err:?}");
        let options = LoadOptions { classes: Some(vec!["0".into(), "1".into()]), ..default() };
        let err = parse_str(&table_with_bad_line("\r\n", 6, "6,1,2"), &options);
        assert!(matches!(err, Err(DataError::LabelOutOfRange { position: Some(Position::Line(6)), .. })), "{err:?}");
        let err = parse(b"a,y\r\n1,0\r\n2,\xff\r\n", Path::new("d.csv"), &default());
        assert!(matches!(err, Err(DataError::Csv { line: Some(3), .. })), "{err:?}");
    }

    #[test]
    fn blank_lines_and_multi_line_fields_are_counted() {
        // Line 2 holds a label spanning lines 2-3, line 4 is blank, the bad value is on line 5.
        let err = parse_str("a,y\n1,\"two\nlines\"\n\nx,cat\n", &default());
        assert!(matches!(err, Err(DataError::CsvNotNumeric(CsvCell { line: 5, .. }))), "{err:?}");
        let err = parse_str("a,y\r\n1,\"two\r\nlines\"\r\n\r\nx,cat\r\n", &default());
        assert!(matches!(err, Err(DataError::CsvNotNumeric(CsvCell { line: 5, .. }))), "{err:?}");
        // Old Mac files end lines with a lone CR, which the reader also takes as a line ending.
        let err = parse_str("a,y\r1,0\rx,1\r", &default());
        assert!(matches!(err, Err(DataError::CsvNotNumeric(CsvCell { line: 3, .. }))), "{err:?}");
    }

    #[test]
    fn line_index_counts_every_ending_in_any_order() {
        let bytes = b"h\r\na\nb\rc\r\n\r\nd";
        let at = |byte: u64| {
            let mut position = ::csv::Position::new();
            position.set_byte(byte);
            position
        };
        let mut index = LineIndex::new(bytes);
        // The lines are h, a, b, c, a blank one and d. A record's position is the start of the line
        // ending before it (offset 1 is the CRLF after `h`); offset 8 is followed by the blank line.
        assert_eq!([1, 4, 6, 8].map(|byte| index.record_line(&at(byte))), [2, 3, 4, 6]);
        assert_eq!(index.record_line(&at(0)), 1, "an earlier position is counted again");
        assert_eq!(index.record_line(&at(99)), 6, "a position past the end is the end");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any table of finite numbers with small integer labels reads back exactly.
        #[test]
        fn valid_tables_round_trip(
            columns in 1usize..5,
            rows in proptest::collection::vec(
                (proptest::collection::vec(-1.0e6f32..1.0e6, 4), 0u32..4),
                1..30,
            ),
        ) {
            let mut text = String::new();
            for c in 0..columns {
                text.push_str(&format!("f{c},"));
            }
            text.push_str("label\n");
            for (values, label) in &rows {
                for v in &values[..columns] {
                    text.push_str(&format!("{v},"));
                }
                text.push_str(&format!("{label}\n"));
            }
            let source = parse_str(&text, &default());
            prop_assert!(source.is_ok(), "{:?}", source);
            let source = source.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let expected: Vec<f32> = rows.iter().flat_map(|(v, _)| v[..columns].to_vec()).collect();
            prop_assert_eq!(&source.data.features, &expected);
            prop_assert_eq!(source.data.shape.clone(), vec![columns]);
            let Task::Classification { classes } = &source.task else {
                return Err(TestCaseError::fail("expected classification"));
            };
            let Targets::Classes(indices) = &source.data.targets else {
                return Err(TestCaseError::fail("expected classes"));
            };
            for ((_, label), &index) in rows.iter().zip(indices) {
                prop_assert_eq!(&classes[index as usize], &label.to_string());
            }
        }

        /// Whatever the line endings, blank lines and multi-line quoted labels before it, an error
        /// names the physical line on which the bad row starts (the bad cell is on that line too).
        #[test]
        fn errors_name_the_physical_line_of_the_bad_row(
            crlf in any::<bool>(),
            rows in proptest::collection::vec((0usize..3, any::<bool>(), 0usize..3), 1..25),
            bad in any::<proptest::sample::Index>(),
            kind in 0usize..3,
        ) {
            let ending = if crlf { "\r\n" } else { "\n" };
            let bad = bad.index(rows.len());
            let mut text = format!("x,z,label{ending}");
            let mut line = 2u64;
            let mut expected = 0u64;
            for (i, &(breaks, inner_crlf, blank)) in rows.iter().enumerate() {
                // Blank lines are skipped by the reader but are lines of the file.
                text.push_str(&ending.repeat(blank));
                line += blank as u64;
                let label = if breaks == 0 {
                    "cat".to_string()
                } else {
                    let inner = if inner_crlf { "\r\n" } else { "\n" };
                    format!("\"a{}b\"", inner.repeat(breaks))
                };
                let cells = match (i == bad, kind) {
                    (false, _) => format!("1,2,{label}"),
                    (true, 0) => format!("one,2,{label}"),
                    (true, 1) => format!("NaN,2,{label}"),
                    (true, _) => format!("1,{label}"),
                };
                if i == bad {
                    expected = line;
                }
                text.push_str(&cells);
                text.push_str(ending);
                line += 1 + breaks as u64;
            }
            let reported = match parse_str(&text, &default()) {
                Err(DataError::CsvNotNumeric(CsvCell { line, .. }) | DataError::CsvColumnCount { line, .. }) => line,
                Err(DataError::NonFinite { position: Position::Line(line), .. }) => line,
                other => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
            };
            prop_assert_eq!(reported, expected, "{:?}", text);
        }

        /// Arbitrary bytes give a source or an error, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&bytes, Path::new("fuzz.csv"), &default());
        }

        /// Arbitrary text made of CSV-ish characters never panics either.
        #[test]
        fn arbitrary_csv_text_never_panics(text in "[0-9a-z,.\\-\"\n ]{0,200}") {
            let _ = parse_str(&text, &default());
            let _ = parse_str(&text, &LoadOptions { task: Some(TaskKind::Regression), ..default() });
        }
    }
}
