//! Reports as flat lists of named scalars, for loggers and for anything that monitors a metric by
//! name (early stopping, checkpoint selection, plateau schedules).
//!
//! The names are the contract between the meters and those consumers, so they live here, once:
//! `loss`, `acc`, `top{k}_acc` and `macro_f1` for classification; `loss`, `mse`, `mae` and `r2` for
//! regression. [`crate::Mode::of_name`] tells a monitor which way each of them improves.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::{ClassificationReport, RegressionReport};

/// Names of the top-k accuracy for the common `k`, so that they need no allocation.
const TOP_K_NAMES: [&str; 10] = [
    "top1_acc",
    "top2_acc",
    "top3_acc",
    "top4_acc",
    "top5_acc",
    "top6_acc",
    "top7_acc",
    "top8_acc",
    "top9_acc",
    "top10_acc",
];

/// A named scalar: the item of every `scalars` iterator.
pub type Scalar = (Cow<'static, str>, f64);

/// The iterator returned by every `scalars` method: at most four named values.
type Scalars = std::iter::Flatten<std::array::IntoIter<Option<Scalar>, 4>>;

/// The report of either kind of meter, for code that handles both alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Report {
    /// The report of a classification meter.
    Classification(ClassificationReport),
    /// The report of a regression meter.
    Regression(RegressionReport),
}

impl Report {
    /// The report as named scalars, in a stable order; see the report types for the names.
    pub fn scalars(&self) -> impl Iterator<Item = Scalar> + use<> {
        match self {
            Report::Classification(report) => report.scalars_inner(),
            Report::Regression(report) => report.scalars_inner(),
        }
    }
}

impl From<ClassificationReport> for Report {
    fn from(report: ClassificationReport) -> Self {
        Report::Classification(report)
    }
}

impl From<RegressionReport> for Report {
    fn from(report: RegressionReport) -> Self {
        Report::Regression(report)
    }
}

impl ClassificationReport {
    /// `loss`, `acc`, `top{k}_acc` and `macro_f1`, in that order. `top{k}_acc` is left out when
    /// `k = 1`, where it would repeat `acc`.
    pub fn scalars(&self) -> impl Iterator<Item = Scalar> + use<> {
        self.scalars_inner()
    }

    fn scalars_inner(&self) -> Scalars {
        let top_k = (self.top_k > 1).then(|| {
            let name = match TOP_K_NAMES.get(self.top_k - 1) {
                Some(&name) => Cow::Borrowed(name),
                None => Cow::Owned(format!("top{}_acc", self.top_k)),
            };
            (name, self.top_k_accuracy)
        });
        [
            Some((Cow::Borrowed("loss"), self.loss)),
            Some((Cow::Borrowed("acc"), self.accuracy)),
            top_k,
            Some((Cow::Borrowed("macro_f1"), self.macro_f1)),
        ]
        .into_iter()
        .flatten()
    }
}

impl RegressionReport {
    /// `loss`, `mse`, `mae` and `r2`, in that order.
    pub fn scalars(&self) -> impl Iterator<Item = Scalar> + use<> {
        self.scalars_inner()
    }

    fn scalars_inner(&self) -> Scalars {
        [
            Some((Cow::Borrowed("loss"), self.loss)),
            Some((Cow::Borrowed("mse"), self.mse)),
            Some((Cow::Borrowed("mae"), self.mae)),
            Some((Cow::Borrowed("r2"), self.r2)),
        ]
        .into_iter()
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClassificationMeter, RegressionMeter};

    fn names(report: &Report) -> Vec<String> {
        report.scalars().map(|(name, _)| name.into_owned()).collect()
    }

    fn classification(top_k: usize) -> Report {
        let num_classes = top_k.max(2);
        let mut meter = ClassificationMeter::new(num_classes, top_k).unwrap();
        let mut logits = vec![0.0; num_classes];
        logits[0] = 1.0;
        meter.update(&logits, &[0], 0.5).unwrap();
        meter.report().into()
    }

    #[test]
    fn classification_scalar_names() {
        assert_eq!(names(&classification(1)), ["loss", "acc", "macro_f1"]);
        assert_eq!(names(&classification(5)), ["loss", "acc", "top5_acc", "macro_f1"]);
        assert_eq!(names(&classification(10)), ["loss", "acc", "top10_acc", "macro_f1"]);
        assert_eq!(names(&classification(12)), ["loss", "acc", "top12_acc", "macro_f1"]);
        let values: Vec<f64> = classification(5).scalars().map(|(_, v)| v).collect();
        assert_eq!(values, [0.5, 1.0, 1.0, 0.2]);
    }

    #[test]
    fn top_k_names_are_borrowed_up_to_ten() {
        for k in 2..=10 {
            let Report::Classification(report) = classification(k) else { unreachable!() };
            let (name, _) = report.scalars().nth(2).unwrap();
            assert!(matches!(name, Cow::Borrowed(_)), "{name}");
            assert_eq!(name, format!("top{k}_acc"));
        }
    }

    #[test]
    fn regression_scalar_names() {
        let mut meter = RegressionMeter::new();
        meter.update(&[1.0, 3.0], &[1.0, 2.0], 1.0).unwrap();
        let report = Report::from(meter.report());
        let scalars: Vec<(String, f64)> = report.scalars().map(|(n, v)| (n.into_owned(), v)).collect();
        // SSE = 1, SST = 0.5: r2 = 1 - 1 / 0.5 = -1.
        let expected = [("loss", 0.5), ("mse", 0.5), ("mae", 0.5), ("r2", -1.0)].map(|(n, v)| (n.to_owned(), v));
        assert_eq!(scalars, expected);
    }

    #[test]
    fn every_produced_name_has_a_direction() {
        for report in
            [classification(1), classification(3), classification(12), Report::from(RegressionMeter::new().report())]
        {
            for (name, _) in report.scalars() {
                assert!(crate::Mode::of_name(&name).is_some(), "{name}");
            }
        }
    }

    #[test]
    fn reports_round_trip_through_serde() {
        let report = classification(2);
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.starts_with(r#"{"kind":"classification","#), "{json}");
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), report);
    }
}
