//! Numbers in messages and in `measured`, formatted as `regimen-doctor`'s data checks format them,
//! so that the two halves of one report read alike.

use serde_json::Value;

/// `x` rounded to 4 significant digits.
pub(crate) fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    // Through decimal text, which rounds exactly where scaling by a power of ten would not.
    format!("{x:.3e}").parse().unwrap_or(x)
}

/// `x` rounded to 4 significant digits as a JSON number; `null` when not finite.
pub(crate) fn num(x: f64) -> Value {
    if x.is_finite() { Value::from(round_sig(x)) } else { Value::Null }
}

/// A list of numbers as a JSON array of [`num`]s.
pub(crate) fn nums(values: impl IntoIterator<Item = f64>) -> Value {
    Value::Array(values.into_iter().map(num).collect())
}

/// A number for a sentence: 4 significant digits, scientific when tiny or huge.
pub(crate) fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    if x == 0.0 {
        return "0".into();
    }
    let a = x.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{x:.2e}");
    }
    let r = round_sig(x);
    let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
    let text = format!("{r:.decimals$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text }
}

/// A fraction as a percentage with one decimal: `99.0%`.
pub(crate) fn pct(fraction: f64) -> String {
    format!("{:.1}%", 100.0 * fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(fmt_num(1.6094379), "1.609");
        assert_eq!(fmt_num(0.000123), "1.23e-4");
        assert_eq!(fmt_num(2500.0), "2500");
        assert_eq!(fmt_num(0.05), "0.05");
        assert_eq!(fmt_num(f64::NAN), "NaN");
        assert_eq!(num(f64::INFINITY), Value::Null);
        assert_eq!(num(1.23456), Value::from(1.235));
        assert_eq!(pct(0.2), "20.0%");
    }
}
