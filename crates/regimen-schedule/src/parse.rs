//! The short CLI syntax of [`ScheduleSpec`].
//!
//! `KIND[:ARGS]`, where `ARGS` is a comma-separated list of `key=value`:
//! `constant`, `step:10:0.1` (also `step:10` or `step:step_size=10,gamma=0.1`), `cosine`,
//! `cosine:warmup=500,min_lr=1e-5`, `onecycle`, `onecycle:max_lr=0.1,pct_start=0.25`,
//! `plateau:factor=0.5,patience=3,cooldown=1`. Omitted keys take PyTorch's defaults. Parsing checks
//! only the syntax and the number formats; ranges are checked by [`Scheduler::new`], which also
//! knows the base learning rate and the run length.
//!
//! [`Scheduler::new`]: crate::Scheduler::new

use std::str::FromStr;

use crate::spec::defaults;
use crate::{ScheduleError, ScheduleSpec};

const KINDS: &str = "constant, step, cosine, onecycle, plateau";

impl FromStr for ScheduleSpec {
    type Err = ScheduleError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = |reason: String| ScheduleError::Parse { input: input.to_owned(), reason };
        let (kind, args) = match input.trim().split_once(':') {
            Some((kind, args)) => (kind, Some(args)),
            None => (input.trim(), None),
        };
        let kind = kind.to_ascii_lowercase();
        match kind.as_str() {
            "constant" => match args {
                None => Ok(ScheduleSpec::Constant),
                Some(args) => Err(error(format!("constant takes no arguments, got {args:?}"))),
            },
            "step" => {
                let args = args
                    .ok_or_else(|| error("step needs its epochs between decays, e.g. step:10 or step:10:0.1".into()))?;
                if args.contains('=') {
                    let mut args = Args::parse(args, &["step_size", "gamma"]).map_err(error)?;
                    let step_size = args.take("step_size").map_err(error)?;
                    let step_size = step_size.ok_or_else(|| error("step needs step_size=EPOCHS".into()))?;
                    let gamma = args.take("gamma").map_err(error)?.unwrap_or_else(defaults::gamma);
                    return Ok(ScheduleSpec::Step { step_size, gamma });
                }
                let mut parts = args.split(':');
                let step_size = number("step_size", parts.next().unwrap_or_default()).map_err(error)?;
                let gamma = match parts.next() {
                    Some(gamma) => number("gamma", gamma).map_err(error)?,
                    None => defaults::gamma(),
                };
                if let Some(extra) = parts.next() {
                    return Err(error(format!("step takes at most EPOCHS:GAMMA, got the extra part {extra:?}")));
                }
                Ok(ScheduleSpec::Step { step_size, gamma })
            }
            "cosine" => {
                let mut args = Args::parse(args.unwrap_or_default(), &["warmup", "min_lr"]).map_err(error)?;
                Ok(ScheduleSpec::Cosine {
                    warmup_steps: args.take("warmup").map_err(error)?.unwrap_or(0),
                    min_lr: args.take("min_lr").map_err(error)?.unwrap_or(0.0),
                })
            }
            "onecycle" | "one_cycle" => {
                let keys = ["max_lr", "pct_start", "div_factor", "final_div_factor"];
                let mut args = Args::parse(args.unwrap_or_default(), &keys).map_err(error)?;
                Ok(ScheduleSpec::OneCycle {
                    max_lr: args.take("max_lr").map_err(error)?,
                    pct_start: args.take("pct_start").map_err(error)?.unwrap_or_else(defaults::pct_start),
                    div_factor: args.take("div_factor").map_err(error)?.unwrap_or_else(defaults::div_factor),
                    final_div_factor: args
                        .take("final_div_factor")
                        .map_err(error)?
                        .unwrap_or_else(defaults::final_div_factor),
                })
            }
            "plateau" => {
                let text = args.unwrap_or_default();
                if let Some(key) = ["mode", "threshold"].into_iter().find(|key| text.contains(&format!("{key}="))) {
                    return Err(error(format!(
                        "plateau takes no {key}: it follows the run's monitor, so set the direction with \
                         --monitor-mode and the smallest improvement with --min-delta"
                    )));
                }
                let mut args = Args::parse(text, &["factor", "patience", "cooldown", "min_lr"]).map_err(error)?;
                Ok(ScheduleSpec::Plateau {
                    factor: args.take("factor").map_err(error)?.unwrap_or_else(defaults::factor),
                    patience: args.take("patience").map_err(error)?.unwrap_or_else(defaults::patience),
                    cooldown: args.take("cooldown").map_err(error)?.unwrap_or(0),
                    min_lr: args.take("min_lr").map_err(error)?.unwrap_or(0.0),
                })
            }
            _ => Err(error(format!("unknown schedule kind {kind:?}; expected one of {KINDS}"))),
        }
    }
}

/// The `key=value` arguments of one schedule, each key at most once and from a known list.
struct Args<'a> {
    values: Vec<(&'a str, &'a str)>,
}

