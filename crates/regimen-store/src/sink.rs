//! [`StoreSink`]: the [`EventSink`] that records a run into any [`RunStore`] without ever making
//! the training thread wait for it.
//!
//! `record` copies the event into a message and sends it down an unbounded `std::sync::mpsc`
//! channel: no disk, no lock shared with the writer beyond the channel's own lock-free queue. Metric
//! keys are interned on the training side, so a scalar is a 48-byte message with no allocation once
//! its key has been seen. A background writer thread owns the receiving end: it gathers messages
//! into batches (up to [`SinkOptions::max_batch`], or whatever arrived within
//! [`SinkOptions::linger`]) and applies each batch with one [`RunStore::write`] call, which the
//! SQLite store turns into one transaction. It also writes a heartbeat every
//! [`SinkOptions::heartbeat_every`], which is how readers tell a live run from a dead one. It takes
//! every message already queued before it looks at the clock again, so that timekeeping costs
//! per wake-up, not per message.
//!
//! The channel is unbounded on purpose: a slow disk makes memory grow, never training stall. The
//! writer sustains well over a million points per second (`cargo bench -p regimen-store`), far
//! above what a training loop emits.
//!
//! A failed batch is dropped and its error is kept and returned by the next `flush`, as the
//! [`EventSink`] contract allows; the writer carries on with later batches.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use regimen_events::{Event, EventSink, SinkError};
use serde_json::Value;

use crate::error::StoreError;
use crate::model::{NewRun, RunState, Write};
use crate::store::RunStore;
use crate::time::{Clock, SystemClock, Timestamp};
use regimen_fs::FileError;

/// How a [`StoreSink`] batches and heartbeats; the defaults suit production.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Where wall times and heartbeats come from.
    pub clock: Arc<dyn Clock>,
    /// How often the writer records that the run is alive. Keep it well under the store's
    /// crash threshold (30 s by default).
    pub heartbeat_every: Duration,
    /// The most writes in one batch (one transaction).
    pub max_batch: usize,
    /// How long the writer waits for more events before committing a partial batch.
    pub linger: Duration,
}

impl Default for SinkOptions {
    fn default() -> SinkOptions {
        SinkOptions {
            clock: Arc::new(SystemClock),
            heartbeat_every: Duration::from_secs(5),
            max_batch: 20_000,
            linger: Duration::from_millis(200),
        }
    }
}

/// A message from the training thread to the writer.
enum Msg {
    /// Key id `.0` stands for metric key `.1` from now on.
    Key(u32, Box<str>),
    Scalar {
        key: u32,
        step: u64,
        epoch: u64,
        wall: Timestamp,
        value: f64,
    },
    Start(Box<NewRun>),
    Report {
        split: Box<str>,
        step: u64,
        epoch: u64,
        wall: Timestamp,
        body: Box<Value>,
    },
    Artifact {
        kind: Box<str>,
        path: Box<str>,
        bytes: u64,
        wall: Timestamp,
    },
    Notice {
        level: Box<str>,
        message: Box<str>,
        wall: Timestamp,
    },
    End {
        status: RunState,
        reason: Option<Box<str>>,
        wall: Timestamp,
    },
    Resume {
        from_step: u64,
        wall: Timestamp,
    },
    /// Commit everything before this message, then answer.
    Flush(mpsc::SyncSender<Result<(), String>>),
}

/// Records one run's events into a [`RunStore`] from a background thread.
///
/// Create it before the run starts, with the store the run should go to; the first event recorded
/// must be [`Event::RunStarted`]. Dropping the sink commits what is pending and stops the writer.
pub struct StoreSink {
    tx: Option<Sender<Msg>>,
    writer: Option<JoinHandle<()>>,
    keys: HashMap<Box<str>, u32>,
    clock: Arc<dyn Clock>,
    /// Names the store in errors (its folder, or `in-memory store`).
    label: String,
}

impl std::fmt::Debug for StoreSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSink").field("store", &self.label).finish_non_exhaustive()
    }
}

