//! A user-defined Burn module trains through the facade with any store, or none, and gets the
//! whole run record; the trainer can be driven step by step.

use std::sync::Arc;

use regimen::burn::module::Module;
use regimen::burn::nn::{Linear, LinearConfig};
use regimen::burn::prelude::*;
use regimen::events::NullSink;
use regimen::store::{Query, RunStore, SqliteOptions, SqliteStore};
use regimen::{FitContext, Network, Observer, Recorder, RunInfo, Silent, TrainConfig, TrainError, Trainer, train_with};

#[derive(Module, Debug)]
struct Linear2 {
    layer: Linear,
}

impl Network for Linear2 {
    fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        self.layer.forward(input)
    }
}

#[derive(Default)]
struct Seen {
    parameters: usize,
    epochs: u64,
}

impl Observer for Seen {
    fn on_run_start(&mut self, info: &RunInfo<'_>) {
        self.parameters = info.parameters;
    }
    fn on_epoch_end(&mut self, summary: &regimen::EpochSummary) {
        self.epochs = summary.epoch;
    }
}

fn spirals(epochs: u64) -> TrainConfig {
    TrainConfig { dataset: "spirals".into(), dataset_size: Some(300), epochs, ..TrainConfig::default() }
}

fn linear(
    outputs: Option<usize>,
) -> impl FnOnce(&regimen::data::PreparedData, &TrainConfig, &Device) -> Result<Linear2, TrainError> {
    move |data, _config, device| {
        let outputs = outputs.unwrap_or(data.task.num_outputs());
        Ok(Linear2 { layer: LinearConfig::new(data.shape.iter().product(), outputs).init(device) })
    }
}

#[test]
fn a_custom_network_trains_with_the_in_memory_store_and_no_sqlite_file() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let store: Arc<dyn RunStore> = Arc::new(SqliteStore::in_memory(SqliteOptions::default()).expect("in-memory store"));
    let recorder = Recorder::new(folder.path(), Some(Arc::clone(&store)));
    let mut seen = Seen::default();
    let summary = train_with(&spirals(2), &recorder, &mut seen, linear(None)).expect("trains");
    assert_eq!(seen.parameters, 2 * 3 + 3, "spirals: 2 inputs, 3 classes");
    assert_eq!((seen.epochs, summary.epochs), (2, 2));
    assert!(summary.checkpoints.last.as_ref().expect("a checkpoint").join("model.safetensors").is_file());
    assert!(summary.run_dir.join("events.jsonl").is_file());
    assert!(summary.best.contains_key("val.acc"));

    let runs = store.list_runs(&Query::parse(None, None, None).expect("empty query")).expect("listed");
    assert_eq!(runs.len(), 1, "the run is in the store the caller gave");
    assert_eq!(runs[0].run_id, summary.run_id);
    assert_eq!(runs[0].monitor.as_ref().map(|m| m.metric.as_str()), Some("val.macro_f1"));
    let files: Vec<_> = walk(folder.path());
    assert!(!files.iter().any(|f| f.ends_with("store.sqlite")), "no SQLite file: {files:?}");
}

#[test]
fn a_run_needs_no_store_at_all() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let summary =
        train_with(&spirals(1), &Recorder::new(folder.path(), None), &mut Silent, linear(None)).expect("trains");
    assert_eq!(summary.epochs, 1);
    assert!(summary.run_dir.join("events.jsonl").is_file());
}

#[test]
fn a_network_with_the_wrong_output_width_is_a_clear_error_not_nan_metrics() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let error = train_with(&spirals(1), &Recorder::new(folder.path(), None), &mut Silent, linear(Some(5)))
        .expect_err("five outputs for three classes");
    let message = error.to_string();
    assert!(message.contains("needs 3 per sample"), "{message}");
}

#[test]
fn the_trainer_runs_a_few_steps_at_a_time_and_gives_control_back() {
    let config = spirals(2);
    let data = regimen::load_data(&config).expect("data");
    let device = Device::default().autodiff();
    let build = |device: &Device| linear(None)(&data, &config, device).expect("model");
    let (mut sink_a, mut sink_b) = (NullSink, NullSink);
    let (mut silent_a, mut silent_b) = (Silent, Silent);
    let context = |sink, observer| FitContext {
        config: &config,
        data: &data,
        device: device.clone(),
        checkpoints: None,
        resume: None,
        sink,
        observer,
    };
    device.seed(config.seed);
    let mut stepped = Trainer::new(build(&device), context(&mut sink_a, &mut silent_a)).expect("trainer");
    stepped.run_steps(2).expect("two steps");
    assert_eq!((stepped.step(), stepped.epochs_done()), (2, 0), "an epoch has 3 steps");
    stepped.run_epochs(1).expect("the rest of the epoch");
    assert_eq!(stepped.epochs_done(), 1);
    assert!(!stepped.is_done());
    stepped.run().expect("to the end");
    assert!(stepped.is_done());
    let stepped = stepped.finish().expect("outcome");

    device.seed(config.seed);
    let mut straight = Trainer::new(build(&device), context(&mut sink_b, &mut silent_b)).expect("trainer");
    straight.run().expect("to the end");
    let straight = straight.finish().expect("outcome");
    assert_eq!(stepped.steps, straight.steps);
    let bits = |outcome: &regimen::FitOutcome| -> Vec<u64> {
        outcome
            .history
            .iter()
            .flat_map(|e| {
                e.metrics.iter().filter(|(k, _)| !regimen::metrics::measures_the_machine(k)).map(|(_, v)| v.to_bits())
            })
            .collect()
    };
    assert_eq!(bits(&stepped), bits(&straight), "stepping in pieces changes nothing");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
