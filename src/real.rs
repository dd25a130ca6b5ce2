//! The working precision of the CPU backend: f64 by default, f32 to mirror the GPU.

use num_traits::{Float, FromPrimitive, ToPrimitive};
use serde::{Deserialize, Serialize};

pub trait Real:
    Float + FromPrimitive + ToPrimitive + Send + Sync + std::fmt::Debug + std::iter::Sum + 'static
{
    /// Rounds an f64 (a spec value, an initialization) to the working precision.
    fn of(value: f64) -> Self;
    fn to_f64_lossless(self) -> f64;
}

impl Real for f32 {
    #[inline]
    fn of(value: f64) -> Self {
        value as f32
    }
    #[inline]
    fn to_f64_lossless(self) -> f64 {
        f64::from(self)
    }
}

impl Real for f64 {
    #[inline]
    fn of(value: f64) -> Self {
        value
    }
    #[inline]
    fn to_f64_lossless(self) -> f64 {
        self
    }
}

/// The arithmetic a model's gradient needs. Implemented by the scalars and by
/// `Pack`, so one gradient routine serves a trajectory or a pack of them, with
/// the same operations in the same order in every lane.
pub trait Arith:
    Copy
    + Send
    + Sync
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    /// The precision of one lane: what a model's constants are stored in.
    type Scalar: Real;
    /// Every lane set to `c`. Constants stay scalars until used, so a pack
    /// engine broadcasts each into a register instead of loading N copies.
    fn splat(c: Self::Scalar) -> Self;
    fn zero() -> Self;
    fn one() -> Self;
    /// (z)₊: z where z > 0, else 0 (a ReLU).
    fn positive_part(self) -> Self;
    /// `self` where `gate` > 0, else 0 (a ReLU's derivative applied).
    fn gated_by(self, gate: Self) -> Self;
    /// `self` limited to [−c, c]: c above it, −c below it, NaN kept.
    fn clamp_within(self, c: Self::Scalar) -> Self;

    /// tanh as every backend computes it, from + − × ÷ alone, since the
    /// kernels' f64 has no transcendental functions: θ is clamped to
    /// [−20, 20] (tanh(20) rounds to 1 in f64), u = θ/64 (exact), tanh(u)
    /// by its Taylor series to u²⁵ (|u| ≤ 0.3125, where the first term left
    /// out is below 2·10⁻¹⁷ relative), then six doublings
    /// tanh(2u) = 2t/(1 + t²), none of which grows a relative error. Good to
    /// a few ulps; `shaders/shared/tanh.wgsl` is the twin.
    #[inline(always)]
    fn tanh_mirrored(self) -> Self {
        let x = self.clamp_within(Self::Scalar::of(20.0));
        let u = x * Self::splat(Self::Scalar::of(0.015625));
        let u2 = u * u;
        let mut p = Self::splat(Self::Scalar::of(TANH_SERIES[TANH_SERIES.len() - 1]));
        for &c in TANH_SERIES[..TANH_SERIES.len() - 1].iter().rev() {
            p = p * u2 + Self::splat(Self::Scalar::of(c));
        }
        let mut t = u * p;
        for _ in 0..6 {
            t = (t + t) / (Self::one() + t * t);
        }
        t
    }
}

/// The Taylor coefficients of tanh(u) = Σₖ cₖ u^(2k+1), k = 0…12:
/// 2^(2n)(2^(2n) − 1)B₂ₙ/(2n)! for n = k + 1.
pub const TANH_SERIES: [f64; 13] = [
    1.0,
    -0.3333333333333333,
    0.13333333333333333,
    -0.05396825396825397,
    0.021869488536155203,
    -0.008863235529902197,
    0.003592128036572481,
    -0.0014558343870513183,
    0.000590027440945586,
    -0.00023912911424355248,
    9.691537956929451e-05,
    -3.927832388331683e-05,
    1.5918905069328964e-05,
];

