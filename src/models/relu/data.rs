//! The data of model `relu` (docs/theory.md §4): inputs x_i ∈ ℝⁿ and targets
//! y_i ∈ ℝᵐ, i = 1…N, generated from the spec or read from CSV files.
//! Every random draw has its own seed and a stream reserved for it, so the
//! data never depends on the sweep's seed or on which trajectories run.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::TrajectoryRng;

/// Stream ids of the model's own draws, far from trajectory ids and from the
/// streams deep-linear reserves.
pub const BIAS_STREAM: u64 = u64::MAX - 3;
pub const INPUT_STREAM: u64 = u64::MAX - 4;
pub const TEACHER_STREAM: u64 = u64::MAX - 5;

fn one() -> f64 {
    1.0
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum InputSpec {
    /// The first N points of the grid {0, 1/k, …, (k−1)/k}ⁿ with kⁿ ≥ N, the
    /// first coordinate slowest; for n = 1 this is x_i = i/N, the notebook's
    /// 0, 0.001, …, 0.999.
    Grid {},
    /// Every coordinate uniform on [low, high).
    Uniform {
        low: f64,
        high: f64,
        #[serde(default)]
        seed: u64,
    },
    /// Every coordinate from N(0, std²).
    Gaussian {
        #[serde(default = "one")]
        std: f64,
        #[serde(default)]
        seed: u64,
    },
    /// A CSV file, one sample of n numbers per line.
    Csv { path: String },
    /// The samples themselves, one list of n numbers each.
    Given { samples: Vec<Vec<f64>> },
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TargetSpec {
    /// y_i = W′(V′x_i − b)₊, a network of the same architecture with the same
    /// b, W′ and V′ drawn from N(0, std²) with this seed (the notebook's target).
    Teacher {
        #[serde(default = "one")]
        std: f64,
        #[serde(default)]
        seed: u64,
    },
    /// Every y_{i,j} drawn from N(0, std²): targets no network need fit
    /// (the fractal-boundary study's).
    Gaussian {
        #[serde(default = "one")]
        std: f64,
        #[serde(default)]
        seed: u64,
    },
    /// y_i = A x_i with A (m × n) drawn from N(0, std²).
    Linear {
        #[serde(default = "one")]
        std: f64,
        #[serde(default)]
        seed: u64,
    },
    /// y_{i,j} = sin(2π·frequency·Σ_l x_{i,l} + j): a smooth target no
    /// network of this kind fits exactly.
    Sin {
        #[serde(default = "one")]
        frequency: f64,
    },
    /// The same vector (1, …, 1)/√m for every sample, scaled to model.target_norm
    /// (1 when absent): the one-sample tightness case.
    Constant {},
    /// A CSV file, one target of m numbers per line, in the inputs' order.
    Csv { path: String },
}

impl InputSpec {
    /// The number of samples this spec fixes by itself (files and given lists).
    pub fn fixed_samples(&self, n: usize) -> Result<Option<usize>> {
        match self {
            InputSpec::Csv { path } => Ok(Some(read_csv(path, n, "model.input_size")?.len() / n)),
            InputSpec::Given { samples } => Ok(Some(samples.len())),
            _ => Ok(None),
        }
    }

    /// The N × n inputs, row-major.
    pub fn generate(&self, n: usize, samples: usize) -> Result<Vec<f64>> {
        let draw = |seed: u64, f: &dyn Fn(&mut TrajectoryRng) -> f64| {
            let mut rng = TrajectoryRng::new(seed, INPUT_STREAM);
            (0..samples * n).map(|_| f(&mut rng)).collect::<Vec<_>>()
        };
        let x = match self {
            InputSpec::Grid {} => {
                let mut k = 1usize;
                while k.pow(n as u32) < samples {
                    k += 1;
                }
                let mut x = Vec::with_capacity(samples * n);
                for i in 0..samples {
                    for l in 0..n {
                        let digit = (i / k.pow((n - 1 - l) as u32)) % k;
                        x.push(digit as f64 / k as f64);
                    }
                }
                x
            }
            InputSpec::Uniform { low, high, seed } => {
                if !(low.is_finite() && high.is_finite() && low < high) {
                    return Err(Error::spec(format!(
                        "model.inputs has low {low} and high {high}; give finite numbers with low below high"
                    )));
                }
                draw(*seed, &|r| low + (high - low) * r.uniform())
            }
            InputSpec::Gaussian { std, seed } => {
                positive("model.inputs.std", *std)?;
                draw(*seed, &|r| std * r.normal())
            }
            InputSpec::Csv { path } => read_csv(path, n, "model.input_size")?,
            InputSpec::Given { samples } => {
                if samples.iter().any(|s| s.len() != n) {
                    return Err(Error::spec(format!(
                        "model.inputs.samples must hold lists of {n} numbers to match model.input_size"
                    )));
                }
                samples.iter().flatten().copied().collect()
            }
        };
        if x.iter().any(|v| !v.is_finite()) {
            return Err(Error::spec("model.inputs has a non-finite value"));
        }
        Ok(x)
    }
}

/// A size from the spec, refused in one sentence outside 1..=max.
pub fn size(name: &str, value: u32, max: u32, what: &str) -> Result<usize> {
    if value == 0 || value > max {
        return Err(Error::spec(format!(
            "model.{name} is {value}; give {what} from 1 to {max}"
        )));
    }
    Ok(value as usize)
}

/// N: what the inputs hold where they fix it (a file, a list), else
/// `model.samples`; refused in one sentence where the two disagree, where
/// neither gives it, or past `max`.
pub fn samples(inputs: &InputSpec, n: usize, given: Option<u32>, max: u32) -> Result<usize> {
    let samples = match (inputs.fixed_samples(n)?, given) {
        (Some(found), Some(given)) if found != given as usize => {
            return Err(Error::spec(format!(
                "model.samples is {given} but the inputs hold {found} samples; drop model.samples or make them agree"
            )))
        }
        (Some(found), _) => found,
        (None, Some(given)) => given as usize,
        (None, None) => {
            return Err(Error::spec(format!(
                "model.samples is missing; give N from 1 to {max}"
            )))
        }
    };
    size("samples", samples.min(u32::MAX as usize) as u32, max, "N")
}

fn positive(name: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::spec(format!(
            "{name} is {v}; give a finite number above zero"
        )))
    }
}

