//! Search spaces: what each swept parameter may be, and when it exists at all.
//!
//! A space is read once, from the `[params]` table of a sweep file and the `--param` flags, and is
//! validated there, so that a sampler never meets bad bounds: every error names the parameter and
//! the text it could not accept. Parameters are kept parents-first (then by name), so that a
//! sampler walking them in order always knows whether a conditional parameter is active before it
//! reaches it.

use std::collections::{BTreeMap, BTreeSet};

use crate::value::{Params, Value};

/// The values one parameter may take.
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    /// A real number in `[low, high]`; `log` samples uniformly in `ln` space (learning rates).
    /// Written `"uniform(a, b)"` or `"loguniform(a, b)"`.
    Float {
        /// Smallest value (included).
        low: f64,
        /// Largest value (included).
        high: f64,
        /// Whether the parameter lives on a log scale.
        log: bool,
    },
    /// An integer `low + k * step` in `[low, high]`; `log` (step 1 only) samples in `ln` space.
    /// Written `"int(a, b)"`, `"int(a, b, step=s)"` or `"logint(a, b)"`.
    Int {
        /// Smallest value (included).
        low: i64,
        /// Largest value (included; `high - low` is a multiple of `step`).
        high: i64,
        /// Distance between neighbouring values (positive).
        step: i64,
        /// Whether the parameter lives on a log scale.
        log: bool,
    },
    /// One of a list of values (a TOML array), with no order or distance between them.
    Categorical(Vec<Value>),
    /// Always this value: part of every trial's parameters, never searched.
    Fixed(Value),
}

/// When a conditional parameter exists: only while `parent` has one of `values`
/// (`momentum` only for `optimizer = "sgd"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The parameter this one depends on.
    pub parent: String,
    /// The parent's values for which this parameter is active.
    pub values: Vec<Value>,
}

/// One swept parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// The name, as substituted into command lines (`{lr}`) and stored with each trial.
    pub name: String,
    /// The values it may take.
    pub domain: Domain,
    /// When it exists; `None` for always.
    pub condition: Option<Condition>,
}

/// A validated set of parameters, ordered parents before children and otherwise by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchSpace {
    params: Vec<Param>,
}

/// Why a search space was rejected. Every message names the parameter (or the `--param` spec)
/// and the value it could not accept, and says what would be accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpaceError {
    /// The text is not any of the accepted forms.
    #[error("parameter `{key}`: cannot read `{value}`: expected {expected}")]
    Syntax {
        /// The parameter.
        key: String,
        /// The text received.
        value: String,
        /// The accepted forms.
        expected: String,
    },
    /// The bounds or step of a numeric domain are unusable.
    #[error("parameter `{key}` = `{value}`: {problem}")]
    Bounds {
        /// The parameter.
        key: String,
        /// The domain as written.
        value: String,
        /// What is wrong and what to write instead.
        problem: String,
    },
    /// A list of choices (or a fixed value) is unusable.
    #[error("parameter `{key}` = `{value}`: {problem}")]
    Choices {
        /// The parameter.
        key: String,
        /// The list or value as written.
        value: String,
        /// What is wrong and what to write instead.
        problem: String,
    },
    /// A conditional parameter's table has a key other than `sample` and `when`.
    #[error(
        "parameter `{key}`: unknown field `{field}`; a conditional parameter is a table with `sample` \
         (its distribution) and `when` (e.g. `{{ optimizer = \"sgd\" }}`) only"
    )]
    UnknownField {
        /// The parameter.
        key: String,
        /// The unexpected field.
        field: String,
    },
    /// A condition names a parameter that the space does not define.
    #[error(
        "parameter `{key}` is conditional on `{parent}`, which is not a parameter; define `{parent}` \
         in [params] or remove the `when`"
    )]
    UndefinedParent {
        /// The conditional parameter.
        key: String,
        /// The missing parent.
        parent: String,
    },
    /// Conditions that depend on each other in a loop.
    #[error("parameter `{key}`: its conditions form a cycle ({cycle}); remove one of these `when`s")]
    Cycle {
        /// A parameter on the cycle.
        key: String,
        /// The cycle, as `a -> b -> a`.
        cycle: String,
    },
    /// A condition value that the parent can never take, so the parameter would never be active.
    #[error(
        "parameter `{key}` is active when `{parent}` = `{value}`, a value `{parent}` can never take; \
         use one of the values of `{parent}`'s domain"
    )]
    ImpossibleCondition {
        /// The conditional parameter.
        key: String,
        /// Its parent.
        parent: String,
        /// The impossible value.
        value: String,
    },
    /// Two parameters with the same name (only possible through [`SearchSpace::new`]).
    #[error("parameter `{key}` is defined twice; keep one definition")]
    Duplicate {
        /// The name.
        key: String,
    },
    /// A `--param` flag that could not be read.
    #[error(
        "--param `{spec}`: {problem} (forms: name=uniform:A:B, loguniform:A:B, int:A:B[:STEP], \
         logint:A:B, choice:X|Y|Z, or a fixed value)"
    )]
    Inline {
        /// The flag's text.
        spec: String,
        /// What is wrong.
        problem: String,
    },
}

