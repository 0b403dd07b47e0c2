//! Evaluating a [`Query`] over loaded runs.
//!
//! Logic is three-valued, as in SQL: a comparison on a value a run does not have (a param it was
//! not given, a metric it never logged, a NaN) is *unknown*, `not unknown` is unknown, and only
//! runs for which the whole filter is *true* are kept. So `not params.dropout > 0` does not list
//! runs that have no dropout at all. Keys that no run has at all are errors rather than silently
//! matching nothing, and so is comparing a string param with a number.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use super::parse::{CmpOp, Expr, Field, Literal, MetricAgg, SortKey, Span};
use super::{Query, QueryError, QueryErrorKind, QueryPart};
use crate::model::{ParamValue, RunRow};

/// A field's value in one run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value<'a> {
    Number(f64),
    Text(&'a str),
}

fn value_of<'a>(row: &'a RunRow, field: &Field) -> Option<Value<'a>> {
    let value = match field {
        Field::Param(key) => match row.params.get(key)? {
            ParamValue::Number(n) => Value::Number(*n),
            ParamValue::Text(s) => Value::Text(s),
        },
        Field::Metric { key, agg } => {
            let summary = row.metrics.get(key)?;
            Value::Number(match agg {
                MetricAgg::Best => summary.best?,
                MetricAgg::Last => summary.last,
                MetricAgg::Min => summary.min?,
                MetricAgg::Max => summary.max?,
            })
        }
        Field::Tag(key) => Value::Text(row.tags.get(key)?),
        Field::Status => Value::Text(row.status.as_str()),
        Field::Name => Value::Text(&row.name),
        Field::Experiment => Value::Text(&row.experiment),
        Field::RunId => Value::Text(&row.run_id),
    };
    match value {
        Value::Number(n) if n.is_nan() => None,
        other => Some(other),
    }
}

/// The rows, to check a query's keys against: a key is known when some run has it. Every key of
/// its kind is gathered only to word the error for one that no run has.
struct Known<'a> {
    rows: &'a [RunRow],
}

impl<'a> Known<'a> {
    fn new(rows: &'a [RunRow]) -> Known<'a> {
        Known { rows }
    }

    /// Every key of the kind of `field` that the rows have, sorted.
    fn keys_like(&self, field: &Field) -> BTreeSet<&'a str> {
        let mut keys = BTreeSet::new();
        for row in self.rows {
            match field {
                Field::Param(_) => keys.extend(row.params.keys().map(String::as_str)),
                Field::Metric { .. } => keys.extend(row.metrics.keys().map(String::as_str)),
                Field::Tag(_) => keys.extend(row.tags.keys().map(String::as_str)),
                _ => {}
            }
        }
        keys
    }

    /// An error when no run has the field's key; nothing to check when the store is empty.
    fn check(&self, field: &Field, source: &str, part: QueryPart, span: Span, empty: bool) -> Result<(), QueryError> {
        let (kind, key, has): (_, _, fn(&RunRow, &str) -> bool) = match field {
            Field::Param(key) => ("param", key, |row, key| row.params.contains_key(key)),
            Field::Metric { key, .. } => ("metric", key, |row, key| row.metrics.contains_key(key)),
            Field::Tag(key) => ("tag", key, |row, key| row.tags.contains_key(key)),
            _ => return Ok(()),
        };
        if empty || self.rows.iter().any(|row| has(row, key)) {
            return Ok(());
        }
        let keys = self.keys_like(field);
        let listed: Vec<&str> = keys.iter().copied().take(30).collect();
        let help = if listed.is_empty() {
            format!("no run has any {kind}")
        } else {
            format!("known {kind}s: {}{}", listed.join(", "), if keys.len() > listed.len() { ", ..." } else { "" })
        };
        Err(QueryError {
            part,
            kind: QueryErrorKind::UnknownKey,
            input: source.to_string(),
            span,
            message: format!("no run has the {kind} `{key}`"),
            help: Some(help),
        })
    }
}

/// Checks every key of the query against the rows, then evaluates, sorts and limits.
pub(super) fn apply(query: &Query, rows: Vec<RunRow>) -> Result<Vec<RunRow>, QueryError> {
    let order = order(query, &rows)?;
    let mut slots: Vec<Option<RunRow>> = rows.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots.get_mut(i).and_then(Option::take)).collect())
}

