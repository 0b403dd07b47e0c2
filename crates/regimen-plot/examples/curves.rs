//! Draws two made-up runs (train and val loss, val accuracy) to the path given as the first
//! argument, e.g. `cargo run -p regimen-plot --example curves -- /tmp/plot-example.png`.

use std::path::PathBuf;

use regimen_plot::{Curve, PlotOptions, plot};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).ok_or("usage: curves OUT.png|OUT.svg")?);
    let mut curves = Vec::new();
    for (run, rate, floor) in [("mlp-lr0.01", 0.12, 0.35), ("mlp-lr0.1", 0.3, 0.28)] {
        let epochs = 1..=30;
        let wobble = |e: f64| 0.03 * (e * 1.7 + rate * 10.0).sin();
        let loss = |e: f64, gap: f64| floor + gap * e / 30.0 + 2.0 * (-rate * e).exp() + wobble(e);
        let curve = |key: &str, f: &dyn Fn(f64) -> f64| Curve {
            run_label: run.to_string(),
            key: key.to_string(),
            points: epochs.clone().map(|e| (f64::from(e), f(f64::from(e)))).collect(),
        };
        curves.push(curve("train.loss", &|e| loss(e, -0.15)));
        curves.push(curve("val.loss", &|e| loss(e, 0.05) + 0.08));
        curves.push(curve("val.acc", &|e| 0.95 - 0.6 * (-rate * e).exp() - floor / 4.0 + wobble(e) / 3.0));
    }
    let options = PlotOptions {
        x_label: "epoch".to_string(),
        title: Some("Learning rate comparison".to_string()),
        ..PlotOptions::default()
    };
    plot(&curves, &options, &out)?;
    println!("wrote {}", out.display());
    Ok(())
}