const DISTRIBUTIONS: [&str; 4] = ["uniform", "loguniform", "int", "logint"];
const CALL_FORMS: &str =
    "\"uniform(a, b)\", \"loguniform(a, b)\", \"int(a, b)\", \"int(a, b, step=s)\" or \"logint(a, b)\"";

impl Domain {
    /// Whether `value` is one this domain can take (type, bounds, step). A float domain also
    /// takes an integer inside its bounds (TOML's `1` for `1.0`); other types must match.
    pub fn contains(&self, value: &Value) -> bool {
        match self {
            Domain::Float { low, high, .. } => value.as_f64().is_some_and(|x| x.is_finite() && *low <= x && x <= *high),
            Domain::Int { low, high, step, .. } => match value {
                Value::Int(i) => low <= i && i <= high && (i128::from(*i) - i128::from(*low)) % i128::from(*step) == 0,
                _ => false,
            },
            Domain::Categorical(choices) => choices.contains(value),
            Domain::Fixed(v) => v == value,
        }
    }

    /// The domain in the `--param` syntax (after `name=`); `add_inline` reads it back.
    pub fn to_inline(&self) -> String {
        match self {
            Domain::Float { low, high, log } => {
                format!(
                    "{}:{}:{}",
                    if *log { "loguniform" } else { "uniform" },
                    Value::Float(*low),
                    Value::Float(*high)
                )
            }
            Domain::Int { low, high, log: true, .. } => format!("logint:{low}:{high}"),
            Domain::Int { low, high, step: 1, .. } => format!("int:{low}:{high}"),
            Domain::Int { low, high, step, .. } => format!("int:{low}:{high}:{step}"),
            Domain::Categorical(choices) => {
                let items: Vec<String> = choices.iter().map(ToString::to_string).collect();
                format!("choice:{}", items.join("|"))
            }
            Domain::Fixed(v) => v.to_string(),
        }
    }

    /// Number of distinct values of an integer domain (at least 1).
    pub(crate) fn int_count(low: i64, high: i64, step: i64) -> u128 {
        ((i128::from(high) - i128::from(low)) / i128::from(step) + 1) as u128
    }

    /// Maps `u` in `[0, 1)` to a value, uniformly on the domain's own scale: linear or log for
    /// floats, equal mass per integer on the step grid (per `[k - 0.5, k + 0.5]` in log space
    /// for log integers), `floor(u * k)` for choices. Random, Sobol and TPE's start share it.
    pub(crate) fn at_unit(&self, u: f64) -> Value {
        let u = u.clamp(0.0, 1.0);
        match self {
            Domain::Float { low, high, log: false } => Value::Float((low + u * (high - low)).clamp(*low, *high)),
            Domain::Float { low, high, log: true } => {
                let (a, b) = (libm::log(*low), libm::log(*high));
                Value::Float(libm::exp(a + u * (b - a)).clamp(*low, *high))
            }
            Domain::Int { low, high, log: true, .. } => {
                let (a, b) = (libm::log(*low as f64 - 0.5), libm::log(*high as f64 + 0.5));
                let x = libm::round(libm::exp(a + u * (b - a)));
                Value::Int((x as i64).clamp(*low, *high))
            }
            Domain::Int { low, high, step, log: false } => {
                let n = Self::int_count(*low, *high, *step);
                let k = ((u * n as f64) as u128).min(n - 1);
                Value::Int((i128::from(*low) + k as i128 * i128::from(*step)) as i64)
            }
            Domain::Categorical(choices) => {
                let k = ((u * choices.len() as f64) as usize).min(choices.len() - 1);
                choices[k].clone()
            }
            Domain::Fixed(v) => v.clone(),
        }
    }

    /// The values a grid search tries: `points` values on the domain's own scale (endpoints
    /// included) for floats, every value of an integer domain with at most `points` values
    /// (else `points` values on its step grid), every choice, the fixed value.
    pub(crate) fn grid_points(&self, points: usize) -> Vec<Value> {
        let points = points.max(1);
        let t = |i: usize| if points == 1 { 0.5 } else { i as f64 / (points - 1) as f64 };
        match self {
            Domain::Float { low, high, log } => (0..points)
                .map(|i| match i {
                    0 if points > 1 => Value::Float(*low),
                    i if i + 1 == points && points > 1 => Value::Float(*high),
                    i if *log => {
                        let (a, b) = (libm::log(*low), libm::log(*high));
                        Value::Float(libm::exp(a + t(i) * (b - a)).clamp(*low, *high))
                    }
                    i => Value::Float((low + t(i) * (high - low)).clamp(*low, *high)),
                })
                .collect(),
            Domain::Int { low, high, step, log } => {
                let n = Self::int_count(*low, *high, *step);
                let at = |k: u128| Value::Int((i128::from(*low) + k as i128 * i128::from(*step)) as i64);
                if n <= points as u128 {
                    return (0..n).map(at).collect();
                }
                let mut out: Vec<Value> = (0..points)
                    .map(|i| {
                        if *log {
                            let (a, b) = (libm::log(*low as f64), libm::log(*high as f64));
                            let x = libm::round(libm::exp(a + t(i) * (b - a))) as i64;
                            Value::Int(x.clamp(*low, *high))
                        } else {
                            at((libm::round(t(i) * (n - 1) as f64) as u128).min(n - 1))
                        }
                    })
                    .collect();
                out.dedup();
                out
            }
            Domain::Categorical(choices) => choices.clone(),
            Domain::Fixed(v) => vec![v.clone()],
        }
    }