/// What the targets are made from: the sizes, the inputs, and the model's
/// own network as a teacher: `teacher(θ′, x)` is f̂(x) at parameters θ′ of
/// `teacher_dim` numbers.
pub struct Design<'a> {
    pub n: usize,
    pub m: usize,
    pub x: &'a [f64],
    pub teacher_dim: usize,
    pub teacher: &'a Teacher<'a>,
}

/// A network's output f̂(x) at parameters θ′: `teacher(θ′, x)`.
pub type Teacher<'a> = dyn Fn(&[f64], &[f64]) -> Vec<f64> + 'a;

impl TargetSpec {
    /// The N × m targets, row-major, before any rescaling to model.target_norm.
    pub fn generate(&self, d: &Design) -> Result<Vec<f64>> {
        let (n, m) = (d.n, d.m);
        let samples = d.x.len() / n;
        let y = match self {
            TargetSpec::Teacher { std, seed } => {
                positive("model.targets.std", *std)?;
                let mut rng = TrajectoryRng::new(*seed, TEACHER_STREAM);
                let theta: Vec<f64> = (0..d.teacher_dim).map(|_| std * rng.normal()).collect();
                let mut y = vec![0.0; samples * m];
                for i in 0..samples {
                    let out = (d.teacher)(&theta, &d.x[i * n..(i + 1) * n]);
                    y[i * m..(i + 1) * m].copy_from_slice(&out);
                }
                y
            }
            TargetSpec::Gaussian { std, seed } => {
                positive("model.targets.std", *std)?;
                let mut rng = TrajectoryRng::new(*seed, TEACHER_STREAM);
                (0..samples * m).map(|_| std * rng.normal()).collect()
            }
            TargetSpec::Linear { std, seed } => {
                positive("model.targets.std", *std)?;
                let mut rng = TrajectoryRng::new(*seed, TEACHER_STREAM);
                let a: Vec<f64> = (0..m * n).map(|_| std * rng.normal()).collect();
                (0..samples * m)
                    .map(|ij| {
                        let (i, j) = (ij / m, ij % m);
                        (0..n).map(|l| a[j * n + l] * d.x[i * n + l]).sum()
                    })
                    .collect()
            }
            TargetSpec::Sin { frequency } => {
                if !frequency.is_finite() {
                    return Err(Error::spec("model.targets.frequency must be finite"));
                }
                (0..samples * m)
                    .map(|ij| {
                        let (i, j) = (ij / m, ij % m);
                        let s: f64 = d.x[i * n..(i + 1) * n].iter().sum();
                        (std::f64::consts::TAU * frequency * s + j as f64).sin()
                    })
                    .collect()
            }
            TargetSpec::Constant {} => vec![1.0 / (m as f64).sqrt(); samples * m],
            TargetSpec::Csv { path } => {
                let y = read_csv(path, m, "model.output_size")?;
                if y.len() != samples * m {
                    return Err(Error::spec(format!(
                        "{path} holds {} targets but there are {samples} inputs; give one target per input",
                        y.len() / m
                    )));
                }
                y
            }
        };
        if y.iter().any(|v| !v.is_finite()) {
            return Err(Error::spec("model.targets has a non-finite value"));
        }
        Ok(y)
    }
}

