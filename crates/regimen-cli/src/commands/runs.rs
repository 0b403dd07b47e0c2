//! `regimen runs`: the runs of a store as a table or as JSON, filtered and sorted by the store's
//! query language.
//!
//! The filter and sort are parsed and evaluated by `regimen_store::Query`, the same code for every
//! backend; this module only chooses columns and prints. A column is a run attribute (`run_id`,
//! `name`, `status`...) or a dotted key in the filter's own vocabulary (`params.lr`,
//! `metrics.val.acc`, `metrics.val.loss.last`, `tags.arch`), so what a user filters on is what they
//! can show.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use clap::Args;
use regimen_store::{Mode, Query, RunRow};
use serde_json::Value;

use super::{StoreArg, as_query_error, emit, metric_text, open_if_exists, short_duration, short_time, usage_error};

/// The columns shown when `--columns` is not given.
const DEFAULT_COLUMNS: &str = "run_id,name,status,started,metrics.val.acc,metrics.val.loss";

/// Flags of `regimen runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(flatten)]
    pub store: StoreArg,
    /// Keep runs matching this expression, e.g. "params.lr < 0.01 and metrics.val.acc > 0.9".
    ///
    /// Fields: status, name, experiment, run_id, params.KEY, tags.KEY, metrics.KEY (its best value),
    /// metrics.KEY.best, metrics.KEY.last; operators = != < <= > >=, and, or, not, parentheses;
    /// text in single quotes.
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Sort keys, comma-separated, `-` for descending, e.g. "-metrics.val.acc,params.lr"
    /// [default: newest first].
    #[arg(long, value_name = "KEYS", allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// Columns, comma-separated: run_id, name, experiment, status, reason, started, ended,
    /// duration, params.KEY, metrics.KEY[.best|.last], tags.KEY.
    #[arg(long, value_name = "A,B,..", default_value = DEFAULT_COLUMNS)]
    pub columns: String,
    /// Show at most N runs (after sorting).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print a JSON array of runs (all params, metrics and tags) instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Lists runs.