    /// Checks bounds, steps and choices, naming `key` in the error.
    fn validate(&self, key: &str) -> Result<(), SpaceError> {
        let bounds = |problem: &str| {
            Err(SpaceError::Bounds { key: key.to_owned(), value: self.describe(), problem: problem.to_owned() })
        };
        let choices =
            |problem: String| Err(SpaceError::Choices { key: key.to_owned(), value: self.describe(), problem });
        match self {
            Domain::Float { low, high, log } => {
                if !low.is_finite() || !high.is_finite() {
                    return bounds("bounds must be finite numbers");
                }
                if low >= high {
                    return bounds("the lower bound must be below the upper bound (for a single value, write it bare)");
                }
                if *log && *low <= 0.0 {
                    return bounds("a log scale needs a positive lower bound; use uniform(...) or raise it above 0");
                }
            }
            Domain::Int { low, high, step, log } => {
                if low >= high {
                    return bounds("the lower bound must be below the upper bound (for a single value, write it bare)");
                }
                if *step <= 0 {
                    return bounds("the step must be a positive integer");
                }
                if (i128::from(*high) - i128::from(*low)) % i128::from(*step) != 0 {
                    return bounds("the step must divide high - low exactly; adjust the bounds or the step");
                }
                if *log && *low <= 0 {
                    return bounds("a log scale needs a lower bound of at least 1; use int(...) or raise it");
                }
                if *log && *step != 1 {
                    return bounds("a log-scale integer has step 1; drop the step or use int(...)");
                }
            }
            Domain::Categorical(items) => {
                if items.is_empty() {
                    return choices("the list of choices is empty; list at least one value".to_owned());
                }
                if let Some(v) = items.iter().find(|v| matches!(v, Value::Float(f) if f.is_nan())) {
                    return choices(format!("choice `{v}` is not a number a trial can be compared with; remove it"));
                }
                for (i, v) in items.iter().enumerate() {
                    if items[..i].contains(v) {
                        return choices(format!("choice `{v}` is listed twice; list each value once"));
                    }
                }
            }
            Domain::Fixed(v) => {
                if matches!(v, Value::Float(f) if f.is_nan()) {
                    return choices("a fixed value cannot be NaN".to_owned());
                }
            }
        }
        Ok(())
    }

    /// The domain as TOML would write it, for error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Domain::Float { low, high, log } => {
                format!(
                    "{}({}, {})",
                    if *log { "loguniform" } else { "uniform" },
                    Value::Float(*low),
                    Value::Float(*high)
                )
            }
            Domain::Int { low, high, log: true, .. } => format!("logint({low}, {high})"),
            Domain::Int { low, high, step: 1, .. } => format!("int({low}, {high})"),
            Domain::Int { low, high, step, .. } => format!("int({low}, {high}, step={step})"),
            Domain::Categorical(items) => {
                let items: Vec<String> = items.iter().map(|v| v.to_toml().to_string()).collect();
                format!("[{}]", items.join(", "))
            }
            Domain::Fixed(v) => v.to_toml().to_string(),
        }
    }
}

impl SearchSpace {
    /// Builds a space from parameters, validating every domain and condition (parents defined,
    /// no cycles, condition values the parent can take); orders them parents first, then by name.
    pub fn new(mut params: Vec<Param>) -> Result<SearchSpace, SpaceError> {
        for p in &params {
            p.domain.validate(&p.name)?;
        }
        let mut names = BTreeSet::new();
        if let Some(p) = params.iter().find(|p| !names.insert(p.name.as_str())) {
            return Err(SpaceError::Duplicate { key: p.name.clone() });
        }
        // A float parent takes `1` in a condition as `1.0`, as its domain does.
        let float_parents: BTreeSet<String> =
            params.iter().filter(|p| matches!(p.domain, Domain::Float { .. })).map(|p| p.name.clone()).collect();
        for cond in params.iter_mut().filter_map(|p| p.condition.as_mut()) {
            if float_parents.contains(&cond.parent) {
                for v in &mut cond.values {
                    if let Value::Int(i) = *v {
                        *v = Value::Float(i as f64);
                    }
                }
            }
        }
        let by_name: BTreeMap<&str, &Param> = params.iter().map(|p| (p.name.as_str(), p)).collect();
        for p in &params {
            let Some(cond) = &p.condition else { continue };
            let Some(parent) = by_name.get(cond.parent.as_str()) else {
                return Err(SpaceError::UndefinedParent { key: p.name.clone(), parent: cond.parent.clone() });
            };
            if let Some(v) = cond.values.iter().find(|v| !parent.domain.contains(v)) {
                return Err(SpaceError::ImpossibleCondition {
                    key: p.name.clone(),
                    parent: cond.parent.clone(),
                    value: v.to_string(),
                });
            }
        }
        // Each parameter has at most one parent, so a walk up from any parameter that takes more
        // steps than there are parameters has found a cycle.
        for p in &params {
            let mut path = vec![p.name.as_str()];
            let mut at = p;
            while let Some(cond) = &at.condition {
                at = by_name[cond.parent.as_str()];
                if let Some(start) = path.iter().position(|n| *n == at.name) {
                    let mut cycle: Vec<&str> = path[start..].to_vec();
                    cycle.push(&at.name);
                    return Err(SpaceError::Cycle { key: at.name.clone(), cycle: cycle.join(" -> ") });
                }
                path.push(&at.name);
            }
        }
        // Kahn's algorithm, taking the smallest name among the ready ones.
        let mut ready: BTreeSet<&str> =
            params.iter().filter(|p| p.condition.is_none()).map(|p| p.name.as_str()).collect();
        let mut ordered = Vec::with_capacity(params.len());
        while let Some(name) = ready.pop_first() {
            ordered.push(by_name[name].clone());
            for child in params.iter().filter(|c| c.condition.as_ref().is_some_and(|c| c.parent == name)) {
                ready.insert(&child.name);
            }
        }
        Ok(SearchSpace { params: ordered })
    }

