//! The model checks on tiny real models: one setup built to pass each check and one built to
//! fail it. The judges' thresholds are tested on scripted numbers next to each judge.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use regimen_data::{PreparedData, Targets};

use super::*;
use regimen_fs::FileError;

/// A small CNN on 500 `shapes` images: fast, and easy enough to learn in a few dozen steps.
fn small_cnn() -> TrainConfig {
    TrainConfig { dataset_size: Some(500), channels: vec![4, 8], batch_size: 32, ..TrainConfig::default() }
}

fn small_options() -> CheckOptions {
    CheckOptions {
        steps: 40,
        overfit_steps: 150,
        determinism_steps: 3,
        init_samples: 128,
        val_samples: 200,
        ..CheckOptions::default()
    }
}

/// A context over `data` (normalized as the run would) for `config`.
fn context<'a>(config: &'a TrainConfig, data: &'a PreparedData, options: &'a CheckOptions) -> Context<'a> {
    let device = Device::flex().autodiff();
    Context {
        config,
        data,
        plain: device.clone().without_autodiff(),
        device,
        baseline: TrivialBaseline::of(&data.task, &data.train, config.label_smoothing),
        options,
    }
}

fn builtin_builder<'a>(ctx: &'a Context<'a>) -> impl Fn(&TrainConfig) -> TrainResult<crate::BuiltinModel> + 'a {
    move |config: &TrainConfig| {
        ctx.device.seed(config.seed);
        crate::model::build_for(ctx.data, config, &ctx.device)
    }
}

/// Environment variable naming the test a child process runs.
const CHILD: &str = "REGIMEN_CHECK_TEST_CHILD";

/// Burn's CPU backend has one random generator per process, and the test harness runs tests on
/// parallel threads, so a test that needs exact repeats (the same seed giving the same losses)
/// cannot share the process. Such a test calls this first: in the harness it reruns itself alone
/// in a child process of the test binary, asserts that the child passed, and returns `false`; in
/// the child it returns `true` and the test runs its body.
fn alone(test: &str) -> bool {
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("no test binary: {e}"));
    let out = std::process::Command::new(exe)
        .args([test, "--exact", "--test-threads=1"])
        .env(CHILD, test)
        .output()
        .unwrap_or_else(|e| panic!("cannot rerun {test}: {e}"));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} failed in its own process:\n{stdout}\n{stderr}"
    );
    false
}

fn find<'a>(report: &'a CheckReport, name: &str) -> &'a Check {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} in\n{}", report.render_detailed(false)))
}

#[test]
fn a_small_cnn_on_shapes_passes_every_check() -> Result<(), TrainError> {
    if !alone("check::tests::a_small_cnn_on_shapes_passes_every_check") {
        return Ok(());
    }
    let dir = tempfile::tempdir()
        .map_err(|source| TrainError::Io(FileError { path: "tmp".into(), action: "create", source }))?;
    let options = CheckOptions { grid: Some(dir.path().join("first_batch.png")), ..small_options() };
    let mut stages = Vec::new();
    struct Stages<'a>(&'a mut Vec<String>);
    impl CheckObserver for Stages<'_> {
        fn on_stage(&mut self, stage: &str) {
            self.0.push(stage.to_owned());
        }
    }
    let report = check(&small_cnn(), &options, &mut Stages(&mut stages))?;
    let text = report.render_detailed(false);
    for name in std::iter::once("sample_grid").chain(super::MODEL_CHECKS) {
        assert_eq!(find(&report, name).status, CheckStatus::Pass, "{name}:\n{text}");
    }
    assert_eq!(report.status(), CheckStatus::Pass, "{text}");
    assert!(dir.path().join("first_batch.png").is_file());
    assert_eq!(stages.first().map(String::as_str), Some("data"));
    assert_eq!(stages.last().map(String::as_str), Some("determinism"));
    // Per-layer gradients are reported under the layers' paths.
    let flow = find(&report, "gradient_flow");
    assert!(flow.measured["grad_norm_init"]["blocks.0.conv"].is_number(), "{:?}", flow.measured);
    assert!(flow.measured["grad_norm_init"]["output"].is_number());
    Ok(())
}