impl<T: Real> Arith for T {
    type Scalar = T;
    #[inline(always)]
    fn splat(c: T) -> T {
        c
    }
    #[inline(always)]
    fn zero() -> Self {
        <T as num_traits::Zero>::zero()
    }
    #[inline(always)]
    fn one() -> Self {
        <T as num_traits::One>::one()
    }
    #[inline(always)]
    fn positive_part(self) -> Self {
        if self > T::zero() {
            self
        } else {
            T::zero()
        }
    }
    #[inline(always)]
    fn gated_by(self, gate: Self) -> Self {
        if gate > T::zero() {
            self
        } else {
            T::zero()
        }
    }
    #[inline(always)]
    fn clamp_within(self, c: T) -> Self {
        if self > c {
            c
        } else if self < -c {
            -c
        } else {
            self
        }
    }
}

/// Trajectories advanced together by the CPU backend, one per lane: a
/// structure-of-arrays layout whose element-wise operations the compiler turns
/// into SIMD instructions. Each step of a model is a chain of dependent
/// operations (Horner's rule, prefix products), so a pack must hold several
/// registers' worth of lanes for the chains to overlap; how many pays depends
/// on the model (see `backend::cpu::engine`). Aligned to a cache line, so
/// no vector load of a pack straddles two (the allocator only promises 16
/// bytes).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct Pack<R, const N: usize>(pub [R; N]);

impl<R: Real, const N: usize> Pack<R, N> {
    #[inline(always)]
    pub fn splat(v: R) -> Self {
        Pack([v; N])
    }
}

macro_rules! lanewise {
    ($trait:ident, $method:ident, $op:tt) => {
        impl<R: Real, const N: usize> std::ops::$trait for Pack<R, N> {
            type Output = Self;
            #[inline(always)]
            fn $method(self, other: Self) -> Self {
                let mut out = self.0;
                for (o, b) in out.iter_mut().zip(other.0) {
                    *o = *o $op b;
                }
                Pack(out)
            }
        }
    };
}
lanewise!(Add, add, +);
lanewise!(Sub, sub, -);
lanewise!(Mul, mul, *);
lanewise!(Div, div, /);

impl<R: Real, const N: usize> Arith for Pack<R, N> {
    type Scalar = R;
    #[inline(always)]
    fn splat(c: R) -> Self {
        Pack::splat(c)
    }
    #[inline(always)]
    fn zero() -> Self {
        Pack::splat(R::zero())
    }
    #[inline(always)]
    fn one() -> Self {
        Pack::splat(R::one())
    }
    #[inline(always)]
    fn positive_part(self) -> Self {
        Pack(self.0.map(Arith::positive_part))
    }
    #[inline(always)]
    fn gated_by(self, gate: Self) -> Self {
        let mut out = self.0;
        for (o, g) in out.iter_mut().zip(gate.0) {
            *o = o.gated_by(g);
        }
        Pack(out)
    }
    #[inline(always)]
    fn clamp_within(self, c: R) -> Self {
        Pack(self.0.map(|v| v.clamp_within(c)))
    }
}

/// The working precision of a sweep, on either backend.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    F64,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mirrored tanh is within a few ulps of the library's, in both
    /// precisions, from 0 through the clamp, odd, and NaN stays NaN.
    #[test]
    fn mirrored_tanh_is_within_a_few_ulps() {
        let mut worst = 0.0f64;
        for i in 0..20_000 {
            let x = -25.0 + 50.0 * f64::from(i) / 20_000.0 + 1e-7;
            let got = x.tanh_mirrored();
            let want = x.tanh();
            worst = worst.max((got - want).abs() / (want.abs() * f64::EPSILON));
            assert_eq!((-x).tanh_mirrored(), -got);
            let got32 = (x as f32).tanh_mirrored();
            let want32 = (x as f32).tanh();
            assert!(
                (got32 - want32).abs() <= 8.0 * want32.abs() * f32::EPSILON,
                "{x}"
            );
        }
        assert!(worst <= 8.0, "{worst} ulps");
        for tiny in [1e-300, 1e-20, 1e-8] {
            assert!((tiny.tanh_mirrored() / tiny - 1.0).abs() < 4.0 * f64::EPSILON);
        }
        assert!(f64::NAN.tanh_mirrored().is_nan());
        let pack = Pack([0.5f64, -3.0, 30.0, 1e-3]).tanh_mirrored();
        for (l, x) in [0.5f64, -3.0, 30.0, 1e-3].into_iter().enumerate() {
            assert_eq!(pack.0[l].to_bits(), x.tanh_mirrored().to_bits());
        }
    }
}
