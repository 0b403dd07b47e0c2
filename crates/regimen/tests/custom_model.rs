//! A user-defined Burn module trains through `train_with` and gets the whole run record.

use regimen::burn::module::Module;
use regimen::burn::nn::{Linear, LinearConfig};
use regimen::burn::prelude::*;
use regimen::{Network, Observer, RunInfo, TrainConfig, train_with};

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

#[test]
fn a_custom_network_gets_logging_checkpoints_and_a_summary() {
    let store = tempfile::tempdir().unwrap();
    let config = TrainConfig {
        dataset: "spirals".into(),
        dataset_size: Some(300),
        epochs: 2,
        store: store.path().to_path_buf(),
        ..TrainConfig::default()
    };
    let mut seen = Seen::default();
    let summary = train_with(&config, &mut seen, |data, device| {
        Ok(Linear2 { layer: LinearConfig::new(data.shape.iter().product(), data.task.num_outputs()).init(device) })
    })
    .unwrap();
    assert_eq!(seen.parameters, 2 * 3 + 3, "spirals: 2 inputs, 3 classes");
    assert_eq!(seen.epochs, 2);
    assert_eq!(summary.epochs, 2);
    assert!(summary.checkpoints.last.as_ref().unwrap().join("model.safetensors").is_file());
    assert!(summary.run_dir.join("events.jsonl").is_file());
    assert!(summary.best.contains_key("val.acc"));
}
