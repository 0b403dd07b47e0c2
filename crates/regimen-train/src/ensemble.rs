//! Ensembles: the recipe's "pretty much guaranteed 2%". The members' best checkpoints predict the
//! same split, their predicted probabilities (or regression outputs) are averaged, and the average
//! is scored like any model, beside each member scored the same way.

use std::collections::BTreeMap;

use burn::prelude::*;
use regimen_data::{BatchBuilder, DatasetIdentity, Samples, Task};
use regimen_metrics::Report;

use crate::batches::{EpochPlan, HostBatch};
use crate::checkpoint::{self, load_weights};
use crate::device::parse_device;
use crate::error::TrainError;
use crate::evaluate::{Meter, host_outputs};
use crate::model::{Network, build_for};
use crate::run::{CheckpointChoice, Recorder, choose_checkpoint, load_data};

/// One member of an ensemble, scored alone.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Member {
    /// Its run.
    pub run_id: String,
    /// The checkpoint whose weights it contributed.
    pub checkpoint: std::path::PathBuf,
    /// Its own metrics on the split, `<split>.<name>`.
    pub metrics: BTreeMap<String, f64>,
}

/// An ensemble's score and its members'.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnsembleOutcome {
    /// The split scored: `val`, or `test` when asked.
    pub split: String,
    /// The data every member was trained and scored on.
    pub dataset: DatasetIdentity,
    /// Samples scored.
    pub samples: usize,
    /// Each member alone.
    pub members: Vec<Member>,
    /// The averaged prediction's metrics, `<split>.<name>`.
    pub metrics: BTreeMap<String, f64>,
    /// The averaged prediction's full report.
    pub report: Report,
}

/// Scores the average of `runs`' best checkpoints on `split`. Every member must have been trained
/// on the same data with the same split (the same fingerprint, split seed and sizes); otherwise
/// the error names the two runs that differ.
pub fn ensemble(recorder: &Recorder, runs: &[String], split: &str) -> Result<EnsembleOutcome, TrainError> {
    if runs.len() < 2 {
        return Err(config_error("an ensemble needs at least two runs".into()));
    }
    let mut first: Option<(String, DatasetIdentity, Task, Samples)> = None;
    let mut members = Vec::new();
    let mut outputs: Vec<Vec<f32>> = Vec::new();
    for run in runs {
        let (dir, _) = recorder.locate(run)?;
        let (chosen, _) = choose_checkpoint(&dir, &CheckpointChoice::Best, recorder)?;
        let config = checkpoint::read_state(&chosen)?.config;
        let data = load_data(&config)?;
        let samples = match split {
            "val" => data.val.clone(),
            "test" => data.test.clone(),
            other => return Err(config_error(format!("unknown split `{other}`; use val or test"))),
        };
        match &first {
            None => first = Some((dir.id(), data.identity.clone(), data.task.clone(), samples.clone())),
            Some((first_run, identity, _, _)) => {
                let same = identity.fingerprint == data.identity.fingerprint
                    && identity.split_seed == data.identity.split_seed
                    && identity.sizes == data.identity.sizes;
                if !same {
                    return Err(config_error(format!(
                        "runs {first_run} and {} were not trained on the same data and split (data {} split seed {} \
                         sizes {:?} against data {} split seed {} sizes {:?}); an ensemble averages predictions on \
                         one split",
                        dir.id(),
                        identity.short_id,
                        identity.split_seed,
                        identity.sizes,
                        data.identity.short_id,
                        data.identity.split_seed,
                        data.identity.sizes
                    )));
                }
            }
        }
        let device = parse_device(&config.device)?;
        let model = build_for(&data, &config, &device)?;
        let model = load_weights(model, &chosen.model_file())?.valid();
        let predicted = predict(&model, &samples, config.batch_size, &data.task, &device)?;
        let top_k = config.top_k;
        let metrics = score(&predicted, &samples, &data.task, top_k, split)?.0;
        members.push(Member { run_id: dir.id(), checkpoint: chosen.dir, metrics });
        outputs.push(predicted);
    }
    let (_, dataset, task, samples) = first.expect("at least two runs were read");
    let n = outputs.len() as f32;
    let average: Vec<f32> = (0..outputs[0].len()).map(|i| outputs.iter().map(|o| o[i]).sum::<f32>() / n).collect();
    let (metrics, report) = score(&average, &samples, &task, 3, split)?;
    Ok(EnsembleOutcome { split: split.to_string(), dataset, samples: samples.len(), members, metrics, report })
}

fn config_error(message: String) -> TrainError {
    TrainError::Config { origin: "the ensemble".into(), message }
}

/// The model's predictions for every sample, in order: class probabilities (softmax of the
/// outputs) for classification, the outputs for regression.
pub(crate) fn predict<M: Network>(
    model: &M,
    samples: &Samples,
    batch_size: usize,
    task: &Task,
    device: &Device,
) -> Result<Vec<f32>, TrainError> {
    let order: Vec<u32> = (0..samples.len() as u32).collect();
    let plan = EpochPlan { samples, order: &order, batch_size, training: false, augment: None, first_batch: 0 };
    let mut predicted = Vec::new();
    for index in 0..plan.batches() {
        let mut batch: HostBatch = plan.build(&BatchBuilder, index);
        let outputs = model.forward(batch.input(device));
        let outputs = match task {
            Task::Classification { .. } => burn::tensor::activation::softmax(outputs, 1),
            Task::Regression => outputs,
        };
        predicted.extend(host_outputs(outputs)?);
    }
    Ok(predicted)
}

/// Scores predictions (probabilities or values) against the samples' targets: the meters'
/// metrics, with the loss as the mean negative log-likelihood of the true class (or the mean
/// squared error).
fn score(
    predicted: &[f32],
    samples: &Samples,
    task: &Task,
    top_k: usize,
    split: &str,
) -> Result<(BTreeMap<String, f64>, Report), TrainError> {
    let mut meter = Meter::for_task(task, top_k)?;
    let order: Vec<u32> = (0..samples.len() as u32).collect();
    let plan = EpochPlan {
        samples,
        order: &order,
        batch_size: samples.len().max(1),
        training: false,
        augment: None,
        first_batch: 0,
    };
    let batch: HostBatch = plan.build(&BatchBuilder, 0);
    let loss = match &batch.targets {
        regimen_data::BatchTargets::Classes(classes) => {
            let k = predicted.len() / classes.len().max(1);
            let nll: f64 = classes
                .iter()
                .enumerate()
                .map(|(i, &c)| -f64::from(predicted[i * k + c as usize].max(1e-12)).ln())
                .sum();
            nll / classes.len().max(1) as f64
        }
        regimen_data::BatchTargets::Values(values) => {
            let se: f64 = values.iter().zip(predicted).map(|(y, p)| f64::from(y - p).powi(2)).sum();
            se / values.len().max(1) as f64
        }
    };
    meter.update(predicted, &batch.targets, loss)?;
    let report = meter.report();
    let metrics = report.scalars().map(|(name, value)| (format!("{split}.{name}"), value)).collect();
    Ok((metrics, report))
}
