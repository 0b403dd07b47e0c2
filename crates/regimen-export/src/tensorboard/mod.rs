//! A run as a TensorBoard event file.
//!
//! TensorBoard reads a folder of `events.out.tfevents.*` files, each a TFRecord stream
//! ([`record`]) of `Event` protocol buffers ([`proto`]). The file written here holds the version
//! record, two text summaries describing the run, then one event per metric point. Its name is
//! derived from the run (start time and host), not from the clock at export time, so exporting a
//! run again replaces the earlier file instead of adding a second one that TensorBoard would read
//! as duplicated points.

mod proto;
mod record;

use std::fmt::Write as _;
use std::io::{self, Write};

use prost::Message as _;
use regimen_store::{RunDetail, Timestamp};

use proto::{
    Event, PluginData, SourceMetadata, Summary, SummaryMetadata, SummaryValue, TensorProto, TensorShapeProto,
    ValueKind, What,
};

/// The tag of the text summary describing the run (id, status, provenance).
pub const RUN_TEXT_TAG: &str = "regimen/run";
/// The tag of the text summary listing the run's flattened configuration.
pub const HPARAMS_TEXT_TAG: &str = "regimen/hparams";

/// Writes a run as a TensorBoard event stream (TFRecord framing, masked CRC-32C).
///
/// Records, in order:
/// 1. `file_version: "brain.Event:2"` (with `source_metadata.writer = "regimen"`), at the run's
///    start time.
/// 2. Two text summaries at step 0, read by TensorBoard's Text dashboard: [`RUN_TEXT_TAG`], a
///    markdown table of the run's id, name, experiment, status, times, seed, host, command, git
///    commit, sweep and dataset; and [`HPARAMS_TEXT_TAG`], a markdown table of the flattened
///    configuration (`optim.lr | 0.01`).
/// 3. One event per metric point: `wall_time` (Unix seconds), `step`, and a summary value tagged
///    with the metric key (`train.loss`, unchanged) holding the value rounded to `f32`
///    (`simple_value`). NaN and infinities are written as such. Points are ordered by step; within
///    a step by key, and within a key in recorded order.
///
/// A step above `i64::MAX` (TensorBoard's steps are signed) is an [`io::ErrorKind::InvalidData`]
/// error naming the metric.
pub fn write_tensorboard_events(detail: &RunDetail, mut out: impl Write) -> io::Result<()> {
    let started = seconds(detail.row.started_at);
    let version = Event {
        wall_time: started,
        step: 0,
        what: Some(What::FileVersion("brain.Event:2".to_string())),
        source_metadata: Some(SourceMetadata { writer: "regimen".to_string() }),
    };
    record::write_record(&mut out, &version.encode_to_vec())?;
    for (tag, markdown) in [(RUN_TEXT_TAG, run_table(detail)), (HPARAMS_TEXT_TAG, hparams_table(detail))] {
        record::write_record(&mut out, &text_event(started, tag, markdown).encode_to_vec())?;
    }
    let mut points: Vec<_> =
        detail.series.iter().flat_map(|(key, points)| points.iter().map(move |point| (key, point))).collect();
    points.sort_by_key(|(_, point)| point.step);
    for (key, point) in points {
        let step = i64::try_from(point.step).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("metric {key} has step {}, beyond TensorBoard's largest step {}", point.step, i64::MAX),
            )
        })?;
        let event = Event {
            wall_time: seconds(point.wall),
            step,
            what: Some(What::Summary(Summary {
                value: vec![SummaryValue {
                    tag: key.clone(),
                    metadata: None,
                    value: Some(ValueKind::SimpleValue(point.value as f32)),
                }],
            })),
            source_metadata: None,
        };
        record::write_record(&mut out, &event.encode_to_vec())?;
    }
    Ok(())
}

/// The event file's name: `events.out.tfevents.<start, Unix seconds>.<host>.regimen`.
///
/// The host is the run's recorded host with characters other than ASCII letters, digits, `-` and
/// `_` replaced by `_` (`unknown-host` when none was recorded).
pub fn event_file_name(detail: &RunDetail) -> String {
    let seconds = detail.row.started_at.0.div_euclid(1000);
    let host: String = match detail.provenance.host.as_deref() {
        Some(host) if !host.is_empty() => {
            host.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
        }
        _ => "unknown-host".to_string(),
    };
    format!("events.out.tfevents.{seconds}.{host}.regimen")
}