/// The numbers of a CSV file with `columns` numbers per line, row-major.
/// Blank lines are skipped; errors name the file and the line.
pub fn read_csv(path: &str, columns: usize, size_field: &str) -> Result<Vec<f64>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
    let mut out = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != columns {
            return Err(Error::spec(format!(
                "{path} line {}: {} values where {size_field} is {columns}",
                line_no + 1,
                fields.len()
            )));
        }
        for f in fields {
            match f.parse::<f64>() {
                Ok(v) if v.is_finite() => out.push(v),
                _ => {
                    return Err(Error::spec(format!(
                        "{path} line {}: '{f}' is not a finite number",
                        line_no + 1
                    )))
                }
            }
        }
    }
    if out.is_empty() {
        return Err(Error::spec(format!(
            "{path} is empty; give one sample per line"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_the_notebooks_inputs_in_one_dimension_and_a_lattice_in_more() {
        let x = InputSpec::Grid {}.generate(1, 1000).unwrap();
        assert_eq!((x[0], x[1], x[999]), (0.0, 0.001, 0.999));
        let x = InputSpec::Grid {}.generate(2, 5).unwrap();
        assert_eq!(
            x,
            vec![
                0.0,
                0.0,
                0.0,
                1.0 / 3.0,
                0.0,
                2.0 / 3.0,
                1.0 / 3.0,
                0.0,
                1.0 / 3.0,
                1.0 / 3.0
            ]
        );
    }

    #[test]
    fn bad_csv_files_are_named_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p.to_string_lossy().into_owned()
        };
        let err = |path: &str| {
            read_csv(path, 2, "model.input_size")
                .unwrap_err()
                .to_string()
        };
        let e = err(&file("cols.csv", "1,2\n\n3,4,5\n"));
        assert!(
            e.ends_with("cols.csv line 3: 3 values where model.input_size is 2"),
            "{e}"
        );
        let e = err(&file("text.csv", "1,2\n3,abc\n"));
        assert!(
            e.ends_with("text.csv line 2: 'abc' is not a finite number"),
            "{e}"
        );
        let e = err(&file("empty.csv", "\n  \n"));
        assert!(
            e.ends_with("empty.csv is empty; give one sample per line"),
            "{e}"
        );
        let ok = read_csv(&file("ok.csv", "1, 2\n-3,4e-1\n"), 2, "s").unwrap();
        assert_eq!(ok, vec![1.0, 2.0, -3.0, 0.4]);
    }
}