impl StoreSink {
    /// Starts the writer thread for a run recorded into `store`.
    pub fn new(store: Arc<dyn RunStore>, options: SinkOptions) -> Result<StoreSink, StoreError> {
        StoreSink::start(store, options, None)
    }

    /// Starts the writer thread for a run that is already in `store` (a resumed run): events go
    /// to it without a [`Event::RunStarted`]; record [`Event::RunResumed`] first.
    pub fn attach(store: Arc<dyn RunStore>, options: SinkOptions, run_id: &str) -> Result<StoreSink, StoreError> {
        StoreSink::start(store, options, Some(run_id.to_string()))
    }

    fn start(store: Arc<dyn RunStore>, options: SinkOptions, run: Option<String>) -> Result<StoreSink, StoreError> {
        let label = store.root().map_or_else(|| "in-memory store".to_string(), |p| p.display().to_string());
        let (tx, rx) = mpsc::channel();
        let clock = Arc::clone(&options.clock);
        let writer = Writer { store, options, rx, keys: Vec::new(), run, pending: Vec::new(), failure: None };
        let handle = std::thread::Builder::new()
            .name("regimen-store-writer".to_string())
            .spawn(move || writer.run())
            .map_err(|source| {
            StoreError::Io(FileError { path: label.clone().into(), action: "start the writer thread for", source })
        })?;
        Ok(StoreSink { tx: Some(tx), writer: Some(handle), keys: HashMap::new(), clock, label })
    }

    fn error(&self, message: String) -> SinkError {
        SinkError::Io { path: self.label.clone(), source: io::Error::other(message) }
    }

    fn send(&self, msg: Msg) -> Result<(), SinkError> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(msg).is_ok());
        if sent { Ok(()) } else { Err(self.error("the run store's writer thread has stopped".to_string())) }
    }
}

impl EventSink for StoreSink {
    fn record(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        let wall = self.clock.now();
        let msg = match *event {
            Event::Scalar { key, step, epoch, value } => {
                let id = match self.keys.get(key) {
                    Some(id) => *id,
                    None => {
                        let id = u32::try_from(self.keys.len())
                            .map_err(|_| self.error("more than 4 billion metric keys".to_string()))?;
                        self.keys.insert(key.into(), id);
                        self.send(Msg::Key(id, key.into()))?;
                        id
                    }
                };
                Msg::Scalar { key: id, step, epoch, wall, value }
            }
            Event::RunStarted(start) => Msg::Start(Box::new(NewRun::from_start(start, wall))),
            Event::Report { split, step, epoch, body } => {
                Msg::Report { split: split.into(), step, epoch, wall, body: Box::new(body.clone()) }
            }
            Event::Artifact { kind, path, bytes } => {
                Msg::Artifact { kind: kind.into(), path: path.into(), bytes, wall }
            }
            Event::Notice { level, message } => Msg::Notice { level: level.into(), message: message.into(), wall },
            Event::RunResumed { from_step, .. } => Msg::Resume { from_step, wall },
            Event::RunEnded { status, reason, .. } => {
                Msg::End { status: status.into(), reason: reason.map(Into::into), wall }
            }
        };
        self.send(msg)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Msg::Flush(reply))?;
        match answer.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(self.error(message)),
            Err(_) => Err(self.error("the run store's writer thread stopped before committing".to_string())),
        }
    }
}

