//! CSV tables: a header row, numeric feature columns and one label column.
//!
//! The label column is chosen by name, defaulting to the usual names (`label`, `target`, `y`,
//! `class`) and then to the last column, because that is how most exported tables are laid out.
//! Whether the labels are classes or values is inferred only when it is obvious (text labels, or a
//! few distinct integers, mean classes; other numbers mean regression), and can always be forced.
//! The whole file is checked as it is read, so the first bad cell is reported with its line and
//! column rather than surfacing later as a NaN loss.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::{LoadOptions, TaskKind, dataset_name, read_file};
use crate::error::{DataError, Position};
use crate::types::{Samples, Source, Targets, Task};

/// Column names taken as the label, in order of preference, when none is given.
const LABEL_NAMES: [&str; 4] = ["label", "target", "y", "class"];

/// At most this many distinct integer labels are inferred to be classes rather than values.
pub(crate) const MAX_INFERRED_CLASSES: usize = 20;

/// Loads a CSV file.
pub(crate) fn load(path: &Path, options: &LoadOptions) -> Result<Source, DataError> {
    parse(&read_file(path)?, path, options)
}

/// Parses CSV bytes; `path` is only used in errors and for the dataset name.
pub(crate) fn parse(bytes: &[u8], path: &Path, options: &LoadOptions) -> Result<Source, DataError> {
    let mut reader =
        ::csv::ReaderBuilder::new().has_headers(true).flexible(true).trim(::csv::Trim::All).from_reader(bytes);
    let headers: Vec<String> = reader.headers().map_err(|e| csv_error(path, &e))?.iter().map(str::to_owned).collect();
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
            Err(e) => return Err(csv_error(path, &e)),
        }
        let line = record.position().map_or(0, ::csv::Position::line);
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
            let value: f32 = cell.parse().map_err(|_| DataError::CsvNotNumeric {
                path: path.to_owned(),
                line,
                column: column + 1,
                name: headers[column].clone(),
                value: cell.to_owned(),
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
                let value: f32 = label.parse().map_err(|_| DataError::CsvLabelNotNumeric {
                    path: self.path.to_owned(),
                    line,
                    column: self.column,
                    name: self.name.to_owned(),
                    value: label.clone(),
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

/// Converts an error of the CSV reader.
fn csv_error(path: &Path, error: &::csv::Error) -> DataError {
    let line = error.position().map(::csv::Position::line);
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
            matches!(err, Err(DataError::CsvNotNumeric { line: 3, column: 2, ref value, .. }) if value == "two"),
            "{message}"
        );
        assert!(message.contains("line 3, column 2 (`b`)"), "{message}");
    }

    #[test]
    fn empty_cell_is_an_error() {
        let err = parse_str("a,b,y\n1,,0\n", &default());
        assert!(matches!(err, Err(DataError::CsvNotNumeric { line: 2, column: 2, .. })));
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
        assert!(matches!(err, Err(DataError::CsvLabelNotNumeric { line: 2, column: 2, .. })));
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