/// A model that ignores its input: a learned output bias, and a linear layer it never uses.
#[derive(Module, Debug)]
struct Blind {
    unused: Linear,
    bias: Param<Tensor<1>>,
}

impl Network for Blind {
    fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        let batch = input.dims()[0];
        self.bias.val().unsqueeze::<2>().repeat_dim(0, batch)
    }
}

#[test]
fn a_model_that_ignores_its_input_fails_the_baseline_and_gradient_flow() -> Result<(), TrainError> {
    let config = small_cnn();
    let options = small_options();
    let report = check_with(&config, &options, &mut Quiet, |data, _, device| {
        let features: usize = data.shape.iter().product();
        let outputs = data.task.num_outputs();
        Ok(Blind {
            unused: LinearConfig::new(features, 4).init(device),
            bias: Param::from_tensor(Tensor::zeros([outputs], device)),
        })
    })?;
    let text = report.render_detailed(false);
    assert_eq!(find(&report, "input_independent_baseline").status, CheckStatus::Fail, "{text}");
    let flow = find(&report, "gradient_flow");
    assert_eq!(flow.status, CheckStatus::Fail, "{text}");
    assert!(flow.message.contains("unused"), "{}", flow.message);
    assert_eq!(find(&report, "overfit_one_batch").status, CheckStatus::Fail, "{text}");
    // Its output starts at exactly zero: the loss at init is ln 5.
    let init = find(&report, "loss_at_init");
    assert_eq!(init.status, CheckStatus::Pass, "{text}");
    assert!((init.measured["loss"].as_f64().unwrap_or_default() - 5f64.ln()).abs() < 1e-3);
    assert_eq!(report.status(), CheckStatus::Fail);
    Ok(())
}

#[test]
fn shuffled_labels_still_overfit_one_batch_but_stay_at_chance() -> Result<(), TrainError> {
    let config = small_cnn();
    let options = small_options();
    let (_, mut data) = load(&config)?;
    // Give every train and val sample the label of another one: labels no longer depend on inputs.
    for split in [&mut data.train, &mut data.val] {
        if let Targets::Classes(labels) = &mut split.targets {
            let order = epoch_order(7, 0, labels.len());
            let shuffled: Vec<u32> = order.iter().map(|&i| labels[i as usize]).collect();
            *labels = shuffled;
        }
    }
    let ctx = context(&config, &data, &options);
    let build = builtin_builder(&ctx);
    let overfit = overfit::judge(&overfit::measure(&ctx, &build)?);
    assert_eq!(overfit.status, CheckStatus::Pass, "{overfit:?}");
    let val = short_run::val_subset(&data.val, options.val_samples);
    let real = short_run::run(&ctx, &build, &data.train, &val, short_run::Inputs::Real)?;
    let zero =
        short_run::run(&ctx, &build, &steps::zeroed(&data.train), &steps::zeroed(&val), short_run::Inputs::Zeroed)?;
    let baseline = short_run::judge_input_independent(&real, &zero);
    assert_eq!(baseline.status, CheckStatus::Fail, "{baseline:?}");
    Ok(())
}

#[test]
fn a_learning_rate_of_10_explodes() -> Result<(), TrainError> {
    let config = TrainConfig { lr: 10.0, ..small_cnn() };
    let options = small_options();
    let (_, data) = load(&config)?;
    let ctx = context(&config, &data, &options);
    let build = builtin_builder(&ctx);
    let val = short_run::val_subset(&data.val, options.val_samples);
    let real = short_run::run(&ctx, &build, &data.train, &val, short_run::Inputs::Real)?;
    let flow = short_run::judge_gradient_flow(&real);
    assert_eq!(flow.status, CheckStatus::Fail, "{flow:?}");
    assert!(flow.message.starts_with("Exploding"), "{}", flow.message);
    let ratio = short_run::judge_update_ratio(&real);
    assert_eq!(ratio.status, CheckStatus::Fail, "{ratio:?}");
    let overfit = overfit::judge(&overfit::measure(&ctx, &build)?);
    assert_eq!(overfit.status, CheckStatus::Fail, "{overfit:?}");
    Ok(())
}

