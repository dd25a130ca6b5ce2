//! Sweep specs: the TOML format, command-line overrides and validation.
//!
//! A spec names a model, a step-size axis, an optional second axis over any
//! numeric `model.*` or `init.*` parameter, the trajectories per cell, the
//! initialization, the stopping rule and the seed. `grid.rs` turns a validated
//! spec into cells.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::models::InitSpec;
use crate::models::ModelSpec;
pub use crate::optimizer::{Optimizer, OptimizerKind, OptimizerSpec};
pub use crate::real::Precision;
use crate::stopping::StopRule;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// A label for reports; defaults to the spec file's stem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub model: ModelSpec,
    #[serde(default)]
    pub init: InitSpec,
    /// Plain gradient descent unless the spec names another optimizer.
    #[serde(default, skip_serializing_if = "OptimizerSpec::is_default")]
    pub optimizer: OptimizerSpec,
    pub steps: AxisValues,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub axis: Option<SecondAxis>,
    /// Trajectories per cell.
    pub trajectories: u64,
    /// Replicate r of every cell starts from the same point (drawn from the
    /// stream of r rather than of the trajectory), so that cells differ only
    /// in their step sizes and axis values, as a grid from one fixed
    /// initialization does.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub common_starts: bool,
    pub max_iters: u64,
    pub seed: u64,
    #[serde(default)]
    pub stop: StopSpec,
    #[serde(default)]
    pub backend: BackendChoice,
    /// f64 on the CPU unless asked; the GPU always runs f32.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
    #[serde(default)]
    pub output: OutputSpec,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// A hardware GPU when one is present, otherwise the CPU.
    #[default]
    Auto,
    Cpu,
    Gpu,
}

/// A list of values given explicitly, as linspaces, or as logspaces; all parts
/// are merged, sorted ascending, and exact duplicates dropped.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AxisValues {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<f64>,
    /// `[start, stop, count]` or a list of them; endpoints included.
    #[serde(default, skip_serializing_if = "Ranges::is_empty")]
    pub linspace: Ranges,
    /// `[start, stop, count]` or a list of them, spaced evenly in log10; start, stop > 0.
    #[serde(default, skip_serializing_if = "Ranges::is_empty")]
    pub logspace: Ranges,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Ranges {
    One([f64; 3]),
    Many(Vec<[f64; 3]>),
}

impl Default for Ranges {
    fn default() -> Self {
        Ranges::Many(Vec::new())
    }
}

impl Ranges {
    fn is_empty(&self) -> bool {
        matches!(self, Ranges::Many(v) if v.is_empty())
    }

    fn triples(&self) -> Vec<[f64; 3]> {
        match self {
            Ranges::One(t) => vec![*t],
            Ranges::Many(v) => v.clone(),
        }
    }
}

impl AxisValues {
    /// Whether the values were laid out log-spaced (figures draw such an axis in log scale).
    pub fn is_log(&self) -> bool {
        !self.logspace.is_empty() && self.values.is_empty() && self.linspace.is_empty()
    }

    /// The merged, sorted values. `what` names the axis in error messages.
    pub fn resolve(&self, what: &str) -> Result<Vec<f64>> {
        let mut out = self.values.clone();
        for (kind, ranges) in [("linspace", &self.linspace), ("logspace", &self.logspace)] {
            for [start, stop, count] in ranges.triples() {
                if !(start.is_finite() && stop.is_finite()) {
                    return Err(Error::spec(format!(
                        "{what}.{kind} has a non-finite endpoint; give [start, stop, count] with finite numbers"
                    )));
                }
                if !(count >= 1.0 && count.fract() == 0.0 && count <= 1e7) {
                    return Err(Error::spec(format!(
                        "{what}.{kind} count is {count:?}; give a whole number from 1 to 10000000"
                    )));
                }
                let n = count as usize;
                // Bounds the memory of many ranges together, before allocating.
                if out.len() + n > MAX_AXIS_VALUES {
                    return Err(Error::spec(format!(
                        "{what} has more than {MAX_AXIS_VALUES} values; give fewer or shorter ranges"
                    )));
                }
                let (a, b) = if kind == "logspace" {
                    if start <= 0.0 || stop <= 0.0 {
                        return Err(Error::spec(format!(
                            "{what}.logspace endpoints must be above zero (got {start} and {stop})"
                        )));
                    }
                    (start.log10(), stop.log10())
                } else {
                    (start, stop)
                };
                for i in 0..n {
                    let t = if n == 1 {
                        0.0
                    } else {
                        i as f64 / (n - 1) as f64
                    };
                    let v = a + (b - a) * t;
                    let v = if kind == "logspace" { 10f64.powf(v) } else { v };
                    out.push(round_sig(v));
                }
            }
        }
        if out.is_empty() {
            return Err(Error::spec(format!(
                "{what} is empty; give values, a linspace or a logspace"
            )));
        }
        if let Some(bad) = out.iter().find(|v| !v.is_finite()) {
            return Err(Error::spec(format!(
                "{what} contains {bad}; every value must be a finite number"
            )));
        }
        out.sort_by(f64::total_cmp);
        out.dedup();
        Ok(out)
    }
}