impl<'a> Args<'a> {
    fn parse(args: &'a str, keys: &[&str]) -> Result<Self, String> {
        let mut values: Vec<(&str, &str)> = Vec::new();
        for pair in args.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got {pair:?}; keys are {}", keys.join(", ")))?;
            let (key, value) = (key.trim(), value.trim());
            if !keys.contains(&key) {
                return Err(format!("unknown key {key:?}; keys are {}", keys.join(", ")));
            }
            if values.iter().any(|&(k, _)| k == key) {
                return Err(format!("key {key:?} is given twice"));
            }
            values.push((key, value));
        }
        Ok(Self { values })
    }

    fn take_str(&mut self, key: &str) -> Option<&'a str> {
        let index = self.values.iter().position(|&(k, _)| k == key)?;
        Some(self.values.swap_remove(index).1)
    }

    fn take<T: FromStr>(&mut self, key: &str) -> Result<Option<T>, String> {
        self.take_str(key).map(|value| number(key, value)).transpose()
    }
}

fn number<T: FromStr>(key: &str, value: &str) -> Result<T, String> {
    value.trim().parse().map_err(|_| format!("{key} must be a number, got {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> ScheduleSpec {
        input.parse().unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    fn parse_error(input: &str) -> String {
        input.parse::<ScheduleSpec>().unwrap_err().to_string()
    }

    #[test]
    fn the_documented_forms() {
        assert_eq!(parse("constant"), ScheduleSpec::Constant);
        assert_eq!(parse("step:10:0.1"), ScheduleSpec::Step { step_size: 10, gamma: 0.1 });
        assert_eq!(parse("step:10"), ScheduleSpec::Step { step_size: 10, gamma: 0.1 });
        assert_eq!(parse("step:gamma=0.5,step_size=2"), ScheduleSpec::Step { step_size: 2, gamma: 0.5 });
        assert_eq!(parse("cosine"), ScheduleSpec::Cosine { warmup_steps: 0, min_lr: 0.0 });
        assert_eq!(parse("cosine:warmup=500"), ScheduleSpec::Cosine { warmup_steps: 500, min_lr: 0.0 });
        assert_eq!(parse(" Cosine:warmup=5, min_lr=1e-5 "), ScheduleSpec::Cosine { warmup_steps: 5, min_lr: 1e-5 });
        assert_eq!(
            parse("onecycle"),
            ScheduleSpec::OneCycle { max_lr: None, pct_start: 0.3, div_factor: 25.0, final_div_factor: 1e4 }
        );
        assert_eq!(
            parse("onecycle:max_lr=0.1,pct_start=0.25"),
            ScheduleSpec::OneCycle { max_lr: Some(0.1), pct_start: 0.25, div_factor: 25.0, final_div_factor: 1e4 }
        );
        assert_eq!(
            parse("plateau:factor=0.5,patience=3"),
            ScheduleSpec::Plateau { factor: 0.5, patience: 3, cooldown: 0, min_lr: 0.0 }
        );
        assert!(matches!(parse("plateau:cooldown=2"), ScheduleSpec::Plateau { cooldown: 2, .. }));
    }

    #[test]
    fn display_round_trips() {
        for input in [
            "constant",
            "step:3:0.5",
            "cosine:warmup=500,min_lr=0.00001",
            "onecycle",
            "onecycle:max_lr=0.3,final_div_factor=100",
            "plateau:factor=0.5,patience=3,cooldown=1,min_lr=0.000001",
        ] {
            let spec = parse(input);
            assert_eq!(parse(&spec.to_string()), spec, "{input} -> {spec}");
        }
        assert_eq!(parse("step:3").to_string(), "step:3:0.1");
    }

    #[test]
    fn clear_errors() {
        assert_eq!(
            parse_error("linear"),
            r#"cannot parse schedule "linear": unknown schedule kind "linear"; expected one of constant, step, cosine, onecycle, plateau"#
        );
        assert_eq!(
            parse_error("step"),
            r#"cannot parse schedule "step": step needs its epochs between decays, e.g. step:10 or step:10:0.1"#
        );
        assert_eq!(
            parse_error("step:ten"),
            r#"cannot parse schedule "step:ten": step_size must be a number, got "ten""#
        );
        assert!(parse_error("step:1:0.1:3").contains(r#"extra part "3""#));
        assert!(parse_error("step:gamma=0.5").contains("step needs step_size=EPOCHS"));
        assert!(parse_error("constant:1").contains("constant takes no arguments"));
        assert!(parse_error("cosine:warmup").contains(r#"expected key=value, got "warmup"; keys are warmup, min_lr"#));
        assert!(parse_error("cosine:warmpu=5").contains(r#"unknown key "warmpu"; keys are warmup, min_lr"#));
        assert!(parse_error("cosine:warmup=5,warmup=6").contains(r#"key "warmup" is given twice"#));
        assert!(parse_error("cosine:warmup=-5").contains(r#"warmup must be a number, got "-5""#));
        assert!(parse_error("plateau:mode=max").contains("plateau takes no mode: it follows the run's monitor"));
        assert!(parse_error("plateau:threshold=0.01").contains("--min-delta"));
        assert!(parse_error("plateau:patience=1.5").contains(r#"patience must be a number, got "1.5""#));
    }
}
