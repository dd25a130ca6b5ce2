//! The instruction sets the CPU code is compiled for, and which of them this
//! processor has. The lowest layer: the RNG's and the pack engines' copies per
//! instruction set both choose through it.

/// The instruction set a vectorized copy of a function is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// x86-64 with AVX-512 (F, VL, BW, DQ): 32 vector registers of 16 f32.
    Avx512,
    /// x86-64 with AVX2: 16 registers of 8 f32.
    Avx2,
    /// Whatever the build targets (SSE2 on x86-64).
    Baseline,
}

impl Isa {
    /// The widest this processor has.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512vl") && has!("avx512bw") && has!("avx512dq") {
                return Isa::Avx512;
            }
            if has!("avx2") {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }

    /// Every instruction set this processor can run, the baseline first.
    pub fn available() -> Vec<Isa> {
        let mut isas = vec![Isa::Baseline];
        let have = Isa::detect();
        if have != Isa::Baseline {
            isas.push(Isa::Avx2);
        }
        if have == Isa::Avx512 {
            isas.push(Isa::Avx512);
        }
        isas
    }
}