pub fn run(args: &RunsArgs) -> anyhow::Result<ExitCode> {
    let query = match Query::parse(args.filter.as_deref(), args.sort.as_deref(), args.limit) {
        Ok(query) => query,
        Err(error) => return Ok(usage_error(&error)),
    };
    let columns = args
        .columns
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(Column::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let rows = match open_if_exists(&args.store.store)? {
        None => Vec::new(),
        Some(store) => match store.list_runs(&query) {
            Ok(rows) => rows,
            Err(error) => match as_query_error(&error) {
                Some(query_error) => return Ok(usage_error(query_error)),
                None => return Err(error.into()),
            },
        },
    };
    if args.json {
        let list: Vec<Value> = rows.iter().map(regimen_export::run_json).collect();
        emit(&format!("{}\n", serde_json::to_string_pretty(&list)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        say!(
            "no runs{} in {}",
            if query.filter.is_some() { " match the filter" } else { "" },
            args.store.store.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if args.columns != DEFAULT_COLUMNS {
        for column in &columns {
            if let Some(note) = column.missing_from(&rows) {
                say!("note: {note}");
            }
        }
    }
    // The datasets' base errors, and with them the recipe's bias and variance columns by default.
    let mut bases = BTreeMap::new();
    if let Some(store) = open_if_exists(&args.store.store)? {
        for name in rows.iter().filter_map(|r| r.dataset.as_ref()) {
            if !bases.contains_key(name)
                && let Some(error) = store.base_error(name)?
            {
                bases.insert(name.clone(), error);
            }
        }
    }
    let mut columns = columns;
    if args.columns == DEFAULT_COLUMNS && !bases.is_empty() {
        columns.extend([Column::Bias, Column::Variance]);
    }
    emit(&table(&columns, &rows, &bases))?;
    Ok(ExitCode::SUCCESS)
}

/// Which value of a metric series a column shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agg {
    Best,
    Last,
}

/// One column of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    RunId,
    Name,
    Experiment,
    Status,
    Reason,
    Started,
    Ended,
    Duration,
    Param(String),
    Metric(String, Agg),
    Tag(String),
    /// Avoidable bias: final training error less the dataset's base error.
    Bias,
    /// Variance: final validation error less final training error.
    Variance,
}

impl Column {
    /// Parses one `--columns` entry; a metric without `.best`/`.last` shows its best value when its
    /// key has a direction (`acc`, `loss`...) and its last value otherwise (`lr`, `sys.*`).
    fn parse(text: &str) -> anyhow::Result<Column> {
        let keyed = |prefix: &str| text.strip_prefix(prefix).filter(|k| !k.is_empty()).map(str::to_string);
        let column = match text {
            "run_id" | "id" => Column::RunId,
            "name" => Column::Name,
            "experiment" => Column::Experiment,
            "status" => Column::Status,
            "reason" => Column::Reason,
            "started" | "started_at" => Column::Started,
            "ended" | "ended_at" => Column::Ended,
            "duration" => Column::Duration,
            "bias" => Column::Bias,
            "variance" => Column::Variance,
            _ => {
                if let Some(key) = keyed("params.") {
                    Column::Param(key)
                } else if let Some(key) = keyed("tags.") {
                    Column::Tag(key)
                } else if let Some(key) = keyed("metrics.") {
                    if let Some(base) = key.strip_suffix(".best") {
                        Column::Metric(base.to_string(), Agg::Best)
                    } else if let Some(base) = key.strip_suffix(".last") {
                        Column::Metric(base.to_string(), Agg::Last)
                    } else {
                        let agg = if Mode::of_key(&key).is_some() { Agg::Best } else { Agg::Last };
                        Column::Metric(key, agg)
                    }
                } else {
                    anyhow::bail!(
                        "unknown column `{text}` in --columns; use run_id, name, experiment, status, reason, started, \
                         ended, duration, bias, variance, params.KEY, metrics.KEY[.best|.last] or tags.KEY"
                    );
                }
            }
        };
        Ok(column)
    }

    fn header(&self) -> String {
        match self {
            Column::RunId => "run_id".into(),
            Column::Name => "name".into(),
            Column::Experiment => "experiment".into(),
            Column::Status => "status".into(),
            Column::Reason => "reason".into(),
            Column::Started => "started (UTC)".into(),
            Column::Ended => "ended (UTC)".into(),
            Column::Duration => "duration".into(),
            Column::Param(key) => key.clone(),
            Column::Metric(key, Agg::Best) => format!("{key} best"),
            Column::Metric(key, Agg::Last) => format!("{key} last"),
            Column::Tag(key) => format!("tags.{key}"),
            Column::Bias => "avoidable bias".into(),
            Column::Variance => "variance".into(),
        }
    }

    fn numeric(&self) -> bool {
        matches!(self, Column::Metric(..) | Column::Duration | Column::Bias | Column::Variance)
    }

    /// The cell of `row`; `bases` holds the base error of each dataset that has one.
    fn cell(&self, row: &RunRow, bases: &BTreeMap<String, f64>) -> String {
        let missing = || "-".to_string();
        match self {
            Column::RunId => row.run_id.clone(),
            Column::Name => row.name.clone(),
            Column::Experiment => row.experiment.clone(),
            Column::Status => row.status.to_string(),
            Column::Reason => row.reason.clone().unwrap_or_else(missing),
            Column::Started => short_time(row.started_at),
            Column::Ended => row.ended_at.map_or_else(missing, short_time),
            Column::Duration => row.ended_at.map_or_else(missing, |end| short_duration(end.since(row.started_at))),
            Column::Param(key) => row.params.get(key).map_or_else(missing, ToString::to_string),
            Column::Metric(key, agg) => {
                let value = row.metrics.get(key).and_then(|m| match agg {
                    Agg::Best => m.best,
                    Agg::Last => Some(m.last),
                });
                value.map_or_else(missing, metric_text)
            }
            Column::Tag(key) => row.tags.get(key).cloned().unwrap_or_else(missing),
            Column::Bias | Column::Variance => {
                let error = |key: &str| row.metrics.get(key).map(|m| 1.0 - m.last).filter(|e| e.is_finite());
                let value = match self {
                    Column::Bias => error("train.acc")
                        .zip(row.dataset.as_ref().and_then(|d| bases.get(d)))
                        .map(|(train, base)| train - base),
                    _ => error("val.acc").zip(error("train.acc")).map(|(val, train)| val - train),
                };
                value.map_or_else(missing, |v| format!("{:.1}%", 100.0 * v))
            }
        }
    }

    /// A note when no listed run has this column's key, naming the keys that exist.
    fn missing_from(&self, rows: &[RunRow]) -> Option<String> {
        let (kind, key, known): (&str, &String, BTreeSet<&String>) = match self {
            Column::Param(key) => ("params", key, rows.iter().flat_map(|r| r.params.keys()).collect()),
            Column::Metric(key, _) => ("metrics", key, rows.iter().flat_map(|r| r.metrics.keys()).collect()),
            Column::Tag(key) => ("tags", key, rows.iter().flat_map(|r| r.tags.keys()).collect()),
            _ => return None,
        };
        if known.contains(key) {
            return None;
        }
        let list = known.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
        let list = if list.is_empty() { "none".to_string() } else { list };
        Some(format!("no listed run has `{kind}.{key}`; {kind} keys: {list}"))
    }
}

/// The runs as a table, one column per `Column`.
fn table(columns: &[Column], rows: &[RunRow], bases: &BTreeMap<String, f64>) -> String {
    let header: Vec<String> = columns.iter().map(Column::header).collect();
    let cells: Vec<Vec<String>> = rows.iter().map(|row| columns.iter().map(|c| c.cell(row, bases)).collect()).collect();
    let numeric: Vec<bool> = columns.iter().map(Column::numeric).collect();
    super::text_table(&header, &cells, &numeric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use regimen_store::{MetricSummary, ParamValue, RunState, Timestamp};

    fn row(id: &str, acc: f64) -> RunRow {
        let mut metrics = BTreeMap::new();
        metrics.insert(
            "val.acc".to_string(),
            MetricSummary {
                best: Some(acc),
                best_step: Some(5),
                best_epoch: Some(1),
                last: acc / 2.0,
                last_step: 10,
                count: 2,
                min: Some(acc / 2.0),
                max: Some(acc),
            },
        );
        metrics.insert(
            "lr".to_string(),
            MetricSummary {
                best: None,
                best_step: None,
                best_epoch: None,
                last: 0.001,
                last_step: 10,
                count: 2,
                min: Some(0.001),
                max: Some(0.001),
            },
        );
        let mut params = BTreeMap::new();
        params.insert("lr".to_string(), ParamValue::Number(0.001));
        RunRow {
            run_id: id.to_string(),
            dataset: None,
            name: "mlp".to_string(),
            experiment: "default".to_string(),
            status: RunState::Finished,
            reason: None,
            monitor: None,
            started_at: Timestamp(0),
            ended_at: Some(Timestamp(4200)),
            params,
            metrics,
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn columns_parse_to_their_kind_and_aggregate() {
        let parse = |t: &str| Column::parse(t).unwrap();
        assert_eq!(parse("params.lr"), Column::Param("lr".into()));
        assert_eq!(parse("metrics.val.acc"), Column::Metric("val.acc".into(), Agg::Best));
        assert_eq!(parse("metrics.val.acc.last"), Column::Metric("val.acc".into(), Agg::Last));
        assert_eq!(parse("metrics.lr"), Column::Metric("lr".into(), Agg::Last));
        assert_eq!(parse("tags.arch"), Column::Tag("arch".into()));
        let error = Column::parse("param.lr").unwrap_err().to_string();
        assert!(error.contains("`param.lr`"), "{error}");
        assert!(Column::parse("params.").is_err());
    }

    #[test]
    fn the_table_aligns_text_left_and_numbers_right() {
        let columns: Vec<Column> =
            ["run_id", "params.lr", "metrics.val.acc", "duration"].map(|c| Column::parse(c).unwrap()).into();
        let text = table(&columns, &[row("a", 0.5), row("bbbbbbb", 0.25)], &BTreeMap::new());
        let expected = "\
run_id   lr     val.acc best  duration
a        0.001        0.5000      4.2s
bbbbbbb  0.001        0.2500      4.2s
";
        assert_eq!(text, expected);
    }

    #[test]
    fn json_has_params_and_best_and_last_per_metric() {
        let value = regimen_export::run_json(&row("a", 0.5));
        assert_eq!(value["params"]["lr"], 0.001);
        assert_eq!(value["metrics"]["val.acc"]["best"], 0.5);
        assert_eq!(value["metrics"]["val.acc"]["last"], 0.25);
        assert_eq!(value["metrics"]["lr"]["best"], Value::Null);
        assert_eq!(value["status"], "finished");
    }

    #[test]
    fn a_key_no_run_has_is_named_with_the_keys_that_exist() {
        let note = Column::parse("metrics.val.f1").unwrap().missing_from(&[row("a", 0.5)]).unwrap();
        assert!(note.contains("`metrics.val.f1`") && note.contains("val.acc"), "{note}");
        assert_eq!(Column::parse("metrics.val.acc").unwrap().missing_from(&[row("a", 0.5)]), None);
    }
}
