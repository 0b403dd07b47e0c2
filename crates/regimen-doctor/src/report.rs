//! The report every check ends in: a verdict, a sentence, what to try next, and the numbers.
//!
//! A check is a value, not an action: the data checks here and the model checks in the training
//! crate are functions that return [`Check`]s, and only the command line decides what to print and
//! which exit code to use. That keeps every check testable on a hand-built dataset and lets the two
//! families of checks share one report.
//!
//! The report derives `Serialize` even though Regimen keeps wire formats at the edge (ARCHITECTURE.md):
//! here the JSON *is* the report (`regimen check --json` documents its shape, `{"checks": [{"name",
//! "status", "message", "advice", "measured"}], "status"}`), and it is produced by two crates, so one definition keeps
//! them from drifting apart. `measured` is a sorted map of JSON values so that every check can
//! report whatever numbers it measured without a type per check, in a stable key order.

use std::collections::BTreeMap;
use std::fmt;

use anstyle::{AnsiColor, Style};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use textwrap::core::Word;
use textwrap::{Options, WordSeparator, WrapAlgorithm, wrap};

/// The verdict of one check, ordered from best to worst so that the worst is the `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Nothing to worry about.
    Pass,
    /// Training will run, but probably worse than it could, or a metric will mislead.
    Warn,
    /// Training or its evaluation would be wrong; fix this first.
    Fail,
}

impl CheckStatus {
    /// The lowercase name used in JSON: `pass`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        }
    }

    /// The uppercase label printed in a terminal: `PASS`, `WARN` or `FAIL`.
    pub fn label(self) -> &'static str {
        match self {
            CheckStatus::Pass => "PASS",
            CheckStatus::Warn => "WARN",
            CheckStatus::Fail => "FAIL",
        }
    }

    /// The colour of the label in a terminal: green, yellow or red.
    fn style(self) -> Style {
        match self {
            CheckStatus::Pass => AnsiColor::Green.on_default(),
            CheckStatus::Warn => AnsiColor::Yellow.on_default(),
            CheckStatus::Fail => AnsiColor::Red.on_default(),
        }
    }
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The numbers a check measured, by name, in a stable (sorted) order.
pub type Measured = BTreeMap<String, Value>;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Stable `snake_case` name of the check, e.g. `class_balance`; scripts match on it.
    pub name: String,
    /// The verdict.
    pub status: CheckStatus,
    /// What was found and what it means, in one or two full sentences with the key numbers.
    pub message: String,
    /// What to try next; `None` when there is nothing to do.
    pub advice: Option<String>,
    /// Every number the verdict is based on.
    pub measured: Measured,
}

impl Check {
    /// A check with no advice and nothing measured yet.
    pub fn new(name: impl Into<String>, status: CheckStatus, message: impl Into<String>) -> Check {
        Check { name: name.into(), status, message: message.into(), advice: None, measured: Measured::new() }
    }

    /// A passing check.
    pub fn pass(name: impl Into<String>, message: impl Into<String>) -> Check {
        Check::new(name, CheckStatus::Pass, message)
    }

    /// A warning.
    pub fn warn(name: impl Into<String>, message: impl Into<String>) -> Check {
        Check::new(name, CheckStatus::Warn, message)
    }

    /// A failure.
    pub fn fail(name: impl Into<String>, message: impl Into<String>) -> Check {
        Check::new(name, CheckStatus::Fail, message)
    }

    /// Sets what to try next.
    pub fn with_advice(mut self, advice: impl Into<String>) -> Check {
        self.advice = Some(advice.into());
        self
    }

    /// Records a measured number (or any JSON value) under `key`, replacing an earlier one.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Check {
        self.measure(key, value);
        self
    }

    /// Records a measured value in place; see [`Check::with`].
    pub fn measure(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.measured.insert(key.into(), value.into());
    }
}

/// All checks of one `regimen check` run (or the verdicts of `regimen diagnose`). Its status is
/// the worst of its checks. Not just `Report`: `regimen_metrics::Report` (an evaluation's
/// metrics) is used next to it in `regimen-train`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckReport {
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