/// Most values one axis may hold, its ranges added up.
pub const MAX_AXIS_VALUES: usize = 10_000_000;

/// Rounds a generated grid value to 12 significant digits, so a linspace from
/// 0.01 to 0.6 yields 0.07 rather than 0.06999999999999999 and meets the
/// same value given explicitly.
fn round_sig(v: f64) -> f64 {
    format!("{v:.11e}").parse().unwrap_or(v)
}

/// A second axis over a numeric model or initialization parameter, such as
/// `init.x0`, `init.std` or `model.lambda`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SecondAxis {
    pub param: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<f64>,
    #[serde(default, skip_serializing_if = "Ranges::is_empty")]
    pub linspace: Ranges,
    #[serde(default, skip_serializing_if = "Ranges::is_empty")]
    pub logspace: Ranges,
}

impl SecondAxis {
    pub fn axis_values(&self) -> AxisValues {
        AxisValues {
            values: self.values.clone(),
            linspace: self.linspace.clone(),
            logspace: self.logspace.clone(),
        }
    }

    /// The column name in cells.csv: the parameter without its table.
    /// (`steps.layer2` is `step_size_layer2`.)
    pub fn column(&self) -> String {
        if let Some(layer) = self.param.strip_prefix("steps.") {
            return format!("step_size_{layer}");
        }
        self.param
            .split_once('.')
            .map(|(_, k)| k)
            .unwrap_or(&self.param)
            .to_string()
    }
}

/// Stopping tolerances; unset ones take per-precision defaults.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StopSpec {
    #[serde(default = "default_check_every")]
    pub check_every: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tol_grad: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub osc_rel_tol: Option<f64>,
    #[serde(default = "default_max_period")]
    pub max_period: u32,
    #[serde(default = "default_divergence_cap")]
    pub divergence_cap: f64,
    /// Stop each trajectory as soon as it is classified; `false` runs every
    /// trajectory for max_iters, as a fixed-work benchmark does.
    #[serde(default = "default_early_exit")]
    pub early_exit: bool,
}

fn default_early_exit() -> bool {
    true
}

fn default_check_every() -> u32 {
    64
}
fn default_max_period() -> u32 {
    16
}
fn default_divergence_cap() -> f64 {
    1e6
}

impl Default for StopSpec {
    fn default() -> Self {
        StopSpec {
            check_every: default_check_every(),
            tol_grad: None,
            osc_rel_tol: None,
            max_period: default_max_period(),
            divergence_cap: default_divergence_cap(),
            early_exit: true,
        }
    }
}