fn seconds(time: Timestamp) -> f64 {
    time.0 as f64 / 1000.0
}

/// A text summary as TensorBoard's text plugin writes it: a scalar string tensor with plugin
/// metadata naming `text`.
fn text_event(wall_time: f64, tag: &str, markdown: String) -> Event {
    let metadata = SummaryMetadata {
        plugin_data: Some(PluginData { plugin_name: "text".to_string(), content: Vec::new() }),
        data_class: proto::DATA_CLASS_TENSOR,
    };
    let tensor = TensorProto {
        dtype: proto::DT_STRING,
        tensor_shape: Some(TensorShapeProto {}),
        string_val: vec![markdown.into_bytes()],
    };
    Event {
        wall_time,
        step: 0,
        what: Some(What::Summary(Summary {
            value: vec![SummaryValue {
                tag: tag.to_string(),
                metadata: Some(metadata),
                value: Some(ValueKind::Tensor(tensor)),
            }],
        })),
        source_metadata: None,
    }
}

fn run_table(detail: &RunDetail) -> String {
    let row = &detail.row;
    let status = match &row.reason {
        Some(reason) => format!("{} ({reason})", row.status),
        None => row.status.to_string(),
    };
    let mut fields = vec![
        ("run id", row.run_id.clone()),
        ("name", row.name.clone()),
        ("experiment", row.experiment.clone()),
        ("status", status),
        ("started", row.started_at.to_string()),
        ("ended", row.ended_at.map_or_else(|| "not yet".to_string(), |t| t.to_string())),
        ("seed", detail.seed.to_string()),
    ];
    let optional =
        [
            ("host", detail.provenance.host.clone()),
            ("command", detail.provenance.command.clone()),
            (
                "git commit",
                detail.provenance.git_commit.as_ref().map(|c| {
                    if detail.provenance.git_dirty == Some(true) { format!("{c} (dirty)") } else { c.clone() }
                }),
            ),
            ("sweep", detail.provenance.sweep_id.clone()),
            ("trial", detail.provenance.trial_id.clone()),
            ("dataset", (!detail.dataset.is_null()).then(|| detail.dataset.to_string())),
        ];
    fields.extend(optional.into_iter().filter_map(|(name, value)| value.map(|v| (name, v))));
    markdown_table(("field", "value"), fields.iter().map(|(name, value)| (*name, value.as_str())))
}

fn hparams_table(detail: &RunDetail) -> String {
    if detail.row.params.is_empty() {
        return "No configuration was recorded.".to_string();
    }
    let values: Vec<(&str, String)> =
        detail.row.params.iter().map(|(key, value)| (key.as_str(), value.to_string())).collect();
    markdown_table(("parameter", "value"), values.iter().map(|(key, value)| (*key, value.as_str())))
}

fn markdown_table<'a>(header: (&str, &str), rows: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut table = format!("| {} | {} |\n| --- | --- |\n", header.0, header.1);
    for (name, value) in rows {
        // Writing to a String cannot fail.
        let _ = writeln!(table, "| {} | {} |", escape_markdown(name), escape_markdown(value));
    }
    table
}