/// Width the terminal rendering wraps at.
const RENDER_WIDTH: usize = 100;

/// Longest measured value printed in a terminal; the JSON output always has all of it.
const MAX_VALUE_CHARS: usize = 72;

impl CheckReport {
    /// A report of `checks`.
    pub fn new(checks: Vec<Check>) -> CheckReport {
        CheckReport { checks }
    }

    /// Appends a check.
    pub fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    /// The worst status of all checks; [`CheckStatus::Pass`] when there are none.
    pub fn status(&self) -> CheckStatus {
        self.checks.iter().map(|c| c.status).max().unwrap_or(CheckStatus::Pass)
    }

    /// The number of checks with `status`.
    pub fn count(&self, status: CheckStatus) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// The report for a terminal: one verdict line per check (status, name, message), under each
    /// WARN and FAIL its measured numbers and under any check its advice, indented and wrapped at
    /// 100 columns, then a summary line. Passing checks keep to their message, which carries their
    /// key numbers. With `color`, statuses are green, yellow and red and the numbers are dimmed.
    pub fn render(&self, color: bool) -> String {
        self.render_with(color, false)
    }

    /// [`CheckReport::render`] with the measured numbers of every check, passing ones included.
    pub fn render_detailed(&self, color: bool) -> String {
        self.render_with(color, true)
    }

    fn render_with(&self, color: bool, all_numbers: bool) -> String {
        let name_width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let indent = 4 + 2 + name_width + 2;
        let width = indent + RENDER_WIDTH.saturating_sub(indent).max(40);
        let pad = " ".repeat(indent);
        // A plain style renders as nothing, so the uncoloured text needs no second code path.
        let paint = |style: Style| if color { style } else { Style::new() };
        let (dim, bold) = (paint(Style::new().dimmed()), paint(Style::new().bold()));
        let label = |status: CheckStatus| format!("{style}{}{style:#}", status.label(), style = paint(status.style()));
        let mut out = String::new();
        for check in &self.checks {
            let lead = format!("{}  {bold}{:<name_width$}{bold:#}  ", label(check.status), check.name);
            push_lines(&mut out, wrap(&check.message, wrapping(width).initial_indent(&lead).subsequent_indent(&pad)));
            if !check.measured.is_empty() && (all_numbers || check.status != CheckStatus::Pass) {
                let tokens: Vec<String> =
                    check.measured.iter().map(|(k, v)| format!("{k}={}", short_value(v))).collect();
                let lead = format!("{pad}{dim}");
                let options = wrapping(width - 10)
                    .initial_indent(&lead)
                    .subsequent_indent(&lead)
                    .word_separator(WordSeparator::Custom(measured_tokens));
                push_lines(
                    &mut out,
                    wrap(&tokens.join(TOKEN_GAP), &options).iter().map(|line| format!("{line}{dim:#}")),
                );
            }
            if let Some(advice) = &check.advice {
                let (first, rest) = (format!("{pad}{bold}try: {bold:#}"), format!("{pad}     "));
                push_lines(&mut out, wrap(advice, wrapping(width).initial_indent(&first).subsequent_indent(&rest)));
            }
        }
        let verdict = label(self.status());
        out.push_str(&format!(
            "{} checks: {} pass, {} warn, {} fail. Verdict: {verdict}\n",
            self.checks.len(),
            self.count(CheckStatus::Pass),
            self.count(CheckStatus::Warn),
            self.count(CheckStatus::Fail),
        ));
        out
    }
}

impl fmt::Display for CheckReport {
    /// The uncoloured [`CheckReport::render`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl Serialize for CheckReport {
    /// `{"status": "fail", "counts": {"pass": 7, "warn": 1, "fail": 1}, "checks": [...]}`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Counts {
            pass: usize,
            warn: usize,
            fail: usize,
        }
        #[derive(Serialize)]
        struct Wire<'a> {
            status: CheckStatus,
            counts: Counts,
            checks: &'a [Check],
        }
        Wire {
            status: self.status(),
            counts: Counts {
                pass: self.count(CheckStatus::Pass),
                warn: self.count(CheckStatus::Warn),
                fail: self.count(CheckStatus::Fail),
            },
            checks: &self.checks,
        }
        .serialize(serializer)
    }
}

