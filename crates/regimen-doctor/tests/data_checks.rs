//! The data checks end to end on the built-in datasets, prepared the way a run prepares them.

use regimen_data::{
    BatchBuilder, BatchTargets, DataError, Normalization, PreparedData, Samples, SplitMix64, SplitSpec, Targets,
    builtin, mix64, prepare,
};
use regimen_doctor::{CheckReport, CheckStatus, Splits, data_checks, grid::sample_grid};
use serde_json::Value;

/// Raw splits of a built-in dataset and its normalized train split.
fn prepared(name: &str, size: usize) -> Result<(PreparedData, Samples), DataError> {
    let data = prepare(builtin(name, Some(size))?, &SplitSpec::Auto, 42, false)?;
    let mut seen = data.train.clone();
    Normalization::fit(&data.train).apply(&mut seen);
    Ok((data, seen))
}

fn names(report: &CheckReport) -> Vec<&str> {
    report.checks.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn shapes_pass_every_check() -> Result<(), DataError> {
    let (data, seen) = prepared("shapes", 1000)?;
    let report = CheckReport::new(data_checks(&Splits::from_prepared(&data), &seen));
    assert_eq!(
        names(&report),
        [
            "finite_features",
            "valid_targets",
            "class_balance",
            "label_distribution",
            "constant_features",
            "input_scale",
            "duplicates",
            "leakage",
            "conflicting_labels",
            "near_duplicates"
        ]
    );
    assert_eq!(report.status(), CheckStatus::Pass, "{}", report.render_detailed(false));
    Ok(())
}

#[test]
fn spirals_pass_and_skip_what_needs_images() -> Result<(), DataError> {
    let (data, seen) = prepared("spirals", 900)?;
    let report = CheckReport::new(data_checks(&Splits::from_prepared(&data), &seen));
    assert_eq!(report.status(), CheckStatus::Pass, "{}", report.render_detailed(false));
    let near = report.checks.iter().find(|c| c.name == "near_duplicates").map(|c| c.measured["skipped"].clone());
    assert_eq!(near, Some(Value::Bool(true)));
    Ok(())
}

#[test]
fn planted_problems_are_reported_in_json() -> Result<(), Box<dyn std::error::Error>> {
    let (mut data, _) = prepared("shapes", 1000)?;
    // 40 train images copied into test, and the network fed raw 0-255 pixels.
    let leaked = data.train.subset(&(0..40).collect::<Vec<_>>());
    data.test.features.extend_from_slice(&leaked.features);
    if let (Targets::Classes(test), Targets::Classes(copied)) = (&mut data.test.targets, &leaked.targets) {
        test.extend_from_slice(copied);
    }
    let mut seen = data.train.clone();
    seen.features.iter_mut().for_each(|v| *v *= 255.0);
    let report = CheckReport::new(data_checks(&Splits::from_prepared(&data), &seen));
    let json = serde_json::to_value(&report)?;
    assert_eq!(json["status"], "fail");
    let by_name = |name: &str| {
        json["checks"].as_array().and_then(|c| c.iter().find(|c| c["name"] == name)).cloned().unwrap_or_default()
    };
    assert_eq!(by_name("leakage")["status"], "fail");
    assert_eq!(by_name("leakage")["measured"]["test_in_train"], 40);
    assert_eq!(by_name("input_scale")["status"], "fail");
    assert_eq!(by_name("finite_features")["status"], "pass");
    for check in json["checks"].as_array().into_iter().flatten() {
        assert!(check["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(check["measured"].as_object().is_some_and(|m| !m.is_empty()), "{check}");
        assert!(["pass", "warn", "fail"].contains(&check["status"].as_str().unwrap_or("")));
        if check["status"] != "pass" {
            assert!(check["advice"].is_string(), "a problem comes with advice: {check}");
        }
    }
    let text = report.render(false);
    assert!(text.contains("FAIL  leakage"), "{text}");
    assert!(text.ends_with("Verdict: FAIL\n"));
    Ok(())
}

#[test]
fn sample_grid_of_a_first_batch() -> Result<(), Box<dyn std::error::Error>> {
    let (data, seen) = prepared("shapes", 200)?;
    let (mut features, mut targets) = (Vec::new(), BatchTargets::default());
    let order: Vec<u32> = (0..32).collect();
    BatchBuilder.fill(&seen, &order, None, &mut features, &mut targets);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("first-batch.png");
    let check = sample_grid(&features, &data.shape, &targets, &data.task, &path)?;
    assert_eq!(check.status, CheckStatus::Pass, "{check:?}");
    let picture = image::open(&path)?;
    // 32 images of 28x28 drawn at 84 pixels: 6 columns, 6 rows.
    assert_eq!((picture.width(), picture.height()), (6 * 86 + 2, 6 * (86 + 14) + 2));
    assert_eq!(check.measured["labels"].as_array().map(Vec::len), Some(32));
    Ok(())
}

/// A value in `[-1, 1)` that depends only on `i`.
fn jitter(i: u64) -> f32 {
    let z = mix64(i.wrapping_mul(SplitMix64::GAMMA).wrapping_add(0x6A09_E667_F3BC_C909));
    (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

#[test]
fn near_copies_of_shapes_are_found() -> Result<(), DataError> {
    let (mut data, seen) = prepared("shapes", 2000)?;
    // 25 val images are train images re-encoded: every pixel moved by up to 8/255 (0.06 std RMS).
    let len = data.train.sample_len();
    for (k, row) in (0..25).map(|k| (k, k * 37)) {
        let copy: Vec<f32> = data
            .train
            .row(row)
            .iter()
            .enumerate()
            .map(|(j, &v)| v + 8.0 / 255.0 * jitter((k * len + j) as u64))
            .collect();
        data.val.features[k * len..(k + 1) * len].copy_from_slice(&copy);
    }
    let checks = data_checks(&Splits::from_prepared(&data), &seen);
    let near =
        checks.iter().find(|c| c.name == "near_duplicates").map(|c| (c.status, c.measured["val_in_train"].clone()));
    assert_eq!(near, Some((CheckStatus::Warn, Value::from(25))));
    Ok(())
}