pub(super) fn select<'a>(query: &Query, rows: &'a [RunRow]) -> Result<Vec<&'a RunRow>, QueryError> {
    Ok(order(query, rows)?.into_iter().filter_map(|i| rows.get(i)).collect())
}

/// The positions of the rows the query keeps, in its order.
fn order(query: &Query, rows: &[RunRow]) -> Result<Vec<usize>, QueryError> {
    {
        let known = Known::new(rows);
        let empty = rows.is_empty();
        if let Some(filter) = &query.filter {
            check_keys(filter.expr(), &known, filter.source(), empty)?;
            check_types(filter.expr(), rows, filter.source())?;
        }
        if let Some(sort) = &query.sort {
            for key in sort.keys() {
                known.check(&key.field, sort.source(), QueryPart::Sort, key.span, empty)?;
            }
        }
    }
    let kept: Vec<usize> = match &query.filter {
        Some(filter) => (0..rows.len()).filter(|&i| eval(filter.expr(), &rows[i]) == Some(true)).collect(),
        None => (0..rows.len()).collect(),
    };
    // Each row's sort values are looked up once, not at every comparison.
    let keys = query.sort.as_ref().map_or(&[][..], |s| s.keys());
    let mut decorated: Vec<(Vec<Option<Value<'_>>>, usize)> =
        kept.into_iter().map(|i| (keys.iter().map(|key| value_of(&rows[i], &key.field)).collect(), i)).collect();
    decorated.sort_by(|(x, a), (y, b)| {
        let (a, b) = (&rows[*a], &rows[*b]);
        keys.iter()
            .zip(x.iter().zip(y))
            .map(|(key, (x, y))| compare_values(key, *x, *y))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then_with(|| b.started_at.cmp(&a.started_at))
            .then_with(|| a.run_id.cmp(&b.run_id))
    });
    let mut kept: Vec<usize> = decorated.into_iter().map(|(_, i)| i).collect();
    if let Some(limit) = query.limit {
        kept.truncate(limit);
    }
    Ok(kept)
}

fn check_keys(expr: &Expr, known: &Known<'_>, source: &str, empty: bool) -> Result<(), QueryError> {
    match expr {
        Expr::And(l, r) | Expr::Or(l, r) => {
            check_keys(l, known, source, empty)?;
            check_keys(r, known, source, empty)
        }
        Expr::Not(e) => check_keys(e, known, source, empty),
        Expr::Compare { field, field_span, .. } => known.check(field, source, QueryPart::Filter, *field_span, empty),
    }
}

/// Params are the one field whose type is only known from the data: refuse a string param compared
/// with a number and the reverse, naming a run where it happens.
fn check_types(expr: &Expr, rows: &[RunRow], source: &str) -> Result<(), QueryError> {
    match expr {
        Expr::And(l, r) | Expr::Or(l, r) => {
            check_types(l, rows, source)?;
            check_types(r, rows, source)
        }
        Expr::Not(e) => check_types(e, rows, source),
        Expr::Compare { field: field @ Field::Param(key), value, value_span, .. } => {
            for row in rows {
                let mismatch = match (row.params.get(key), value) {
                    (Some(ParamValue::Text(text)), Literal::Number(n)) => Some((
                        format!("`{field}` is the string '{text}' in run {}, but {n} is a number", row.run_id),
                        format!("quote it: '{n}'"),
                    )),
                    (Some(ParamValue::Number(n)), Literal::Text(text)) => Some((
                        format!("`{field}` is the number {n} in run {}, but '{text}' is a string", row.run_id),
                        "drop the quotes to compare numbers".to_string(),
                    )),
                    _ => None,
                };
                if let Some((message, help)) = mismatch {
                    return Err(QueryError {
                        part: QueryPart::Filter,
                        kind: QueryErrorKind::TypeMismatch,
                        input: source.to_string(),
                        span: *value_span,
                        message,
                        help: Some(help),
                    });
                }
            }
            Ok(())
        }
        Expr::Compare { .. } => Ok(()),
    }
}

/// Kleene logic: `None` is unknown.
fn eval(expr: &Expr, row: &RunRow) -> Option<bool> {
    match expr {
        Expr::And(l, r) => match (eval(l, row), eval(r, row)) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        Expr::Or(l, r) => match (eval(l, row), eval(r, row)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        Expr::Not(e) => eval(e, row).map(|b| !b),
        Expr::Compare { field, op, value, .. } => {
            let ordering = match (value_of(row, field)?, value) {
                (Value::Number(a), Literal::Number(b)) => a.partial_cmp(b)?,
                (Value::Text(a), Literal::Text(b)) => a.cmp(b.as_str()),
                // Mismatched types were refused by `check_types`; treat any left as unknown.
                _ => return None,
            };
            Some(match op {
                CmpOp::Eq => ordering.is_eq(),
                CmpOp::Ne => ordering.is_ne(),
                CmpOp::Lt => ordering.is_lt(),
                CmpOp::Le => ordering.is_le(),
                CmpOp::Gt => ordering.is_gt(),
                CmpOp::Ge => ordering.is_ge(),
            })
        }
    }
}

/// Orders two runs by one key; runs without a value go last whichever the direction, and numbers
/// come before strings when a param has both.
/// The order of two runs' values of a sort key: missing values last, numbers before text.
fn compare_values(key: &SortKey, a: Option<Value<'_>>, b: Option<Value<'_>>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            let natural = match (x, y) {
                (Value::Number(x), Value::Number(y)) => x.total_cmp(&y),
                (Value::Text(x), Value::Text(y)) => x.cmp(y),
                (Value::Number(_), Value::Text(_)) => Ordering::Less,
                (Value::Text(_), Value::Number(_)) => Ordering::Greater,
            };
            if key.descending { natural.reverse() } else { natural }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MetricSummary, RunState};
    use crate::time::Timestamp;
    use std::collections::BTreeMap;

    fn row(id: &str, started: i64, lr: f64, opt: &str, acc: Option<f64>, arch: Option<&str>) -> RunRow {
        let mut params = BTreeMap::new();
        params.insert("lr".to_string(), ParamValue::Number(lr));
        params.insert("optimizer".to_string(), ParamValue::Text(opt.to_string()));
        let mut metrics = BTreeMap::new();
        if let Some(acc) = acc {
            metrics.insert(
                "val.acc".to_string(),
                MetricSummary::from_extremes(
                    Some(regimen_metrics::Mode::Max),
                    Some((acc - 0.1, None, None)),
                    Some((acc, None, None)),
                    acc - 0.05,
                    10,
                    3,
                ),
            );
        }
        metrics.insert(
            "train.loss".to_string(),
            MetricSummary::from_extremes(
                Some(regimen_metrics::Mode::Min),
                Some((lr, None, None)),
                Some((1.0, None, None)),
                0.5,
                10,
                3,
            ),
        );
        let tags = arch.map(|a| [("arch".to_string(), a.to_string())].into_iter().collect()).unwrap_or_default();
        RunRow {
            run_id: id.to_string(),
            dataset: None,
            name: format!("run-{id}"),
            experiment: "default".to_string(),
            status: if id == "c" { RunState::Crashed } else { RunState::Finished },
            reason: None,
            monitor: None,
            started_at: Timestamp(started),
            ended_at: None,
            params,
            metrics,
            tags,
        }
    }

    fn rows() -> Vec<RunRow> {
        vec![
            row("a", 1, 0.001, "adam", Some(0.95), Some("cnn")),
            row("b", 2, 0.1, "sgd", Some(0.80), Some("mlp")),
            row("c", 3, 0.005, "adam", None, Some("cnn")),
            row("d", 4, 0.0005, "sgd", Some(0.91), None),
        ]
    }

    fn ids(filter: Option<&str>, sort: Option<&str>, limit: Option<usize>) -> Result<Vec<String>, String> {
        let query = Query::parse(filter, sort, limit).map_err(|e| e.to_string())?;
        let rows = query.apply(rows()).map_err(|e| e.to_string())?;
        Ok(rows.into_iter().map(|r| r.run_id).collect())
    }

    fn check(filter: &str, expect: &[&str]) {
        assert_eq!(ids(Some(filter), None, None), Ok(expect.iter().map(ToString::to_string).collect()), "{filter}");
    }

    #[test]
    fn filters_select_runs() {
        check("params.lr < 0.01 and metrics.val.acc > 0.9 and tags.arch = 'cnn'", &["a"]);
        check("params.optimizer = 'sgd'", &["d", "b"]);
        check("params.lr <= 1e-3", &["d", "a"]);
        check("status = 'crashed' or name = 'run-b'", &["c", "b"]);
        check("not tags.arch = 'cnn'", &["b"]);
        check("not (tags.arch = 'cnn' or tags.arch = 'mlp')", &[]);
        check("metrics.val.acc.last > 0.88", &["a"]);
        check("metrics.train.loss <= 0.001", &["d", "a"]);
        check("run_id != 'a' and experiment = 'default'", &["d", "c", "b"]);
        check("tags.arch = 'cnn' or metrics.val.acc > 0.9", &["d", "c", "a"]);
    }

    #[test]
    fn sorting_puts_missing_values_last_in_both_directions() {
        assert_eq!(ids(None, None, None), Ok(vec!["d".into(), "c".into(), "b".into(), "a".into()]));
        assert_eq!(ids(None, Some("-metrics.val.acc"), None), Ok(vec!["a".into(), "d".into(), "b".into(), "c".into()]));
        assert_eq!(ids(None, Some("metrics.val.acc"), None), Ok(vec!["b".into(), "d".into(), "a".into(), "c".into()]));
        assert_eq!(
            ids(None, Some("params.optimizer,-params.lr"), Some(3)),
            Ok(vec!["c".into(), "a".into(), "b".into()])
        );
        assert_eq!(
            ids(None, Some("-tags.arch, run_id"), None),
            Ok(vec!["b".into(), "a".into(), "c".into(), "d".into()])
        );
    }

    #[test]
    fn unknown_keys_list_the_known_ones() {
        let query = Query::parse(Some("params.lr < 1 and params.lrr < 1"), None, None).map_err(|e| e.to_string());
        let e = query.and_then(|q| q.apply(rows()).map_err(|e| e.to_string()).map(|_| ()));
        let e = e.err().unwrap_or_default();
        assert!(e.contains("at column 19: no run has the param `lrr`"), "{e}");
        assert!(e.contains("known params: lr, optimizer"), "{e}");
        let e = ids(None, Some("-metrics.val.f1.last"), None).err().unwrap_or_default();
        assert!(e.contains("invalid sort at column 2: no run has the metric `val.f1`"), "{e}");
        let e = ids(Some("tags.colour = 'red'"), None, None).err().unwrap_or_default();
        assert!(e.contains("known tags: arch"), "{e}");
    }

    #[test]
    fn unknown_keys_are_fine_in_an_empty_store() {
        let query = Query::parse(Some("params.anything < 1"), Some("tags.x"), None);
        assert_eq!(query.map(|q| q.apply(Vec::new()).map(|rows| rows.len())), Ok(Ok(0)));
    }

    #[test]
    fn param_type_mismatches_name_a_run() {
        let e = ids(Some("params.optimizer = 1"), None, None).err().unwrap_or_default();
        assert!(e.contains("at column 20: `params.optimizer` is the string 'adam' in run a, but 1 is a number"), "{e}");
        let e = ids(Some("params.lr = 'fast'"), None, None).err().unwrap_or_default();
        assert!(e.contains("`params.lr` is the number 0.001 in run a, but 'fast' is a string"), "{e}");
    }

    #[test]
    fn nan_metrics_are_unknown() {
        let mut rows = rows();
        if let Some(summary) = rows[0].metrics.get_mut("val.acc") {
            summary.last = f64::NAN;
        }
        let query = Query::parse(Some("not metrics.val.acc.last < 0"), None, None).map_err(|e| e.to_string());
        let kept = query.and_then(|q| q.apply(rows).map_err(|e| e.to_string()));
        let kept: Vec<String> = kept.into_iter().flatten().map(|r| r.run_id).collect();
        assert_eq!(kept, ["d", "b"]);
    }
}
