//! The probe behind `regimen find batch-size`: one full training step (forward, backward,
//! optimizer step) and one validation step at a given batch size, on a fresh model.
//!
//! The caller runs each probe in a process of its own and reads its peak memory: the model and
//! optimizer it would train are never touched, and a probe that runs out of memory (an error, a
//! panic, or the kernel's OOM killer) is a data point for the caller, never a crash of the caller.

use burn::prelude::*;
use regimen_data::BatchBuilder;

use crate::batches::EpochPlan;
use crate::config::TrainConfig;
use crate::device::parse_device;
use crate::error::TrainError;
use crate::evaluate::{Meter, Objective, evaluate};
use crate::model::build_for;
use crate::run::load_data;
use crate::step::{Probe, Stepper};
use crate::system::{device_memory_bytes, peak_rss_bytes};

/// What one probe measured.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BatchProbe {
    /// The batch size probed.
    pub batch_size: usize,
    /// The process's peak resident memory after the steps.
    pub peak_rss_bytes: Option<u64>,
    /// The device's memory pool after the steps (GPU backends).
    pub device_bytes: Option<u64>,
    /// The training split's size: no batch can be larger.
    pub train_samples: usize,
}

/// Takes one training and one validation step at `batch_size` with the model `config` describes.
pub fn probe_batch_size(config: &TrainConfig, batch_size: usize) -> Result<BatchProbe, TrainError> {
    let mut config = config.clone();
    config.batch_size = batch_size;
    config.validate()?;
    let device = parse_device(&config.device)?.autodiff();
    let data = load_data(&config)?;
    config.resolve_model(&data.shape);
    let train_samples = data.train.len();
    if batch_size == 0 || batch_size > train_samples {
        return Err(TrainError::Config {
            origin: "the batch-size probe".into(),
            message: format!("a batch of {batch_size} does not fit the training split of {train_samples} samples"),
        });
    }
    device.seed(config.seed);
    let model = build_for(&data, &config, &device)?;
    let mut stepper = Stepper::new(&config, &data.task, config.label_smoothing, &device);
    let order: Vec<u32> = (0..batch_size as u32).collect();
    let plan =
        EpochPlan { samples: &data.train, order: &order, batch_size, training: true, augment: None, first_batch: 0 };
    let mut batch = plan.build(&BatchBuilder, 0);
    let (model, stepped) = stepper.step(model, &mut batch, config.lr, &device, Probe::Off);
    stepped?;
    let plain = device.clone().without_autodiff();
    let valid = model.valid();
    let objective = Objective::for_task(&data.task, 0.0, &plain);
    let mut meter = Meter::for_task(&data.task, config.top_k)?;
    let val_rows = data.val.len().min(batch_size);
    if val_rows > 0 {
        let subset = data.val.subset(&(0..val_rows).collect::<Vec<_>>());
        evaluate(&valid, &subset, &objective, &mut meter, batch_size, &plain)?;
    }
    Ok(BatchProbe {
        batch_size,
        peak_rss_bytes: peak_rss_bytes(),
        device_bytes: device_memory_bytes(&device),
        train_samples,
    })
}