#[test]
fn an_oversized_output_layer_fails_the_loss_at_init() -> Result<(), TrainError> {
    let config = small_cnn();
    let options = small_options();
    let (_, data) = load(&config)?;
    let ctx = context(&config, &data, &options);
    // Every weight multiplied by 30: logits in the hundreds before any training.
    let build = |config: &TrainConfig| -> TrainResult<crate::BuiltinModel> {
        struct Scale;
        impl burn::module::ModuleMapper for Scale {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                param.map(|t| {
                    let grad = t.is_require_grad();
                    let scaled = (t.clone().detach() * 30.0).into_data();
                    Tensor::from_data(scaled, &t.device()).set_require_grad(grad)
                })
            }
        }
        ctx.device.seed(config.seed);
        Ok(crate::model::build_for(ctx.data, config, &ctx.device)?.map(&mut Scale))
    };
    let init = init::judge_loss_at_init(&init::measure(&ctx, &build)?, &ctx.baseline);
    assert_eq!(init.status, CheckStatus::Fail, "{init:?}");
    Ok(())
}

#[test]
fn imbalanced_classes_make_init_well_matter() -> Result<(), TrainError> {
    let config = small_cnn();
    let options = small_options();
    let (_, mut data) = load(&config)?;
    // Relabel: class 0 for 90% of the train samples.
    if let Targets::Classes(labels) = &mut data.train.targets {
        for (i, label) in labels.iter_mut().enumerate() {
            *label = if i % 10 == 0 { 1 } else { 0 };
        }
    }
    let ctx = context(&config, &data, &options);
    let measured = init::measure(&ctx, &builtin_builder(&ctx))?;
    let well = init::judge_init_well(&measured, &ctx.baseline);
    assert_eq!(well.status, CheckStatus::Warn, "{well:?}");
    assert!(measured.well_loss.unwrap_or(f64::NAN) < measured.loss);
    Ok(())
}

#[test]
fn the_same_seed_gives_the_same_losses() -> Result<(), TrainError> {
    if !alone("check::tests::the_same_seed_gives_the_same_losses") {
        return Ok(());
    }
    let config =
        TrainConfig { dropout: 0.2, augment_flip: true, augment_noise: 0.1, hidden: Some(vec![16]), ..small_cnn() };
    let options = small_options();
    let (_, data) = load(&config)?;
    let ctx = context(&config, &data, &options);
    let build = builtin_builder(&ctx);
    let first = determinism::losses(&ctx, &build)?;
    let second = determinism::losses(&ctx, &build)?;
    let same = determinism::judge(&first, &second, config.seed, "cpu");
    assert_eq!(same.status, CheckStatus::Pass, "{same:?}\n{first:?}\n{second:?}");
    let other = TrainConfig { seed: 7, ..config.clone() };
    let ctx = Context { config: &other, ..context(&config, &data, &options) };
    let third = determinism::losses(&ctx, &builtin_builder(&ctx))?;
    assert_eq!(determinism::judge(&first, &third, config.seed, "cpu").status, CheckStatus::Fail);
    Ok(())
}

#[test]
fn options_and_out_dirs() {
    assert!(CheckOptions::default().validate().is_ok());
    let error = CheckOptions { steps: 3, ..CheckOptions::default() }.validate().unwrap_err().to_string();
    assert!(error.contains("`steps` is 3"), "{error}");
    let store = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    let first = default_out_dir(store.path(), now);
    assert_eq!(first, store.path().join("checks").join("2023-11-14T22-13-20Z"));
    std::fs::create_dir_all(&first).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(default_out_dir(store.path(), now), store.path().join("checks").join("2023-11-14T22-13-20Z-2"));
}
