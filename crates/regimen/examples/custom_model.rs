//! Train your own Burn module with Regimen: seeding, splits, logging, checkpoints and the summary
//! come for free.
//!
//! Run with `cargo run --release -p regimen --example custom_model`.

use regimen::burn::module::Module;
use regimen::burn::nn::{Linear, LinearConfig};
use regimen::burn::prelude::*;
use regimen::burn::tensor::activation::tanh;
use regimen::{Network, Recorder, Silent, TrainConfig, train_with};

/// A two-layer tanh network: the kind of small model one writes to probe a tabular task.
#[derive(Module, Debug)]
struct TanhNet {
    hidden: Linear,
    output: Linear,
}

impl Network for TanhNet {
    fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        self.output.forward(tanh(self.hidden.forward(input)))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    regimen::keep_freed_memory();
    let config = TrainConfig { dataset: "spirals".into(), epochs: 30, lr: 1e-2, ..TrainConfig::default() };
    // Runs go to the SQLite store that `regimen runs --store <folder>` reads.
    let folder = std::env::temp_dir().join("regimen-example");
    let recorder = Recorder::new(&folder, Some(regimen::store::open(&folder)?));
    let summary = train_with(&config, &recorder, &mut Silent, |data, _config, device| {
        let inputs: usize = data.shape.iter().product();
        Ok(TanhNet {
            hidden: LinearConfig::new(inputs, 64).init(device),
            output: LinearConfig::new(64, data.task.num_outputs()).init(device),
        })
    })?;
    println!(
        "run {} finished: best val.acc {:.3}, saved in {}",
        summary.run_id,
        summary.best.get("val.acc").copied().unwrap_or(f64::NAN),
        summary.run_dir.display()
    );
    Ok(())
}
