//! A sink that appends one JSON object per event to a file.
//!
//! Each line is the event plus `t`, seconds since the sink was opened. Writes go through a buffer
//! and reach the disk at `flush` (epoch ends, run end), so the hot path costs a format into memory.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::{Event, EventSink, SinkError};

/// Appends events as JSON lines to a file, buffered until `flush`.
pub struct JsonLinesSink {
    path: PathBuf,
    out: BufWriter<File>,
    opened: Instant,
    /// The first write error since the last flush, reported by `flush`.
    pending_error: Option<std::io::Error>,
}

#[derive(Serialize)]
struct Line<'e, 'a> {
    t: f64,
    #[serde(flatten)]
    event: &'e Event<'a>,
}

impl JsonLinesSink {
    /// Opens `path` for appending, creating it if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SinkError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| SinkError::Io { path: path.display().to_string(), source })?;
        Ok(Self { path, out: BufWriter::with_capacity(1 << 16, file), opened: Instant::now(), pending_error: None })
    }

    /// The file this sink writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io_error(&self, source: std::io::Error) -> SinkError {
        SinkError::Io { path: self.path.display().to_string(), source }
    }
}

impl EventSink for JsonLinesSink {
    fn record(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        if self.pending_error.is_some() {
            return Ok(());
        }
        let line = Line { t: self.opened.elapsed().as_secs_f64(), event };
        let written = serde_json::to_writer(&mut self.out, &line)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        if let Err(error) = written {
            self.pending_error = Some(error);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if let Some(error) = self.pending_error.take() {
            return Err(self.io_error(error));
        }
        self.out.flush().map_err(|e| self.io_error(e))?;
        self.out.get_ref().sync_data().map_err(|e| self.io_error(e))
    }
}

impl Drop for JsonLinesSink {
    fn drop(&mut self) {
        // Best effort: a run that ends by panic still keeps what it logged.
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RunStatus;

    #[test]
    fn writes_one_json_object_per_event_after_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut sink = JsonLinesSink::open(&path).unwrap();
        sink.record(&Event::Scalar { key: "train.loss", step: 10, epoch: 1, value: 0.5 }).unwrap();
        sink.record(&Event::RunEnded { status: RunStatus::Finished, reason: None, seconds: 1.5 }).unwrap();
        sink.flush().unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "scalar");
        assert_eq!(lines[0]["key"], "train.loss");
        assert_eq!(lines[0]["step"], 10);
        assert_eq!(lines[0]["value"], 0.5);
        assert!(lines[0]["t"].as_f64().unwrap() >= 0.0);
        assert_eq!(lines[1]["event"], "run_ended");
        assert_eq!(lines[1]["status"], "finished");
    }

    #[test]
    fn appends_to_an_existing_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        for _ in 0..2 {
            let mut sink = JsonLinesSink::open(&path).unwrap();
            sink.record(&Event::Notice { level: "info", message: "hello" }).unwrap();
            sink.flush().unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    }

    #[test]
    fn unwritable_location_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-folder").join("events.jsonl");
        let error = JsonLinesSink::open(&path).err().expect("opening must fail");
        assert!(error.to_string().contains("missing-folder"), "{error}");
    }
}
