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
}

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
