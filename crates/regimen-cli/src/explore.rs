//! `regimen explore`: the data report a person reads before training. Takes `regimen train`'s
//! data flags; prints the data checks and the answers of `regimen_train::explore`'s probes, and
//! saves them as `explore.json` with the pictures (`examples.png`, `outliers.png`, `suspects.png`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use anyhow::Context;
use clap::Args;
use regimen_train::check::{self, CheckStatus};
use regimen_train::explore::{ExploreOptions, explore};

use crate::EXIT_CHECK_FAILED;
use crate::args::TrainArgs;
use crate::check::Stages;
use crate::commands::emit;

/// Flags of `regimen explore`.
#[derive(Debug, Args)]
pub struct ExploreArgs {
    /// The data to explore (and the seed and device of the probes), as `regimen train` takes them.
    #[command(flatten)]
    pub train: TrainArgs,
    /// Most training samples each probe trains on.
    #[arg(long, value_name = "N", default_value_t = 3000, help_heading = "Explore")]
    pub samples: usize,
    /// Epochs of each probe.
    #[arg(long, value_name = "N", default_value_t = 4, help_heading = "Explore")]
    pub probe_epochs: u64,
    /// Folder for explore.json and the pictures [default: <store>/explore/<UTC time>].
    #[arg(long, value_name = "DIR", help_heading = "Explore")]
    pub out: Option<PathBuf>,
}

/// Runs `regimen explore`: exit code 0, or 4 when a check FAILs (a single class, NaN values).
pub fn run(args: ExploreArgs) -> anyhow::Result<ExitCode> {
    let json = args.train.json;
    let config = args.train.resolve()?;
    let out = args.out.clone().unwrap_or_else(|| {
        let checks = check::default_out_dir(&config.store, SystemTime::now());
        config.store.join("explore").join(checks.file_name().unwrap_or_default())
    });
    std::fs::create_dir_all(&out).with_context(|| format!("could not create the output folder {}", out.display()))?;
    let options = ExploreOptions {
        samples: args.samples,
        epochs: args.probe_epochs,
        out: Some(out.clone()),
        ..Default::default()
    };
    if !json {
        say!("regimen explore · data {} · seed {} · device {}", config.data_source(), config.seed, config.device);
    }
    let started = Instant::now();
    let mut stages = Stages { current: None };
    let exploration =
        if json { explore(&config, &options, &mut check::Quiet) } else { explore(&config, &options, &mut stages) }
            .context("the exploration could not run")?;
    stages.finish();
    let mut exploration = exploration;
    let histograms = out.join("histograms.png");
    match draw_histograms(&exploration.features, &histograms) {
        Ok(true) => exploration.pictures.push(histograms),
        Ok(false) => {}
        Err(error) => say!("warning: could not draw {}: {error}", histograms.display()),
    }
    let text = format!("{}\n", serde_json::to_string_pretty(&exploration)?);
    let path = out.join("explore.json");
    regimen_fs::write(&path, text.as_bytes()).with_context(|| format!("could not write {}", path.display()))?;
    if json {
        emit(&text)?;
    } else {
        emit(&exploration.report.render(crate::colors(&std::io::stdout())))?;
        say!("{:.1} s · report and pictures saved in {}", started.elapsed().as_secs_f64(), out.display());
    }
    let failed = exploration.report.status() == CheckStatus::Fail;
    Ok(if failed { ExitCode::from(EXIT_CHECK_FAILED) } else { ExitCode::SUCCESS })
}

/// Most features drawn in `histograms.png`.
const HISTOGRAM_PANELS: usize = 12;

/// One panel per feature (the first 12), one curve per class: the share of the class's values in
/// each bin of the feature's range. `Ok(false)` when there is nothing to draw.
fn draw_histograms(
    features: &[regimen_doctor::explore::FeatureSummary],
    path: &std::path::Path,
) -> Result<bool, regimen_plot::PlotError> {
    let mut curves = Vec::new();
    for feature in features.iter().take(HISTOGRAM_PANELS).filter(|f| f.max > f.min) {
        let width = (feature.max - feature.min) / regimen_doctor::explore::HISTOGRAM_BINS as f64;
        for (class, shares) in &feature.histograms {
            let points =
                shares.iter().enumerate().map(|(b, &share)| (feature.min + (b as f64 + 0.5) * width, share)).collect();
            curves.push(regimen_plot::Curve { run_label: class.clone(), key: feature.feature.clone(), points });
        }
    }
    if curves.is_empty() {
        return Ok(false);
    }
    let options = regimen_plot::PlotOptions {
        x_label: "value (y: share of the class in each bin)".into(),
        title: Some("Per-class histograms of the raw training features".into()),
        ..Default::default()
    };
    regimen_plot::plot(&curves, &options, path)?;
    Ok(true)
}
