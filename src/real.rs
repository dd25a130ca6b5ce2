//! The working precision of the CPU backend: f64 by default, f32 to mirror the GPU.

use num_traits::{Float, FromPrimitive, ToPrimitive};

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