    /// Reads the `[params]` table of a sweep file (see the crate docs for the forms).
    pub fn from_toml(table: &toml::Table) -> Result<SearchSpace, SpaceError> {
        let params = table.iter().map(|(key, value)| parse_entry(key, value)).collect::<Result<Vec<_>, _>>()?;
        SearchSpace::new(params)
    }

    /// Adds one `--param name=spec` flag, replacing a parameter of the same name (whose condition,
    /// if any, is kept). On error the space is unchanged.
    pub fn add_inline(&mut self, spec: &str) -> Result<(), SpaceError> {
        let err = |problem: String| SpaceError::Inline { spec: spec.to_owned(), problem };
        let (name, rest) = spec.split_once('=').ok_or_else(|| err("expected name=value".to_owned()))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(err("the parameter name before `=` is empty".to_owned()));
        }
        let domain = parse_inline_domain(rest.trim()).map_err(err)?;
        let mut params = self.params.clone();
        match params.iter_mut().find(|p| p.name == name) {
            Some(p) => p.domain = domain,
            None => params.push(Param { name: name.to_owned(), domain, condition: None }),
        }
        *self = SearchSpace::new(params).map_err(|e| err(e.to_string()))?;
        Ok(())
    }

    /// The parameters, parents before children, otherwise by name.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Whether `param` exists given the other values in `params`: unconditional, or its parent
    /// is itself active and has one of the condition's values.
    pub fn is_active(&self, param: &Param, params: &Params) -> bool {
        let mut at = param;
        while let Some(cond) = &at.condition {
            let Some(value) = params.get(&cond.parent) else { return false };
            if !cond.values.contains(value) {
                return false;
            }
            match self.get(&cond.parent) {
                Some(parent) => at = parent,
                None => return false,
            }
        }
        true
    }

    /// Whether `params` is a point of this space: every active parameter present and inside its
    /// domain (type, bounds, step), every inactive one absent, and no unknown names.
    pub fn contains(&self, params: &Params) -> bool {
        params.keys().all(|k| self.get(k).is_some())
            && self.params.iter().all(|p| match (self.is_active(p, params), params.get(&p.name)) {
                (true, Some(v)) => p.domain.contains(v),
                (false, None) => true,
                _ => false,
            })
    }

    /// How many distinct points a grid search over this space has, with `points_per_continuous`
    /// values per float parameter (and per integer parameter with more values than that);
    /// conditional parameters multiply only the branches where they are active. Saturates at
    /// `u64::MAX`.
    pub fn grid_size(&self, points_per_continuous: usize) -> u64 {
        crate::grid::Grid::new(self, points_per_continuous).size()
    }
}

/// Reads one entry of `[params]`.
fn parse_entry(key: &str, value: &toml::Value) -> Result<Param, SpaceError> {
    match value {
        toml::Value::Table(table) => {
            if let Some(field) = table.keys().find(|k| *k != "sample" && *k != "when") {
                return Err(SpaceError::UnknownField { key: key.to_owned(), field: field.clone() });
            }
            let sample = table.get("sample").ok_or_else(|| SpaceError::Syntax {
                key: key.to_owned(),
                value: value.to_string(),
                expected: "a table with `sample = \"...\"` (and optionally `when = { parent = value }`)".to_owned(),
            })?;
            if sample.is_table() {
                return Err(SpaceError::Syntax {
                    key: key.to_owned(),
                    value: sample.to_string(),
                    expected: format!("`sample` as a distribution ({CALL_FORMS}), a list or a value"),
                });
            }
            let domain = parse_domain(key, sample)?;
            let condition = table.get("when").map(|when| parse_when(key, when)).transpose()?;
            Ok(Param { name: key.to_owned(), domain, condition })
        }
        _ => Ok(Param { name: key.to_owned(), domain: parse_domain(key, value)?, condition: None }),
    }
}

