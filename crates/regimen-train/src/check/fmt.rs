//! Numbers in messages and in `measured`: `regimen-doctor`'s formatting, plus the sentence form
//! the model checks use (no thousands separators, scientific from 1e6).

use serde_json::Value;

pub(crate) use regimen_doctor::format::{num, pct, round_sig};

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