impl StopSpec {
    /// The rule at a precision. The gradient tolerance sits above the rounding
    /// noise of evaluating the gradient: in f32, Horner's rule for the paper's
    /// f' near x = 2 is only good to about 1e-4, and GD there wanders on
    /// rounding cycles instead of settling.
    pub fn rule(&self, precision: Precision, max_iters: u64) -> StopRule {
        let (tol_grad, osc_rel_tol) = match precision {
            Precision::F64 => (1e-8, 1e-7),
            Precision::F32 => (1e-3, 1e-4),
        };
        StopRule {
            max_iters,
            check_every: self.check_every,
            tol_grad: self.tol_grad.unwrap_or(tol_grad),
            osc_rel_tol: self.osc_rel_tol.unwrap_or(osc_rel_tol),
            max_period: self.max_period,
            divergence_cap: self.divergence_cap,
            early_exit: self.early_exit,
            optimizer: OptimizerKind::Gd,
            step_slots: 1,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.max_period < 2 || self.max_period > 64 {
            return Err(Error::spec(format!(
                "stop.max_period is {}; give a period from 2 to 64",
                self.max_period
            )));
        }
        let ring = (2 * self.max_period).next_power_of_two();
        if self.check_every < ring {
            return Err(Error::spec(format!(
                "stop.check_every is {}; with max_period {} it must be at least {ring}",
                self.check_every, self.max_period
            )));
        }
        for (name, v) in [
            ("tol_grad", self.tol_grad),
            ("osc_rel_tol", self.osc_rel_tol),
            ("divergence_cap", Some(self.divergence_cap)),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    return Err(Error::spec(format!(
                        "stop.{name} is {v}; give a finite number above zero"
                    )));
                }
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Write trajectories.csv, one row per trajectory.
    #[serde(default)]
    pub trajectories: bool,
    /// Trace the sharpness of the first K replicates of every cell into
    /// trace.csv (the trace module); 0 for none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub trace: u64,
    /// The format of cells and trajectories: CSV, or Parquet in their place.
    #[serde(default, skip_serializing_if = "Format::is_csv")]
    pub format: Format,
}

/// The file format of a run's tables.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// cells.csv and trajectories.csv.
    #[default]
    Csv,
    /// cells.parquet and trajectories.parquet, typed and compressed.
    Parquet,
}

impl Format {
    pub fn is_csv(&self) -> bool {
        *self == Format::Csv
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Command-line overrides of a spec.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub steps: Option<String>,
    pub trajectories: Option<u64>,
    pub seed: Option<u64>,
    pub max_iters: Option<u64>,
    pub backend: Option<BackendChoice>,
    pub precision: Option<Precision>,
}

/// Parses `--steps a:b:n` (a linspace) or `--steps v1,v2,…`.
pub fn parse_steps(text: &str) -> Result<AxisValues> {
    let bad = || {
        Error::spec(format!(
            "--steps '{text}' is not a:b:n or a comma-separated list of step sizes"
        ))
    };
    let number = |s: &str| s.trim().parse::<f64>().map_err(|_| bad());
    if text.contains(':') {
        let parts: Vec<&str> = text.split(':').collect();
        if parts.len() != 3 {
            return Err(bad());
        }
        Ok(AxisValues {
            linspace: Ranges::One([number(parts[0])?, number(parts[1])?, number(parts[2])?]),
            ..AxisValues::default()
        })
    } else {
        let values = text
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(number)
            .collect::<Result<Vec<_>>>()?;
        Ok(AxisValues {
            values,
            ..AxisValues::default()
        })
    }
}

impl Spec {
    /// Parses TOML text; errors name the line and column.
    pub fn from_toml(text: &str, origin: &str) -> Result<Spec> {
        toml::from_str::<Spec>(text).map_err(|e| {
            let place = e
                .span()
                .map(|span| {
                    // A span may end inside a multi-byte character; back off to its start.
                    let mut end = span.start.min(text.len());
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    let before = &text[..end];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!(" at line {line}, column {column}")
                })
                .unwrap_or_default();
            Error::spec(format!(
                "{origin}{place}: {}",
                e.message().trim_end_matches('.').replace('\n', " ")
            ))
        })
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a validated spec always serializes")
    }

    pub fn apply(&mut self, o: &Overrides) -> Result<()> {
        if let Some(s) = &o.steps {
            self.steps = parse_steps(s)?;
        }
        if let Some(t) = o.trajectories {
            self.trajectories = t;
        }
        if let Some(s) = o.seed {
            self.seed = s;
        }
        if let Some(m) = o.max_iters {
            self.max_iters = m;
        }
        if let Some(b) = o.backend {
            self.backend = b;
        }
        if let Some(p) = o.precision {
            self.precision = Some(p);
        }
        Ok(())
    }

    /// Checks everything that does not depend on the cells; `sweep::Sweep::new`
    /// checks each cell's model and initialization.
    pub fn validate(&self) -> Result<()> {
        let steps = self.steps.resolve("steps")?;
        if let Some(bad) = steps.iter().find(|&&d| d <= 0.0) {
            return Err(Error::spec(format!(
                "step size {bad} is not positive; every step size must be a finite number above zero"
            )));
        }
        if self.trajectories == 0 {
            return Err(Error::spec(
                "trajectories is 0; give at least one trajectory per cell",
            ));
        }
        if self.max_iters == 0 {
            return Err(Error::spec("max_iters is 0; give at least one iteration"));
        }
        self.stop.validate()?;
        self.optimizer.resolve()?;
        self.init.validate()?;
        self.model.build()?.check_init(&self.init)?;
        Ok(())
    }

