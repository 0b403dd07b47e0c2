//! A run's metric series as one long CSV table, the shape pandas, R and spreadsheets pivot from.

use std::io::{self, Write};

use regimen_store::RunDetail;

/// The header row.
pub const CSV_HEADER: [&str; 7] = ["run_id", "run_name", "key", "step", "epoch", "wall_time", "value"];

/// Writes every metric point of a run as CSV in long format: one row per point.
///
/// Columns: [`CSV_HEADER`]. `wall_time` is RFC 3339 in UTC with milliseconds
/// (`2024-05-01T12:00:01.250Z`), exact at the store's precision and parsed by
/// `pandas.to_datetime`. `value` is the shortest decimal that reads back as the same `f64`
/// (`0.5`, `1e-7`), or `NaN`, `inf`, `-inf`, which Python's `float()` and pandas read as such.
/// Rows are ordered by key, then as the store orders each series (step, then arrival). Fields
/// are quoted only where needed (RFC 4180).
pub fn write_csv(detail: &RunDetail, out: impl Write) -> io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(CSV_HEADER)?;
    let row = &detail.row;
    for (key, points) in &detail.series {
        for point in points {
            let record = (&row.run_id, &row.name, key, point.step, point.epoch, point.wall.to_string(), point.value);
            writer.serialize(record)?;
        }
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_run::sample_run;

    #[test]
    fn one_row_per_point_with_non_finite_values_spelled_out() {
        let mut run = sample_run();
        run.row.name = "mlp, \"baseline\"".to_string();
        if let Some(points) = run.series.get_mut("val.acc") {
            points[0].value = -f64::INFINITY;
            points.push(regimen_store::MetricPoint { value: 1e-7, step: 2, ..points[0] });
        }
        let mut out = Vec::new();
        write_csv(&run, &mut out).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            "run_id,run_name,key,step,epoch,wall_time,value\n\
             r1,\"mlp, \"\"baseline\"\"\",train.loss,1,1,2024-05-01T12:00:01.250Z,0.5\n\
             r1,\"mlp, \"\"baseline\"\"\",train.loss,2,1,2024-05-01T12:00:02.000Z,inf\n\
             r1,\"mlp, \"\"baseline\"\"\",train.loss,3,1,2024-05-01T12:00:03.000Z,NaN\n\
             r1,\"mlp, \"\"baseline\"\"\",val.acc,1,1,2024-05-01T12:00:01.500Z,-inf\n\
             r1,\"mlp, \"\"baseline\"\"\",val.acc,2,1,2024-05-01T12:00:01.500Z,1e-7\n"
        );
    }

    #[test]
    fn a_run_without_metrics_is_just_the_header() {
        let mut run = sample_run();
        run.series.clear();
        let mut out = Vec::new();
        write_csv(&run, &mut out).expect("write");
        assert_eq!(out, b"run_id,run_name,key,step,epoch,wall_time,value\n");
    }
}
