//! Parameter values, as TOML writes them.
//!
//! A sweep's parameters end up in three places: the `[params]` table of a sweep file, the command
//! line of each trial (`{lr}` substituted) and the store. One small scalar type serves all three,
//! so a value read back from any of them compares equal to the one that was suggested.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A parameter value as TOML writes it.
///
/// Untagged in serde, so that `{"lr": 0.001, "optimizer": "adam"}` reads and writes naturally.
/// `Int(1)` and `Float(1.0)` are different values: a domain keeps the type it was declared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// `true` or `false`.
    Bool(bool),
    /// A whole number (integer domains, integer choices).
    Int(i64),
    /// A floating-point number (continuous domains, float choices).
    Float(f64),
    /// Any other text (`"adam"`, `"16,32"`).
    Str(String),
}

/// One trial's parameters, by name; a `BTreeMap` so that iteration (and so every sampler and
/// serialization) is in a fixed order.
pub type Params = BTreeMap<String, Value>;

impl Value {
    /// The same value as a TOML scalar, for writing a trial's resolved config.
    pub fn to_toml(&self) -> toml::Value {
        match self {
            Value::Bool(b) => toml::Value::Boolean(*b),
            Value::Int(i) => toml::Value::Integer(*i),
            Value::Float(f) => toml::Value::Float(*f),
            Value::Str(s) => toml::Value::String(s.clone()),
        }
    }

    /// The value of a TOML scalar; `None` for arrays, tables and datetimes, which are not
    /// parameter values.
    pub fn from_toml(v: &toml::Value) -> Option<Value> {
        match v {
            toml::Value::Boolean(b) => Some(Value::Bool(*b)),
            toml::Value::Integer(i) => Some(Value::Int(*i)),
            toml::Value::Float(f) => Some(Value::Float(*f)),
            toml::Value::String(s) => Some(Value::Str(s.clone())),
            toml::Value::Array(_) | toml::Value::Table(_) | toml::Value::Datetime(_) => None,
        }
    }

    /// Parses a scalar typed on the command line: an integer, else a finite float, else a
    /// boolean, else the text itself.
    pub fn parse_scalar(text: &str) -> Value {
        if let Ok(i) = text.parse::<i64>() {
            Value::Int(i)
        } else if let Some(f) = text.parse::<f64>().ok().filter(|f| f.is_finite()) {
            Value::Float(f)
        } else if text == "true" {
            Value::Bool(true)
        } else if text == "false" {
            Value::Bool(false)
        } else {
            Value::Str(text.to_owned())
        }
    }

    /// The value as a float, for numeric domains (integers widen; other kinds are `None`).
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Bool(_) | Value::Str(_) => None,
        }
    }
}

/// Writes the value as it is substituted into a trial's command line (`--lr {lr}`).
///
/// Floats use the shortest text that reads back to the same `f64` and always look like floats
/// (`1.0`, `0.001`, `1e-5`), so that `parse_scalar` of the text gives the same value back.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            // Rust's `Debug` for floats is the shortest round-trip form, with `.0` on whole
            // numbers and an exponent for very small and very large magnitudes.
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_round_trips_through_parse_scalar() {
        for v in [
            Value::Float(1.0),
            Value::Float(1e-5),
            Value::Float(0.001),
            Value::Float(-2.5e300),
            Value::Float(0.1 + 0.2),
            Value::Int(-7),
            Value::Bool(true),
            Value::Str("adam".into()),
            Value::Str("16,32".into()),
        ] {
            assert_eq!(Value::parse_scalar(&v.to_string()), v, "{v}");
        }
        assert_eq!(Value::Float(1e-5).to_string(), "1e-5");
        assert_eq!(Value::Float(0.001).to_string(), "0.001");
    }

    #[test]
    fn toml_round_trip_and_non_scalars() {
        for v in [Value::Float(0.5), Value::Int(3), Value::Bool(false), Value::Str("x".into())] {
            assert_eq!(Value::from_toml(&v.to_toml()), Some(v));
        }
        assert_eq!(Value::from_toml(&toml::Value::Array(vec![])), None);
        assert_eq!(Value::from_toml(&toml::Value::Table(toml::Table::new())), None);
    }

    #[test]
    fn serde_is_untagged() {
        let p: Params = [("a".to_owned(), Value::Int(1)), ("b".to_owned(), Value::Str("x".into()))].into();
        let text = toml::to_string(&p).unwrap();
        assert_eq!(text, "a = 1\nb = \"x\"\n");
        let back: Params = toml::from_str(&text).unwrap();
        assert_eq!(back, p);
    }
}