/// A value as compact JSON (strings without quotes), cut at [`MAX_VALUE_CHARS`].
fn short_value(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > MAX_VALUE_CHARS {
        let cut: String = text.chars().take(MAX_VALUE_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// What separates measured `key=value` tokens on a line.
const TOKEN_GAP: &str = "  ";

/// Wrapping at `width` columns, counting the indents and skipping colour codes: first fit at
/// spaces, and a word longer than a line gets a line of its own rather than being cut (a path or a
/// number must stay whole). Set explicitly, because textwrap's defaults change with its features.
fn wrapping<'a>(width: usize) -> Options<'a> {
    Options::new(width)
        .break_words(false)
        .word_separator(WordSeparator::AsciiSpace)
        .wrap_algorithm(WrapAlgorithm::FirstFit)
}

/// Splits a line of measured tokens at [`TOKEN_GAP`] only, so a value that holds a space stays on
/// one line.
fn measured_tokens(line: &str) -> Box<dyn Iterator<Item = Word<'_>> + '_> {
    Box::new(line.split_inclusive(TOKEN_GAP).map(Word::from))
}

/// Appends each line and a newline.
fn push_lines<S: AsRef<str>>(out: &mut String, lines: impl IntoIterator<Item = S>) {
    for line in lines {
        out.push_str(line.as_ref());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CheckReport {
        CheckReport::new(vec![
            Check::pass("finite_features", "No NaN or infinite value among 7,840 feature values.").with("nan", 0).with("inf", 0),
            Check::warn(
                "class_balance",
                "Train is imbalanced 99:1 (a 990, b 10): always answering \"a\" scores 99.0% accuracy, so accuracy says little about this model.",
            )
            .with("imbalance_ratio", serde_json::json!({"train": 99.0, "val": 99.0, "test": 99.0}))
            .with("classes", 2)
            .with_advice("Watch val.macro_f1 rather than val.acc, and weight the loss by inverse class frequency or oversample the rare classes."),
            Check::fail("leakage", "12 test rows are exact copies of train rows.").with("test_in_train", 12),
        ])
    }

    #[test]
    fn status_is_the_worst() {
        assert_eq!(CheckReport::default().status(), CheckStatus::Pass);
        let mut report = CheckReport::new(vec![Check::pass("a", "ok")]);
        assert_eq!(report.status(), CheckStatus::Pass);
        report.push(Check::warn("b", "hm"));
        assert_eq!(report.status(), CheckStatus::Warn);
        assert_eq!(sample().status(), CheckStatus::Fail);
        assert_eq!((sample().count(CheckStatus::Pass), sample().count(CheckStatus::Fail)), (1, 1));
        assert!(CheckStatus::Pass < CheckStatus::Warn && CheckStatus::Warn < CheckStatus::Fail);
    }

    #[test]
    fn json_shape() -> Result<(), serde_json::Error> {
        let json = serde_json::to_value(sample())?;
        assert_eq!(json["status"], "fail");
        assert_eq!(json["counts"], serde_json::json!({"pass": 1, "warn": 1, "fail": 1}));
        let checks = json["checks"].as_array().map(Vec::len);
        assert_eq!(checks, Some(3));
        let first = &json["checks"][0];
        for key in ["name", "status", "message", "advice", "measured"] {
            assert!(first.get(key).is_some(), "missing {key} in {first}");
        }
        assert_eq!(first["status"], "pass");
        assert_eq!(first["advice"], Value::Null);
        assert!(first["measured"].is_object());
        assert_eq!(json["checks"][1]["status"], "warn");
        assert_eq!(json["checks"][1]["measured"]["imbalance_ratio"]["train"], 99.0);
        insta::assert_snapshot!("report.json", serde_json::to_string_pretty(&sample())?);
        // A check reads back as it was written.
        let back: Check = serde_json::from_value(json["checks"][1].clone())?;
        assert_eq!(back, sample().checks[1]);
        Ok(())
    }

    #[test]
    fn renders_aligned_verdicts() {
        let text = sample().render(false);
        insta::assert_snapshot!("report.txt", text);
        assert!(!text.contains("nan=0"), "passing checks keep to their message:\n{text}");
        let detailed = sample().render_detailed(false);
        insta::assert_snapshot!("report_detailed.txt", detailed);
        assert!(detailed.contains("inf=0  nan=0"), "{detailed}");
        assert!(text.lines().all(|l| l.chars().count() <= RENDER_WIDTH), "{text}");
        let verdicts: Vec<&str> = text.lines().filter(|l| l.starts_with(['P', 'W', 'F'])).collect();
        assert_eq!(verdicts.len(), 3);
        // Names are padded so that every message starts in the same column.
        let column = 4 + 2 + "finite_features".len() + 2;
        assert!(verdicts[0][column..].starts_with("No NaN"), "{text}");
        assert!(verdicts[1][column..].starts_with("Train is"), "{text}");
        assert!(verdicts[2][column..].starts_with("12 test"), "{text}");
        assert!(text.ends_with("3 checks: 1 pass, 1 warn, 1 fail. Verdict: FAIL\n"));
        assert_eq!(format!("{}", sample()), text);
    }

    #[test]
    fn colour_only_when_asked() {
        assert!(!sample().render(false).contains('\x1b'));
        let coloured = sample().render(true);
        assert!(coloured.contains("\x1b[31mFAIL\x1b[0m"));
        assert!(coloured.contains("\x1b[32mPASS\x1b[0m"));
        // Colour codes take no columns: without them the text wraps exactly as uncoloured.
        let stripped = coloured.split('\x1b').enumerate().fold(String::new(), |mut out, (i, part)| {
            out.push_str(if i == 0 { part } else { part.split_once('m').map_or(part, |(_, rest)| rest) });
            out
        });
        assert_eq!(stripped, sample().render(false));
    }

    #[test]
    fn long_values_are_cut_in_the_terminal_only() -> Result<(), serde_json::Error> {
        let counts: Vec<usize> = (0..100).collect();
        let report = CheckReport::new(vec![Check::pass("many", "ok").with("counts", counts.clone())]);
        let text = report.render_detailed(false);
        assert!(text.contains('…'));
        assert_eq!(serde_json::to_value(&report)?["checks"][0]["measured"]["counts"], serde_json::json!(counts));
        Ok(())
    }

    proptest::proptest! {
        /// The report's status is the worst of its checks, in the JSON too.
        #[test]
        fn status_is_the_maximum(statuses in proptest::collection::vec(0u8..3, 0..12)) {
            let status = |s: u8| [CheckStatus::Pass, CheckStatus::Warn, CheckStatus::Fail][s as usize];
            let report = CheckReport::new(statuses.iter().map(|&s| Check::new("c", status(s), "m")).collect());
            let worst = statuses.iter().copied().max().map_or(CheckStatus::Pass, status);
            proptest::prop_assert_eq!(report.status(), worst);
            let json = serde_json::to_value(&report).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            proptest::prop_assert_eq!(&json["status"], worst.as_str());
        }
    }

    #[test]
    fn wrapping_keeps_words() {
        assert_eq!(wrap("a bb ccc", wrapping(4)), vec!["a bb", "ccc"]);
        assert_eq!(wrap("", wrapping(10)), vec![String::new()]);
        assert_eq!(wrap("averyverylongword x", wrapping(5)), vec!["averyverylongword", "x"]);
        let tokens = wrapping(12).word_separator(WordSeparator::Custom(measured_tokens));
        assert_eq!(wrap("a=1  path=x y  b=2", &tokens), vec!["a=1", "path=x y", "b=2"]);
    }
}