impl Drop for StoreSink {
    fn drop(&mut self) {
        // Closing the channel tells the writer to commit what is pending and stop.
        self.tx.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The background half of a [`StoreSink`].
struct Writer {
    store: Arc<dyn RunStore>,
    options: SinkOptions,
    rx: Receiver<Msg>,
    /// Metric key names by id.
    keys: Vec<Box<str>>,
    /// The run id, once its start has been received.
    run: Option<String>,
    pending: Vec<Msg>,
    /// The first error not yet reported by a flush.
    failure: Option<String>,
}

impl Writer {
    fn run(mut self) {
        let mut next_heartbeat = Instant::now() + self.options.heartbeat_every;
        // When the oldest pending message must be committed at the latest.
        let mut deadline: Option<Instant> = None;
        loop {
            let wake = deadline.map_or(next_heartbeat, |d| d.min(next_heartbeat));
            match self.rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(msg) => {
                    self.handle(msg, &mut deadline);
                    // Take what is already queued, up to a batch, before reading the clock again:
                    // at a million messages a second the clock would cost more than the rest.
                    for _ in 1..self.options.max_batch {
                        match self.rx.try_recv() {
                            Ok(msg) => self.handle(msg, &mut deadline),
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Disconnected) => return self.commit(false),
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return self.commit(false),
            }
            // Checked after every receive, not only on timeouts: a busy run never lets
            // `recv_timeout` time out, and must still heartbeat and commit within the linger.
            let now = Instant::now();
            if now >= next_heartbeat {
                next_heartbeat = now + self.options.heartbeat_every;
                if self.run.is_some() || !self.pending.is_empty() {
                    self.commit(true);
                    deadline = None;
                }
            } else if deadline.is_some_and(|d| now >= d) {
                self.commit(false);
                deadline = None;
            }
        }
    }

    /// Takes one message: queues it, commits a full batch, or answers a flush.
    fn handle(&mut self, msg: Msg, deadline: &mut Option<Instant>) {
        match msg {
            Msg::Key(id, name) => {
                debug_assert_eq!(id as usize, self.keys.len());
                self.keys.push(name);
            }
            Msg::Flush(reply) => {
                // A flush is rare (epoch ends, checkpoints) and may arrive in the same drain as
                // the messages before it, before a due heartbeat is checked: it carries one.
                self.commit(true);
                *deadline = None;
                let _ = reply.send(self.failure.take().map_or(Ok(()), Err));
            }
            msg => {
                self.pending.push(msg);
                if self.pending.len() >= self.options.max_batch {
                    self.commit(false);
                    *deadline = None;
                } else if deadline.is_none() {
                    *deadline = Some(Instant::now() + self.options.linger);
                }
            }
        }
    }

    /// Writes the pending messages as one batch, with a heartbeat at the end when asked.
    fn commit(&mut self, heartbeat: bool) {
        if self.pending.is_empty() && !heartbeat {
            return;
        }
        // Taken out for the write and put back empty after it, so the buffer keeps its capacity.
        let mut pending = std::mem::take(&mut self.pending);
        if let Some(Msg::Start(run)) = pending.first() {
            self.run = Some(run.run_id.clone());
        }
        let Some(run_id) = self.run.clone() else {
            if !pending.is_empty() {
                self.fail("events were recorded before RunStarted; the run store needs the start first".to_string());
            }
            pending.clear();
            self.pending = pending;
            return;
        };
        let checksums: Vec<Option<String>> = pending
            .iter()
            .filter_map(|msg| match msg {
                Msg::Artifact { path, .. } => Some(checksum(path)),
                _ => None,
            })
            .collect();
        let mut checksums = checksums.iter();
        let mut batch: Vec<Write<'_>> = Vec::with_capacity(pending.len() + 1);
        for msg in &pending {
            let write = match msg {
                Msg::Start(run) => Write::Start(run),
                Msg::Scalar { key, step, epoch, wall, value } => {
                    let key = self.keys.get(*key as usize).map_or("", |k| k);
                    Write::Scalar { key, step: *step, epoch: *epoch, wall: *wall, value: *value }
                }
                Msg::Report { split, step, epoch, wall, body } => {
                    Write::Report { split, step: *step, epoch: *epoch, wall: *wall, body }
                }
                Msg::Artifact { kind, path, bytes, wall } => {
                    let checksum = checksums.next().and_then(Option::as_deref);
                    Write::Artifact { kind, path, bytes: *bytes, checksum, wall: *wall }
                }
                Msg::Notice { level, message, wall } => Write::Notice { level, message, wall: *wall },
                Msg::End { status, reason, wall } => {
                    Write::End { status: *status, reason: reason.as_deref(), at: *wall }
                }
                Msg::Resume { from_step, wall } => Write::Resume { from_step: *from_step, at: *wall },
                Msg::Key(..) | Msg::Flush(_) => continue,
            };
            batch.push(write);
        }
        if heartbeat {
            batch.push(Write::Heartbeat { at: self.options.clock.now() });
        }
        let written = self.store.write(&run_id, &batch);
        drop(batch);
        if let Err(error) = written {
            let lost = pending.len();
            self.fail(format!("{error} ({lost} events were not recorded)"));
        }
        pending.clear();
        self.pending = pending;
    }

    fn fail(&mut self, message: String) {
        self.failure.get_or_insert(message);
    }
}

/// BLAKE3 of a file's content, hex; `None` when it cannot be read.
fn checksum(path: &str) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut hasher = blake3::Hasher::new();
    io::copy(&mut file, &mut hasher).ok()?;
    Some(hasher.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::T0;
    use crate::sqlite::{SqliteOptions, SqliteStore};
    use crate::time::ManualClock;
    use regimen_events::RunStart;

    fn start() -> RunStart {
        RunStart {
            run_id: "hb".into(),
            name: "hb".into(),
            started_at: T0.to_string(),
            seed: 0,
            experiment: "default".into(),
            monitor: regimen_metrics::Monitored { metric: "val.loss".into(), mode: regimen_metrics::Mode::Min },
            task: regimen_metrics::TaskInfo::Regression { target_variance: None },
            params: serde_json::json!({}),
            config: serde_json::json!({}),
            dataset: serde_json::json!({}),
            provenance: regimen_events::Provenance::default(),
            environment: serde_json::json!({}),
        }
    }

    #[test]
    fn a_busy_stream_still_heartbeats() -> Result<(), StoreError> {
        let clock = Arc::new(ManualClock::new(T0));
        let store =
            Arc::new(SqliteStore::in_memory(SqliteOptions { clock: clock.clone(), ..SqliteOptions::default() })?);
        // A zero interval makes every message due for a heartbeat, whatever the timing.
        let options = SinkOptions { clock: clock.clone(), heartbeat_every: Duration::ZERO, ..SinkOptions::default() };
        let mut sink = StoreSink::new(store.clone(), options)?;
        let gone = |e: SinkError| StoreError::WriterGone { reason: e.to_string() };
        let start = start();
        sink.record(&Event::RunStarted(&start)).map_err(gone)?;
        clock.advance(Duration::from_secs(100));
        sink.record(&Event::Scalar { key: "train.loss", step: 1, epoch: 1, value: 1.0 }).map_err(gone)?;
        sink.flush().map_err(gone)?;
        assert_eq!(store.get_run("hb")?.heartbeat_at, T0.plus(Duration::from_secs(100)));
        Ok(())
    }

    #[test]
    fn scalars_are_stamped_when_recorded_and_keys_interned_once() -> Result<(), StoreError> {
        let clock = Arc::new(ManualClock::new(T0));
        let store =
            Arc::new(SqliteStore::in_memory(SqliteOptions { clock: clock.clone(), ..SqliteOptions::default() })?);
        let mut sink = StoreSink::new(store.clone(), SinkOptions { clock: clock.clone(), ..SinkOptions::default() })?;
        let gone = |e: SinkError| StoreError::WriterGone { reason: e.to_string() };
        let start = start();
        sink.record(&Event::RunStarted(&start)).map_err(gone)?;
        for step in 0..3 {
            clock.advance(Duration::from_secs(1));
            for key in ["a.loss", "b.acc"] {
                sink.record(&Event::Scalar { key, step, epoch: 1, value: step as f64 }).map_err(gone)?;
            }
        }
        assert_eq!(sink.keys.len(), 2);
        sink.flush().map_err(gone)?;
        let detail = store.get_run("hb")?;
        let walls: Vec<Timestamp> = detail.series["b.acc"].iter().map(|p| p.wall).collect();
        assert_eq!(walls, [1, 2, 3].map(|s| T0.plus(Duration::from_secs(s))));
        Ok(())
    }
}