/// Escapes what would break a table cell or turn into formatting; newlines become spaces.
fn escape_markdown(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' => {
                escaped.push('\\');
                escaped.push(c);
            }
            '\n' | '\r' => escaped.push(' '),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_run::sample_run;

    fn decode(stream: &[u8]) -> Vec<Event> {
        record::tests::read_records(stream)
            .expect("valid framing")
            .iter()
            .map(|data| Event::decode(data.as_slice()).expect("valid event"))
            .collect()
    }

    fn scalar(event: &Event) -> Option<(&str, f32)> {
        match &event.what {
            Some(What::Summary(Summary { value })) => match value.as_slice() {
                [SummaryValue { tag, value: Some(ValueKind::SimpleValue(v)), .. }] => Some((tag.as_str(), *v)),
                _ => None,
            },
            _ => None,
        }
    }

    fn text(event: &Event) -> Option<(&str, String)> {
        match &event.what {
            Some(What::Summary(Summary { value })) => match value.as_slice() {
                [SummaryValue { tag, value: Some(ValueKind::Tensor(tensor)), metadata: Some(metadata) }] => {
                    assert_eq!(tensor.dtype, proto::DT_STRING);
                    assert_eq!(metadata.plugin_data.as_ref().map(|p| p.plugin_name.as_str()), Some("text"));
                    let [bytes] = tensor.string_val.as_slice() else { return None };
                    Some((tag.as_str(), String::from_utf8(bytes.clone()).expect("utf-8")))
                }
                _ => None,
            },
            _ => None,
        }
    }

    #[test]
    fn the_stream_starts_with_the_version_then_describes_the_run() {
        let mut stream = Vec::new();
        write_tensorboard_events(&sample_run(), &mut stream).expect("write");
        let events = decode(&stream);
        assert_eq!(events[0].what, Some(What::FileVersion("brain.Event:2".into())));
        assert_eq!(events[0].wall_time, 1_714_564_800.0);
        let (tag, run) = text(&events[1]).expect("run text");
        assert_eq!(tag, RUN_TEXT_TAG);
        assert!(run.contains("| run id | r1 |"), "{run}");
        assert!(run.contains("| status | diverged (loss became NaN) |"), "{run}");
        assert!(run.contains("| git commit | abc123 (dirty) |"), "{run}");
        let (tag, hparams) = text(&events[2]).expect("hparams text");
        assert_eq!(tag, HPARAMS_TEXT_TAG);
        assert!(hparams.starts_with("| parameter | value |\n| --- | --- |\n"), "{hparams}");
        assert!(hparams.contains("| optim.lr | 0.01 |"), "{hparams}");
        assert!(hparams.contains("| model | mlp \\| wide |"), "{hparams}");
    }

    #[test]
    fn every_point_becomes_one_scalar_event_in_step_order() {
        let run = sample_run();
        let mut stream = Vec::new();
        write_tensorboard_events(&run, &mut stream).expect("write");
        let events = decode(&stream);
        let scalars: Vec<(i64, &str, f32)> =
            events[3..].iter().map(|e| scalar(e).map(|(tag, v)| (e.step, tag, v)).expect("a scalar")).collect();
        assert_eq!(scalars.len(), run.series.values().map(Vec::len).sum::<usize>());
        assert_eq!(
            scalars.iter().map(|(step, tag, _)| (*step, *tag)).collect::<Vec<_>>(),
            [(1, "train.loss"), (1, "val.acc"), (2, "train.loss"), (3, "train.loss")]
        );
        assert_eq!(scalars[0].2, 0.5);
        assert_eq!(scalars[1].2, 0.0, "a zero is still written as a value");
        assert!(scalars[2].2.is_infinite() && scalars[2].2 > 0.0);
        assert!(scalars[3].2.is_nan());
        assert_eq!(events[3].wall_time, 1_714_564_801.25);
    }

    #[test]
    fn a_step_beyond_i64_is_an_error_naming_the_metric() {
        let mut run = sample_run();
        if let Some(points) = run.series.get_mut("val.acc") {
            points[0].step = u64::MAX;
        }
        let error = write_tensorboard_events(&run, io::sink()).expect_err("step too large");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("val.acc"), "{error}");
    }

    #[test]
    fn the_file_name_comes_from_the_run_start_and_host() {
        let mut run = sample_run();
        assert_eq!(event_file_name(&run), "events.out.tfevents.1714564800.gpu-box_lab.regimen");
        run.provenance.host = None;
        assert_eq!(event_file_name(&run), "events.out.tfevents.1714564800.unknown-host.regimen");
    }

    #[test]
    fn markdown_escaping_keeps_cells_intact() {
        assert_eq!(escape_markdown("a|b_c*d\ne"), "a\\|b\\_c\\*d e");
    }
}