    /// A copy with the second-axis parameter set to `value`, validated.
    pub fn with_param(&self, param: &str, value: f64) -> Result<Spec> {
        let (table, key) = param.split_once('.').ok_or_else(|| {
            Error::spec(format!(
                "axis.param '{param}' must name a model, init or optimizer parameter, such as init.x0, model.lambda or optimizer.beta"
            ))
        })?;
        let mut doc = toml::Value::try_from(self).expect("a spec always serializes");
        if table == "optimizer" {
            // A spec that leaves the optimizer at its default writes no table.
            if let Some(root) = doc.as_table_mut() {
                root.entry("optimizer")
                    .or_insert_with(|| toml::Value::Table(Default::default()));
            }
        }
        let section = match table {
            "model" | "init" | "optimizer" => doc.get_mut(table).and_then(|t| t.as_table_mut()),
            _ => None,
        }
        .ok_or_else(|| {
            Error::spec(format!(
                "axis.param '{param}' must start with model., init. or optimizer."
            ))
        })?;
        // Whole values go in as integers so that integer parameters (layers,
        // hidden units) can be swept too; float fields accept integers.
        let item = if value.fract() == 0.0 && value.abs() < 9.0e15 {
            toml::Value::Integer(value as i64)
        } else {
            toml::Value::Float(value)
        };
        section.insert(key.to_string(), item);
        let spec: Spec = doc.try_into().map_err(|e: toml::de::Error| {
            Error::spec(format!(
                "axis.param '{param}' = {value} does not fit the spec: {}",
                e.message().trim_end_matches('.').replace('\n', " ")
            ))
        })?;
        spec.init.validate()?;
        spec.optimizer.resolve()?;
        spec.model.build()?.check_init(&spec.init)?;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        trajectories = 10
        max_iters = 100
        seed = 1
        [model]
        kind = "poly"
        [steps]
        linspace = [0.1, 0.5, 5]
    "#;

    #[test]
    fn linspace_and_values_merge_sorted() {
        let spec = Spec::from_toml(MINIMAL, "t").unwrap();
        assert_eq!(
            spec.steps.resolve("steps").unwrap(),
            vec![0.1, 0.2, 0.3, 0.4, 0.5]
        );
        let a = AxisValues {
            values: vec![0.25, 0.1],
            linspace: Ranges::Many(vec![[0.1, 0.2, 2.0], [0.3, 0.3, 1.0]]),
            ..Default::default()
        };
        assert_eq!(a.resolve("s").unwrap(), vec![0.1, 0.2, 0.25, 0.3]);
    }

    #[test]
    fn logspace_is_geometric() {
        let a = AxisValues {
            logspace: Ranges::One([1e-3, 1e-1, 3.0]),
            ..Default::default()
        };
        let v = a.resolve("s").unwrap();
        assert!((v[1] - 1e-2).abs() < 1e-15 && (v[2] - 1e-1).abs() < 1e-15);
    }

    #[test]
    fn cli_steps_parse() {
        assert_eq!(
            parse_steps("0.1,0.2").unwrap().resolve("s").unwrap(),
            vec![0.1, 0.2]
        );
        assert_eq!(
            parse_steps("0.1:0.3:3")
                .unwrap()
                .resolve("s")
                .unwrap()
                .len(),
            3
        );
        assert!(parse_steps("0.1:0.3").is_err());
        assert!(parse_steps("a,b").is_err());
    }

    #[test]
    fn bad_specs_get_one_sentence() {
        let err = |text: &str| {
            Spec::from_toml(text, "spec.toml")
                .and_then(|s| s.validate())
                .unwrap_err()
                .to_string()
        };
        let e = err(&MINIMAL.replace("linspace = [0.1, 0.5, 5]", "values = [0.1, -0.2]"));
        assert!(e.contains("step size -0.2 is not positive"), "{e}");
        let e = err(&MINIMAL.replace("linspace = [0.1, 0.5, 5]", "values = [nan]"));
        assert!(e.contains("finite"), "{e}");
        let e = err(&MINIMAL.replace("linspace = [0.1, 0.5, 5]", ""));
        assert!(e.contains("steps is empty"), "{e}");
        let e = err(&MINIMAL.replace("trajectories = 10", "trajectories = 0"));
        assert!(e.contains("trajectories is 0"), "{e}");
        let e = err(&MINIMAL.replace("\"poly\"", "\"quartic\""));
        assert!(e.contains("unknown variant `quartic`"), "{e}");
        let e = err("trajectories = = 3");
        assert!(e.starts_with("spec.toml at line 1, column"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn axis_param_sets_init_field() {
        let spec = Spec::from_toml(
            &MINIMAL.replace("[model]", "[init]\nkind = \"point\"\nx0 = 0.5\n[model]"),
            "t",
        )
        .unwrap();
        let cell = spec.with_param("init.x0", 1.25).unwrap();
        assert_eq!(cell.init, InitSpec::Point { x0: 1.25 });
        let e = spec.with_param("init.nope", 1.0).unwrap_err().to_string();
        assert!(e.contains("unknown field `nope`"), "{e}");
        assert!(spec.with_param("steps.x", 1.0).is_err());
    }
}