/// Reads a `when = { parent = value }` or `when = { parent = [values] }`.
fn parse_when(key: &str, when: &toml::Value) -> Result<Condition, SpaceError> {
    let syntax = || SpaceError::Syntax {
        key: key.to_owned(),
        value: when.to_string(),
        expected: "`when = { parent = value }` or `when = { parent = [value, ...] }` with one parent".to_owned(),
    };
    let table = when.as_table().filter(|t| t.len() == 1).ok_or_else(syntax)?;
    let (parent, allowed) = table.iter().next().ok_or_else(syntax)?;
    let values = match allowed {
        toml::Value::Array(items) => items.iter().map(Value::from_toml).collect::<Option<Vec<_>>>(),
        scalar => Value::from_toml(scalar).map(|v| vec![v]),
    }
    .filter(|v| !v.is_empty())
    .ok_or_else(syntax)?;
    Ok(Condition { parent: parent.clone(), values })
}

/// Reads a non-table parameter form: a distribution call, a list, or a fixed scalar.
fn parse_domain(key: &str, value: &toml::Value) -> Result<Domain, SpaceError> {
    let domain = match value {
        toml::Value::String(s) if looks_like_call(s) => parse_call(key, s)?,
        toml::Value::Array(items) => Domain::Categorical(
            items
                .iter()
                .map(|item| {
                    Value::from_toml(item).ok_or_else(|| SpaceError::Choices {
                        key: key.to_owned(),
                        value: value.to_string(),
                        problem: format!("choice `{item}` is not a single value; list booleans, numbers or strings"),
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        other => Domain::Fixed(Value::from_toml(other).ok_or_else(|| SpaceError::Syntax {
            key: key.to_owned(),
            value: other.to_string(),
            expected: format!("a distribution ({CALL_FORMS}), a list of choices, or a single value"),
        })?),
    };
    domain.validate(key)?;
    Ok(domain)
}

/// Whether `s` starts like `uniform(`, `loguniform (`, `int(` or `logint(`.
fn looks_like_call(s: &str) -> bool {
    let s = s.trim_start();
    let ident_len = s.find(|c: char| !c.is_ascii_alphanumeric() && c != '_').unwrap_or(s.len());
    DISTRIBUTIONS.contains(&&s[..ident_len]) && s[ident_len..].trim_start().starts_with('(')
}

/// Reads `name(a, b)` or `int(a, b, step=s)`.
fn parse_call(key: &str, text: &str) -> Result<Domain, SpaceError> {
    let syntax = |expected: &str| SpaceError::Syntax {
        key: key.to_owned(),
        value: text.to_owned(),
        expected: expected.to_owned(),
    };
    let t = text.trim();
    let open = t.find('(').ok_or_else(|| syntax(CALL_FORMS))?;
    let name = t[..open].trim();
    let inner = t[open + 1..].strip_suffix(')').ok_or_else(|| syntax("a closing `)` at the end"))?;
    let mut positional = Vec::new();
    let mut step = None;
    for arg in inner.split(',').map(str::trim) {
        match arg.split_once('=') {
            Some((k, v)) if k.trim() == "step" && name == "int" && step.is_none() => step = Some(v.trim()),
            Some(_) => return Err(syntax("no keyword arguments other than `step=` (in `int(a, b, step=s)`)")),
            None => positional.push(arg),
        }
    }
    if positional.len() != 2 {
        return Err(syntax(&format!("two bounds, as in {name}(low, high)")));
    }
    let float = |s: &str| s.parse::<f64>().map_err(|_| syntax(&format!("`{s}` to be a number")));
    let int = |s: &str| s.parse::<i64>().map_err(|_| syntax(&format!("`{s}` to be an integer")));
    Ok(match name {
        "uniform" | "loguniform" => {
            Domain::Float { low: float(positional[0])?, high: float(positional[1])?, log: name == "loguniform" }
        }
        "int" | "logint" => Domain::Int {
            low: int(positional[0])?,
            high: int(positional[1])?,
            step: step.map(int).transpose()?.unwrap_or(1),
            log: name == "logint",
        },
        _ => return Err(syntax(CALL_FORMS)),
    })
}

/// Reads the part of a `--param` after `name=`.
fn parse_inline_domain(rest: &str) -> Result<Domain, String> {
    let Some((kind, args)) = rest.split_once(':') else { return Ok(Domain::Fixed(Value::parse_scalar(rest))) };
    let float = |s: &str| s.trim().parse::<f64>().map_err(|_| format!("`{s}` is not a number"));
    let int = |s: &str| s.trim().parse::<i64>().map_err(|_| format!("`{s}` is not an integer"));
    let parts: Vec<&str> = args.split(':').collect();
    let domain = match (kind.trim(), parts.as_slice()) {
        ("uniform", [a, b]) => Domain::Float { low: float(a)?, high: float(b)?, log: false },
        ("loguniform", [a, b]) => Domain::Float { low: float(a)?, high: float(b)?, log: true },
        ("int", [a, b]) => Domain::Int { low: int(a)?, high: int(b)?, step: 1, log: false },
        ("int", [a, b, s]) => Domain::Int { low: int(a)?, high: int(b)?, step: int(s)?, log: false },
        ("logint", [a, b]) => Domain::Int { low: int(a)?, high: int(b)?, step: 1, log: true },
        ("choice", _) if args.trim().is_empty() => Domain::Categorical(Vec::new()),
        ("choice", _) => Domain::Categorical(args.split('|').map(|s| Value::parse_scalar(s.trim())).collect()),
        ("uniform" | "loguniform" | "int" | "logint", _) => {
            return Err(format!("wrong number of `:`-separated arguments for `{}`", kind.trim()));
        }
        // Any other text with a colon (a path, a URL) is a fixed value.
        _ => Domain::Fixed(Value::parse_scalar(rest)),
    };
    domain.validate("").map_err(|e| match e {
        SpaceError::Bounds { problem, .. } | SpaceError::Choices { problem, .. } => problem,
        other => other.to_string(),
    })?;
    Ok(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(text: &str) -> Result<SearchSpace, SpaceError> {
        SearchSpace::from_toml(&toml::from_str(text).unwrap())
    }

    fn err(text: &str) -> String {
        space(text).unwrap_err().to_string()
    }

    fn params(pairs: &[(&str, Value)]) -> Params {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn every_toml_form_parses() {
        let s = space(
            r#"
            lr = "loguniform(1e-4, 1e-1)"
            dropout = "uniform(0.0, 0.5)"
            depth = "int(1, 4)"
            width = " int (16, 128, step = 16) "
            hidden = "logint(8, 256)"
            channels = ["16,32", "32,64"]
            mixed = [1, 2.5, true, "x"]
            epochs = 8
            schedule = "cosine"
            note = "interpolate(this)"
            optimizer = ["adam", "sgd"]
            momentum = { sample = "uniform(0.5, 0.99)", when = { optimizer = "sgd" } }
            nesterov = { sample = [true, false], when = { momentum = [0.9, 0.95] } }
            "#,
        )
        .unwrap();
        let d = |n: &str| s.get(n).unwrap().domain.clone();
        assert_eq!(d("lr"), Domain::Float { low: 1e-4, high: 1e-1, log: true });
        assert_eq!(d("dropout"), Domain::Float { low: 0.0, high: 0.5, log: false });
        assert_eq!(d("depth"), Domain::Int { low: 1, high: 4, step: 1, log: false });
        assert_eq!(d("width"), Domain::Int { low: 16, high: 128, step: 16, log: false });
        assert_eq!(d("hidden"), Domain::Int { low: 8, high: 256, step: 1, log: true });
        assert_eq!(d("channels"), Domain::Categorical(vec![Value::Str("16,32".into()), Value::Str("32,64".into())]));
        assert_eq!(
            d("mixed"),
            Domain::Categorical(vec![Value::Int(1), Value::Float(2.5), Value::Bool(true), Value::Str("x".into())])
        );
        assert_eq!(d("epochs"), Domain::Fixed(Value::Int(8)));
        assert_eq!(d("schedule"), Domain::Fixed(Value::Str("cosine".into())));
        assert_eq!(d("note"), Domain::Fixed(Value::Str("interpolate(this)".into())));
        let m = s.get("momentum").unwrap();
        assert_eq!(m.condition, Some(Condition { parent: "optimizer".into(), values: vec![Value::Str("sgd".into())] }));
        // Parents before children, otherwise by name.
        let names: Vec<&str> = s.params().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "channels",
                "depth",
                "dropout",
                "epochs",
                "hidden",
                "lr",
                "mixed",
                "note",
                "optimizer",
                "momentum",
                "nesterov",
                "schedule",
                "width"
            ]
        );
    }

    #[test]
    fn every_error_names_the_key_and_value() {
        let cases: &[(&str, &[&str])] = &[
            (r#"lr = "uniform(1, 0.5)""#, &["lr", "uniform(1.0, 0.5)", "lower bound"]),
            (r#"lr = "uniform(1, 1)""#, &["lr", "lower bound"]),
            (r#"lr = "loguniform(0, 1)""#, &["lr", "positive"]),
            (r#"lr = "loguniform(-1, 1)""#, &["lr", "positive"]),
            (r#"lr = "uniform(nan, 1)""#, &["lr", "finite"]),
            (r#"lr = "uniform(0, inf)""#, &["lr", "finite"]),
            (r#"lr = "uniform(0, x)""#, &["lr", "`x`", "number"]),
            (r#"lr = "uniform(0)""#, &["lr", "two bounds"]),
            (r#"lr = "uniform(0, 1""#, &["lr", "closing"]),
            (r#"lr = "uniform(0, 1, step=1)""#, &["lr", "keyword"]),
            (r#"d = "int(1.5, 4)""#, &["`d`", "`1.5`", "integer"]),
            (r#"d = "int(1, 4, step=0)""#, &["`d`", "positive"]),
            (r#"d = "int(1, 4, step=-1)""#, &["`d`", "positive"]),
            (r#"d = "int(0, 10, step=3)""#, &["`d`", "int(0, 10, step=3)", "divide"]),
            (r#"d = "logint(0, 10)""#, &["`d`", "at least 1"]),
            (r#"d = "int(4, 4)""#, &["`d`", "lower bound"]),
            ("c = []", &["`c`", "empty"]),
            ("c = [1, 2, 1]", &["`c`", "`1`", "twice"]),
            ("c = [[1], 2]", &["`c`", "[1]", "single value"]),
            ("c = nan", &["`c`", "NaN"]),
            ("c = 1979-05-27", &["`c`", "1979-05-27"]),
            (r#"m = { sample = "uniform(0, 1)", when = { opt = "sgd" } }"#, &["`m`", "`opt`", "not a parameter"]),
            (
                r#"opt = ["adam"]
                m = { sample = "uniform(0, 1)", when = { opt = "sgd" } }"#,
                &["`m`", "`opt`", "`sgd`", "never take"],
            ),
            (r#"m = { sample = "uniform(0, 1)", whenn = { opt = "sgd" } }"#, &["`m`", "`whenn`", "unknown field"]),
            (r#"m = { when = { opt = "sgd" } }"#, &["`m`", "sample"]),
            (r#"m = { sample = { x = 1 } }"#, &["`m`", "sample"]),
            (r#"m = { sample = 1, when = { a = 1, b = 2 } }"#, &["`m`", "one parent"]),
            (r#"m = { sample = 1, when = { a = [] } }"#, &["`m`", "when"]),
            (
                r#"a = { sample = [1, 2], when = { b = 1 } }
                b = { sample = [1, 2], when = { a = 1 } }"#,
                &["a -> b -> a", "cycle"],
            ),
            (r#"a = { sample = [1, 2], when = { a = 1 } }"#, &["a -> a", "cycle"]),
        ];
        for (text, needles) in cases {
            let message = err(text);
            for needle in *needles {
                assert!(message.contains(needle), "{text}\n  gave: {message}\n  lacks: {needle}");
            }
        }
    }

    #[test]
    fn duplicates_are_refused_and_float_parents_take_integer_conditions() {
        let p = |name: &str| Param { name: name.into(), domain: Domain::Fixed(Value::Int(1)), condition: None };
        let e = SearchSpace::new(vec![p("a"), p("b"), p("a")]).unwrap_err().to_string();
        assert!(e.contains("`a`") && e.contains("twice"), "{e}");
        let s = space(
            r#"x = "uniform(0, 2)"
            y = { sample = "int(1, 3)", when = { x = [1, 2] } }"#,
        )
        .unwrap();
        let y = s.get("y").unwrap();
        assert_eq!(y.condition.as_ref().unwrap().values, [Value::Float(1.0), Value::Float(2.0)]);
        assert!(s.is_active(y, &params(&[("x", Value::Float(1.0))])));
    }

    #[test]
    fn inline_forms_parse() {
        let mut s = SearchSpace::default();
        for spec in [
            "lr=loguniform:1e-5:1e-1",
            "dropout=uniform:0:0.5",
            "depth=int:1:4",
            "width=int:16:128:16",
            "hidden=logint:8:256",
            "optimizer=choice:adam|sgd",
            "channels=choice:16,32|32,64",
            "nums=choice:1|2.5|true|x",
            "epochs=8",
            "path=file:/x",
        ] {
            s.add_inline(spec).unwrap();
        }
        let d = |n: &str| s.get(n).unwrap().domain.clone();
        assert_eq!(d("lr"), Domain::Float { low: 1e-5, high: 1e-1, log: true });
        assert_eq!(d("dropout"), Domain::Float { low: 0.0, high: 0.5, log: false });
        assert_eq!(d("width"), Domain::Int { low: 16, high: 128, step: 16, log: false });
        assert_eq!(d("hidden"), Domain::Int { low: 8, high: 256, step: 1, log: true });
        assert_eq!(d("optimizer"), Domain::Categorical(vec![Value::Str("adam".into()), Value::Str("sgd".into())]));
        assert_eq!(d("channels"), Domain::Categorical(vec![Value::Str("16,32".into()), Value::Str("32,64".into())]));
        assert_eq!(
            d("nums"),
            Domain::Categorical(vec![Value::Int(1), Value::Float(2.5), Value::Bool(true), Value::Str("x".into())])
        );
        assert_eq!(d("epochs"), Domain::Fixed(Value::Int(8)));
        assert_eq!(d("path"), Domain::Fixed(Value::Str("file:/x".into())));
        // Replacing keeps the condition.
        let mut s = space(
            r#"optimizer = ["adam", "sgd"]
            momentum = { sample = "uniform(0.5, 0.99)", when = { optimizer = "sgd" } }"#,
        )
        .unwrap();
        s.add_inline("momentum=0.9").unwrap();
        let m = s.get("momentum").unwrap();
        assert_eq!(m.domain, Domain::Fixed(Value::Float(0.9)));
        assert_eq!(m.condition.as_ref().unwrap().parent, "optimizer");
        // A replacement that strands a child's condition is refused and leaves the space as it was.
        let before = s.clone();
        let e = s.add_inline("optimizer=choice:adam").unwrap_err().to_string();
        assert!(e.contains("optimizer=choice:adam") && e.contains("never take"), "{e}");
        assert_eq!(s, before);
    }

    #[test]
    fn inline_errors_name_the_spec() {
        for (spec, needle) in [
            ("lr", "name=value"),
            ("=uniform:0:1", "empty"),
            ("lr=uniform:0", "arguments"),
            ("lr=uniform:a:1", "`a`"),
            ("lr=loguniform:0:1", "positive"),
            ("d=int:1:4.5", "`4.5`"),
            ("d=int:0:10:3", "divide"),
            ("d=logint:0:8", "at least 1"),
            ("c=choice:a|a", "twice"),
            ("c=choice:", "empty"),
        ] {
            let mut s = SearchSpace::default();
            let e = s.add_inline(spec).unwrap_err().to_string();
            assert!(e.contains(&format!("`{spec}`")) && e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn inline_specs_round_trip() {
        for spec in [
            "a=loguniform:1e-5:0.1",
            "a=uniform:0.0:0.5",
            "a=int:1:4",
            "a=int:16:128:16",
            "a=logint:8:256",
            "a=choice:adam|sgd",
            "a=choice:16,32|32,64",
            "a=choice:1|2.5|true",
            "a=8",
            "a=cosine",
        ] {
            let mut s = SearchSpace::default();
            s.add_inline(spec).unwrap();
            let domain = &s.get("a").unwrap().domain;
            let again = format!("a={}", domain.to_inline());
            let mut t = SearchSpace::default();
            t.add_inline(&again).unwrap();
            assert_eq!(&t.get("a").unwrap().domain, domain, "{spec} -> {again}");
        }
    }

    #[test]
    fn contains_respects_bounds_steps_types_and_conditions() {
        let s = space(
            r#"
            lr = "loguniform(1e-4, 1e-1)"
            width = "int(16, 128, step=16)"
            optimizer = ["adam", "sgd"]
            momentum = { sample = "uniform(0.5, 0.99)", when = { optimizer = "sgd" } }
            "#,
        )
        .unwrap();
        let ok =
            params(&[("lr", Value::Float(1e-3)), ("width", Value::Int(32)), ("optimizer", Value::Str("adam".into()))]);
        assert!(s.contains(&ok));
        let mut sgd = ok.clone();
        sgd.insert("optimizer".into(), Value::Str("sgd".into()));
        assert!(!s.contains(&sgd), "active momentum missing");
        sgd.insert("momentum".into(), Value::Float(0.9));
        assert!(s.contains(&sgd));
        let mut extra = ok.clone();
        extra.insert("momentum".into(), Value::Float(0.9));
        assert!(!s.contains(&extra), "inactive momentum present");
        for (k, v) in [
            ("lr", Value::Float(1.0)),
            ("lr", Value::Str("x".into())),
            ("width", Value::Int(40)),
            ("width", Value::Int(144)),
            ("width", Value::Float(32.0)),
            ("optimizer", Value::Str("rmsprop".into())),
            ("unknown", Value::Int(1)),
        ] {
            let mut p = ok.clone();
            p.insert(k.into(), v.clone());
            assert!(!s.contains(&p), "{k} = {v}");
        }
    }

    #[test]
    fn grid_size_multiplies_branches() {
        let s = space(
            r#"
            lr = "loguniform(1e-4, 1e-1)"
            depth = "int(1, 3)"
            width = "int(16, 128, step=16)"
            epochs = 3
            optimizer = ["adam", "sgd", "rmsprop"]
            momentum = { sample = "uniform(0.5, 0.99)", when = { optimizer = ["sgd", "rmsprop"] } }
            "#,
        )
        .unwrap();
        // lr 5 x depth 3 x width 5 (of 8) x (adam + 5 momenta x 2 optimizers).
        assert_eq!(s.grid_size(5), 5 * 3 * 5 * 11);
        assert_eq!(s.grid_size(2), 2 * 2 * 2 * 5);
        assert_eq!(SearchSpace::default().grid_size(5), 1);
    }

    #[test]
    fn at_unit_and_grid_points_stay_in_domain() {
        let domains = [
            Domain::Float { low: 1e-4, high: 0.1, log: true },
            Domain::Float { low: -1.0, high: 1.0, log: false },
            Domain::Int { low: 1, high: 6, step: 1, log: true },
            Domain::Int { low: 16, high: 128, step: 16, log: false },
            Domain::Int { low: i64::MIN, high: i64::MAX, step: 1, log: false },
        ];
        for d in &domains {
            for u in [0.0, 1e-12, 0.25, 0.5, 0.999_999, 1.0 - f64::EPSILON, 1.0] {
                assert!(d.contains(&d.at_unit(u)), "{d:?} {u}");
            }
            for v in d.grid_points(5) {
                assert!(d.contains(&v), "{d:?} {v}");
            }
        }
        assert_eq!(
            Domain::Int { low: 1, high: 6, step: 1, log: true }.grid_points(5),
            [Value::Int(1), Value::Int(2), Value::Int(4), Value::Int(6)]
        );
        let decades = Domain::Float { low: 1e-4, high: 1.0, log: true }.grid_points(5);
        for (want, got) in [1e-4, 1e-3, 1e-2, 1e-1, 1.0].iter().zip(&decades) {
            let Value::Float(got) = got else { panic!("{got:?}") };
            assert!((want - got).abs() <= 1e-12 * want, "{want} {got}");
        }
    }
}
