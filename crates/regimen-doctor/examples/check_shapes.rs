//! Runs every data check and the sample grid on the built-in `shapes` dataset (10,000 28x28
//! images by default), prints the report, and how long each check took on stderr.
//!
//! `cargo run --release -p regimen-doctor --example check_shapes [-- --json] [SIZE]`

use std::error::Error;
use std::time::Instant;

use regimen_data::{Augment, BatchBuilder, BatchTargets, Normalization, SplitSpec, builtin, epoch_order, prepare};
use regimen_doctor::{Check, CheckReport, Splits, balance, constant, data_checks, duplicates, finite, grid, scale};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let size = args.iter().find_map(|a| a.parse::<usize>().ok());
    let source = builtin("shapes", size)?;
    let data = prepare(source, &SplitSpec::Auto, 42, false)?;
    let mut seen = data.train.clone();
    Normalization::fit(&data.train).apply(&mut seen);
    let splits = Splits::from_prepared(&data);

    // Each check on its own, for the timings.
    let timed = |name: &str, run: &dyn Fn() -> Vec<Check>| {
        let start = Instant::now();
        let checks = run();
        eprintln!("{name:>20}: {:7.1} ms", start.elapsed().as_secs_f64() * 1e3);
        checks
    };
    timed("finite", &|| vec![finite::finite_features(&splits), finite::valid_targets(&splits)]);
    timed("balance", &|| {
        balance::class_balance(&splits).into_iter().chain([balance::label_distribution(&splits)]).collect()
    });
    timed("constant", &|| vec![constant::constant_features(&splits)]);
    timed("scale", &|| vec![scale::input_scale(&splits, &seen)]);
    timed("duplicates", &|| duplicates::duplicate_checks(&splits));
    let mut report = CheckReport::new(timed("all data checks", &|| data_checks(&splits, &seen)));

    let order = epoch_order(42, 0, seen.len());
    let augment = Augment { hflip: true, crop_padding: 2, rotate_degrees: 10.0, noise_std: 0.0 };
    let (mut features, mut targets) = (Vec::new(), BatchTargets::default());
    BatchBuilder.fill(&seen, &order[..64], Some((&augment, 42, 0, 0)), &mut features, &mut targets);
    let path = std::env::temp_dir().join("regimen-doctor-shapes-batch.png");
    let start = Instant::now();
    report.push(grid::sample_grid(&features, &data.shape, &targets, &data.task, &path)?);
    eprintln!("{:>20}: {:7.1} ms", "sample grid", start.elapsed().as_secs_f64() * 1e3);
    eprintln!("({} train, {} val, {} test samples)", data.train.len(), data.val.len(), data.test.len());

    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render(false));
    }
    Ok(())
}
