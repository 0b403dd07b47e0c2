//! Readable names for runs and checkpoints, from templates such as
//! `{model}-{dataset}-{data_id}-lr{lr}-{optimizer}-bs{batch_size}`.
//!
//! A placeholder is any key of the resolved config, `{dataset}` (the data's name) and `{data_id}`
//! (its short fingerprint); checkpoint names add `{epoch}`, `{step}`, `{metric}` (the monitored
//! key, dots removed: `valacc`) and `{value}` (its value, 4 decimals). Numbers are written short:
//! `1e-3`, `0.25`, `0`. Characters other than letters, digits, `.`, `_` and `-` become `_`, so a
//! name is always a safe folder name.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::TrainConfig;
use crate::error::TrainError;

/// The values a template may use.
#[derive(Debug, Clone)]
pub struct Fields(BTreeMap<String, String>);

impl Fields {
    /// The config's keys plus `dataset` and `data_id`.
    pub fn new(config: &TrainConfig, dataset: &str, data_id: &str) -> Fields {
        let mut fields = BTreeMap::new();
        if let Ok(Value::Object(map)) = serde_json::to_value(config) {
            for (key, value) in map {
                if let Some(text) = scalar(&value) {
                    fields.insert(key, text);
                }
            }
        }
        fields.insert("dataset".into(), dataset.to_string());
        fields.insert("data_id".into(), data_id.to_string());
        Fields(fields)
    }

    /// A copy with `extra` fields added or replaced.
    pub fn clone_with(&self, extra: &[(&str, String)]) -> Fields {
        let mut fields = self.clone();
        for (key, value) in extra {
            fields.0.insert((*key).to_string(), value.clone());
        }
        fields
    }

    /// Fills `template`; an unknown placeholder is an error that lists the known ones.
    pub fn render(&self, template: &str) -> Result<String, TrainError> {
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err(self.error(template, "a `{` is never closed"));
            };
            let key = &after[..close];
            match self.0.get(key) {
                Some(value) => out.push_str(value),
                None => return Err(self.error(template, &format!("`{{{key}}}` is not a known field"))),
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        Ok(out
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
            .collect())
    }

    fn error(&self, template: &str, problem: &str) -> TrainError {
        let known: Vec<&str> = self.0.keys().map(String::as_str).collect();
        TrainError::Config {
            origin: format!("the name template `{template}`"),
            message: format!("{problem}; known fields: {}", known.join(", ")),
        }
    }
}

/// A config value as it appears in a name; `None` for lists, tables and absent values.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => short_number(f),
            _ => n.to_string(),
        }),
        _ => None,
    }
}

/// `0.001` → `1e-3`, `0.25` → `0.25`, `3.0` → `3`, `0.0` → `0`.
pub fn short_number(value: f64) -> String {
    if value == 0.0 || (value.fract() == 0.0 && value.abs() < 1e15) {
        format!("{value:.0}")
    } else if (0.01..1000.0).contains(&value.abs()) {
        format!("{value}")
    } else {
        format!("{value:e}")
    }
}

/// The monitored key as it appears in a name: `val.acc` → `valacc`.
pub fn metric_tag(key: &str) -> String {
    key.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_templates_give_descriptive_names() {
        let config = TrainConfig { model: "cnn".into(), ..TrainConfig::default() };
        let fields = Fields::new(&config, "shapes", "3f9a");
        assert_eq!(fields.render(&config.run_name).unwrap(), "cnn-shapes-3f9a-lr1e-3-adam-bs64");
        let name = fields
            .clone_with(&[
                ("epoch", "12".into()),
                ("step", "1500".into()),
                ("metric", metric_tag("val.acc")),
                ("value", format!("{:.4}", 0.97312)),
            ])
            .render(&config.checkpoint_name)
            .unwrap();
        assert_eq!(name, "cnn-shapes-3f9a-lr1e-3-adam-wd0-ep12-step1500-valacc0.9731");
    }

    #[test]
    fn numbers_are_short_and_names_are_safe() {
        assert_eq!(short_number(3e-4), "3e-4");
        assert_eq!(short_number(0.25), "0.25");
        assert_eq!(short_number(2.0), "2");
        assert_eq!(short_number(0.0), "0");
        let config = TrainConfig { experiment: "my exp/1".into(), ..TrainConfig::default() };
        assert_eq!(Fields::new(&config, "d", "id").render("{experiment}-s{seed}").unwrap(), "my_exp_1-s42");
    }

    #[test]
    fn an_unknown_field_lists_the_known_ones() {
        let fields = Fields::new(&TrainConfig::default(), "shapes", "3f9a");
        let message = fields.render("{model}-{learning_rate}").unwrap_err().to_string();
        assert!(
            message.contains("`{learning_rate}` is not a known field") && message.contains("batch_size"),
            "{message}"
        );
        assert!(fields.render("{model").unwrap_err().to_string().contains("never closed"));
    }
}
