//! What the user sees while a run trains: a bar per epoch, a line per finished epoch, a summary.
//!
//! Everything goes to stderr so that `--json` leaves stdout to the one JSON object. The bar is drawn
//! only on a terminal; in a log file each epoch is one line.

use std::fmt::Write as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use regimen_train::{EpochSummary, Observer, RunInfo, RunSummary, StepProgress, TrainConfig};

/// Draws training progress on stderr.
pub struct ProgressView {
    interactive: bool,
    bar: Option<ProgressBar>,
    /// The epoch after which the run pauses (`--pause-after-epoch`).
    pause_after: Option<u64>,
}

impl ProgressView {
    /// A view that draws bars when `interactive`, plain lines otherwise.
    pub fn new(interactive: bool) -> Self {
        Self { interactive, bar: None, pause_after: None }
    }

    /// Pauses the run after epoch `epoch` (a sweep's rung).
    pub fn pausing_after(mut self, epoch: Option<u64>) -> Self {
        self.pause_after = epoch;
        self
    }

    /// Clears any bar still on screen.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Observer for ProgressView {
    fn pause_after(&mut self, epoch: u64) -> bool {
        self.pause_after == Some(epoch)
    }

    fn on_run_start(&mut self, info: &RunInfo<'_>) {
        let d = info.dataset;
        say!(
            "run {} ({}) · {} parameters · saving to {}",
            info.run_id,
            info.name,
            info.parameters,
            info.run_dir.display()
        );
        say!(
            "data {} · fingerprint {} · split seed {} · train/val/test {}/{}/{}{}",
            d.name,
            regimen_data::short_fingerprint(&d.fingerprint),
            d.split_seed,
            d.sizes[0],
            d.sizes[1],
            d.sizes[2],
            if d.test_from_source { " (test split from the source)" } else { "" }
        );
    }

    fn on_epoch_start(&mut self, epoch: u64, epochs: u64, steps: u64) {
        if !self.interactive {
            return;
        }
        let bar = ProgressBar::new(steps);
        let style = ProgressStyle::with_template("epoch {prefix} {bar:30.cyan/blue} {pos}/{len} {msg} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(format!("{epoch}/{epochs}"));
        bar.enable_steady_tick(Duration::from_millis(200));
        self.bar = Some(bar);
    }

    fn on_step(&mut self, progress: &StepProgress) {
        if let Some(bar) = &self.bar {
            // Formatting every step would cost more than the step on small models.
            if progress.step_in_epoch.is_multiple_of(5) || progress.step_in_epoch == progress.steps_in_epoch {
                let accuracy = progress.accuracy.map(|a| format!(" acc {:.1}%", a * 100.0)).unwrap_or_default();
                bar.set_message(format!(
                    "loss {:.4}{accuracy} · {:.0} samples/s",
                    progress.loss, progress.samples_per_sec
                ));
                bar.set_position(progress.step_in_epoch);
            }
        }
    }

    fn on_epoch_end(&mut self, summary: &EpochSummary) {
        self.finish();
        say!("{}", epoch_line(summary));
    }

    fn on_notice(&mut self, level: &str, message: &str) {
        let label = if level == "warn" { "warning" } else { "note" };
        match &self.bar {
            Some(bar) => bar.println(format!("{label}: {message}")),
            None => say!("{label}: {message}"),
        }
    }
}

fn epoch_line(summary: &EpochSummary) -> String {
    let m = &summary.metrics;
    let mut line = format!("epoch {:>3}", summary.epoch);
    for (label, key, percent) in [
        ("train loss", "train.loss", false),
        ("acc", "train.acc", true),
        ("| val loss", "val.loss", false),
        ("acc", "val.acc", true),
        ("f1", "val.macro_f1", false),
        ("r2", "val.r2", false),
    ] {
        if let Some(v) = m.get(key) {
            if percent {
                let _ = write!(line, "  {label} {:.2}%", v * 100.0);
            } else {
                let _ = write!(line, "  {label} {v:.4}");
            }
        }
    }
    if let Some(rate) = m.get("sys.samples_per_sec") {
        let _ = write!(line, "  | {rate:.0} samples/s");
    }
    let _ = write!(line, "  {:.1}s", summary.seconds);
    line
}

/// The resolved settings and data source, printed when a run starts.
pub fn describe_config(config: &TrainConfig) -> String {
    let data = config.data_source();
    format!(
        "regimen train · data {data} · model {} · {} epochs · batch {} · {} lr {:e} · seed {} · device {}\n\
         resolved config (saved with the run):\n{}",
        config.model,
        config.epochs,
        config.batch_size,
        config.optimizer,
        config.lr,
        config.seed,
        config.device,
        indent(&config.to_toml())
    )
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// The end-of-run table: status, best and final metrics, where everything was saved.
pub fn summary_table(summary: &RunSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\nrun {} ({})", summary.run_id, summary.name);
    let _ = writeln!(
        out,
        "status: {}{}",
        summary.status.as_str(),
        summary.reason.as_deref().map(|r| format!(" — {r}")).unwrap_or_default()
    );
    let d = &summary.dataset;
    let _ = writeln!(
        out,
        "data: {} (fingerprint {}) · train {} · val {} · test {} · split seed {}",
        d.name, d.short_id, d.sizes[0], d.sizes[1], d.sizes[2], d.split_seed
    );
    let _ = writeln!(out, "{} epochs, {} steps in {:.1}s\n", summary.epochs, summary.steps, summary.seconds);
    let _ = writeln!(out, "  {:<22} {:>10} {:>10}", "metric", "best", "final");
    for (key, best) in &summary.best {
        let last = summary.r#final.get(key).copied().unwrap_or(f64::NAN);
        let marker = if *key == summary.monitor.metric { " ← monitored" } else { "" };
        let _ = writeln!(out, "  {key:<22} {best:>10.4} {last:>10.4}{marker}");
    }
    let _ = writeln!(out, "\nsaved in {}", summary.run_dir.display());
    if let Some(model) = &summary.final_model {
        let origin = if model.restored_best { "best" } else { "last" };
        let _ = writeln!(
            out,
            "  final model: {} ({origin} weights, epoch {}, step {})",
            model.path.display(),
            model.epoch,
            model.step
        );
    }
    if let Some(best) = &summary.checkpoints.best {
        let _ = writeln!(out, "  best checkpoint: {}", best.display());
    }
    if let Some(last) = &summary.checkpoints.last {
        let _ = writeln!(out, "  last checkpoint: {}", last.display());
    }
    let _ = writeln!(out, "  events: {}", summary.run_dir.join("events.jsonl").display());
    let _ = write!(out, "evaluate on the held-out test split with: regimen eval {} --split test", summary.run_id);
    out
}
