//! How checks write numbers, in sentences and in `measured`.
//!
//! The data checks here and the model checks of `regimen-train` end up in one report, so they share
//! these functions: a number reads the same in every line of `regimen check` and `regimen diagnose`.
//! Sentences get 4 significant digits with thousands separators ([`fmt_num`]); `measured` gets JSON
//! numbers rounded the same way, and `null` for NaN and infinities, which JSON cannot hold ([`num`]).

use regimen_data::Task;
use serde_json::Value;

/// `x` rounded to 4 significant digits as a JSON number; `null` when not finite.
pub fn num(x: f64) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    Value::from(round_sig(x))
}

/// A list of numbers as a JSON array of [`num`]s, for a curve or a value per layer.
pub fn nums(values: impl IntoIterator<Item = f64>) -> Value {
    Value::Array(values.into_iter().map(num).collect())
}

/// `x` rounded to 4 significant digits: what a person can compare at a glance, without the noise
/// digits that differ from run to run.
pub fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    // Through decimal text, which rounds exactly where scaling by a power of ten would not
    // (7.02e-125 must not come back as 7.019999999999998e-125).
    format!("{x:.3e}").parse().unwrap_or(x)
}

/// `x` rounded to `decimals` decimal places, for numbers whose precision is absolute rather than
/// relative (a probability to 4 places, where 0.00012 and 0.0001 are the same "almost never").
pub fn round_to(x: f64, decimals: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    // Through decimal text for the same reason as `round_sig`.
    format!("{x:.decimals$}").parse().unwrap_or(x)
}

/// A number for a sentence: 4 significant digits, thousands separated, scientific below 1e-3 and
/// from 1e9 on, where a row of zeros would hide the magnitude.
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    if x == 0.0 {
        return "0".into();
    }
    let a = x.abs();
    if !(1e-3..1e9).contains(&a) {
        return format!("{x:.2e}");
    }
    let r = round_sig(x);
    if r.fract() == 0.0 && a >= 1.0 {
        let s = fmt_count(r.abs() as usize);
        return if r < 0.0 { format!("-{s}") } else { s };
    }
    let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
    let text = format!("{r:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

/// An integer with thousands separators: `7,840,000`.
pub(crate) fn fmt_count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A fraction as a percentage with one decimal: `99.0%`.
pub fn pct(fraction: f64) -> String {
    format!("{:.1}%", 100.0 * fraction)
}

/// `text` with its first letter in upper case, to start a sentence with a split's name.
pub(crate) fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The name of class `k`, or its number when the task does not name it.
pub(crate) fn class_name(task: &Task, k: usize) -> String {
    match task {
        Task::Classification { classes } => classes.get(k).cloned().unwrap_or_else(|| k.to_string()),
        Task::Regression => k.to_string(),
    }
}

/// Up to `limit` items of a list, as a JSON array.
pub(crate) fn first<T: Clone + Into<Value>>(items: &[T], limit: usize) -> Value {
    Value::Array(items.iter().take(limit).cloned().map(Into::into).collect())
}

/// A list for a sentence: `0, 1, 2` or `0, 1, 2, …` when there are more than `limit`.
pub(crate) fn fmt_list<T: ToString>(items: &[T], limit: usize) -> String {
    let mut text: Vec<String> = items.iter().take(limit).map(ToString::to_string).collect();
    if items.len() > limit {
        text.push("…".into());
    }
    text.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentence_numbers() {
        assert_eq!(fmt_count(7_840_000), "7,840,000");
        assert_eq!(fmt_count(12), "12");
        assert_eq!(fmt_num(99.0), "99");
        assert_eq!(fmt_num(1234.5678), "1,235");
        assert_eq!(fmt_num(2500.0), "2,500");
        assert_eq!(fmt_num(-2_500_000.0), "-2,500,000");
        assert_eq!(fmt_num(1.6094379), "1.609");
        assert_eq!(fmt_num(0.123456), "0.1235");
        assert_eq!(fmt_num(0.05), "0.05");
        assert_eq!(fmt_num(-2.5), "-2.5");
        assert_eq!(fmt_num(0.000123), "1.23e-4");
        assert_eq!(fmt_num(1e-7), "1.00e-7");
        assert_eq!(fmt_num(3.2e9), "3.20e9");
        assert_eq!(fmt_num(f64::NAN), "NaN");
        assert_eq!(fmt_num(f64::NEG_INFINITY), "-inf");
        assert_eq!(pct(0.99), "99.0%");
        assert_eq!(pct(0.2), "20.0%");
        assert_eq!(fmt_list(&[1, 2, 3], 2), "1, 2, …");
        assert_eq!(fmt_list(&[1, 2], 2), "1, 2");
        assert_eq!(capitalize("train is"), "Train is");
        assert_eq!(capitalize(""), "");
    }

    #[test]
    fn json_numbers() {
        assert_eq!(num(0.0123456), Value::from(0.01235));
        assert_eq!(num(1.23456), Value::from(1.235));
        assert_eq!(num(f64::NAN), Value::Null);
        assert_eq!(num(f64::INFINITY), Value::Null);
        assert_eq!(num(7.019_999e-125), Value::from(7.02e-125));
        assert_eq!(nums([1.23456, f64::NAN]), serde_json::json!([1.235, null]));
        assert_eq!(first(&[1, 2, 3], 2), serde_json::json!([1, 2]));
    }

    #[test]
    fn rounding() {
        assert_eq!(round_sig(123_456.0), 123_500.0);
        assert_eq!(round_sig(0.0), 0.0);
        assert_eq!(round_to(0.786_986, 4), 0.787);
        assert_eq!(round_to(123.456_789, 4), 123.4568);
        assert_eq!(round_to(0.000_12, 4), 0.0001);
        assert_eq!(round_to(-2.5, 0), -2.0, "ties go to even, as decimal formatting does");
        assert!(round_to(f64::NAN, 4).is_nan());
        assert_eq!(round_to(f64::INFINITY, 4), f64::INFINITY);
    }
}
