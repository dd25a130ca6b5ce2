//! Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random
//! numbers: as easy as 1, 2, 3", SC'11), keyed by (seed, trajectory id).
//!
//! A counter-based generator lets every trajectory draw its own stream without
//! any shared state, so the same seed gives the same sweep whatever the backend,
//! chunk size, thread count or shard split. `shaders/rng.wgsl` is the WGSL twin;
//! the integer streams of the two are bit-identical (tested in `tests/gpu_rng.rs`).

use rand_core::{impls, RngCore};

#[cfg(target_arch = "x86_64")]
use crate::isa::Isa;

const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;

#[inline]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let product = u64::from(a) * u64::from(b);
    ((product >> 32) as u32, product as u32)
}

/// One Philox4x32 block: ten rounds of the bijection on `counter` under `key`.
#[inline]
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let [[a], [b], [c], [d]] = philox_lanes(counter.map(|w| [w]), key);
    [a, b, c, d]
}

/// Trajectories per call of `philox_lanes` in `stream_blocks`: sixteen u32
/// lanes fill one AVX-512 register (two AVX2 registers).
const WIDE: usize = 16;

/// `philox4x32_10` for W counters at once, word by word in arrays
/// (`counter[w][i]` is word w of counter i). Each counter's ten rounds are
/// written as a loop the compiler unrolls, inside a loop over the counters
/// that it vectorizes: with the rounds outside, each round's words went
/// through memory.
#[inline(always)]
fn philox_lanes<const W: usize>(counter: [[u32; W]; 4], key: [u32; 2]) -> [[u32; W]; 4] {
    let mut out = [[0u32; W]; 4];
    for i in 0..W {
        let mut c = [counter[0][i], counter[1][i], counter[2][i], counter[3][i]];
        let mut k = key;
        for round in 0..10 {
            if round > 0 {
                k[0] = k[0].wrapping_add(PHILOX_W0);
                k[1] = k[1].wrapping_add(PHILOX_W1);
            }
            let (hi0, lo0) = mulhilo(PHILOX_M0, c[0]);
            let (hi1, lo1) = mulhilo(PHILOX_M1, c[2]);
            c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
        }
        for (o, w) in out.iter_mut().zip(c) {
            o[i] = w;
        }
    }
    out
}

/// The body of `stream_blocks`, always inlined into a copy per instruction set.
#[inline(always)]
fn stream_blocks_inline(seed: u64, first: u64, blocks: usize, out: &mut [[u32; 4]]) {
    let key = [seed as u32, (seed >> 32) as u32];
    let count = out.len() / blocks;
    for start in (0..count).step_by(WIDE) {
        for b in 0..blocks as u64 {
            let id = |i: usize| first.wrapping_add((start + i) as u64);
            let counter = [
                std::array::from_fn(|i| id(i) as u32),
                std::array::from_fn(|i| (id(i) >> 32) as u32),
                [b as u32; WIDE],
                [(b >> 32) as u32; WIDE],
            ];
            let words = philox_lanes(counter, key);
            for i in 0..WIDE.min(count - start) {
                out[(start + i) * blocks + b as usize] =
                    [words[0][i], words[1][i], words[2][i], words[3][i]];
            }
        }
    }
}

/// The body of `stream_uniforms`, always inlined into a copy per instruction
/// set.
#[inline(always)]
fn stream_uniforms_inline(seed: u64, first: u64, per: usize, out: &mut [f64]) {
    let key = [seed as u32, (seed >> 32) as u32];
    let count = out.len() / per;
    for start in (0..count).step_by(WIDE) {
        let n = WIDE.min(count - start);
        for b in 0..per.div_ceil(2) {
            let id = |i: usize| first.wrapping_add((start + i) as u64);
            let counter = [
                std::array::from_fn(|i| id(i) as u32),
                std::array::from_fn(|i| (id(i) >> 32) as u32),
                [b as u32; WIDE],
                [(b >> 32) as u32; WIDE],
            ];
            let words = philox_lanes(counter, key);
            // Draw 2b from words 0 and 1 of block b, draw 2b + 1 from words
            // 2 and 3, the low word first (see `TrajectoryRng::next_u64`).
            for half in 0..2 {
                let j = 2 * b + half;
                if j >= per {
                    break;
                }
                let (lo, hi) = (&words[2 * half], &words[2 * half + 1]);
                let u: [f64; WIDE] = std::array::from_fn(|i| {
                    uniform_of(u64::from(lo[i]) | (u64::from(hi[i]) << 32))
                });
                if per == 1 {
                    // (One draw each, as for the polynomial: stored together.)
                    out[start..start + n].copy_from_slice(&u[..n]);
                    continue;
                }
                for (i, &v) in u.iter().enumerate().take(n) {
                    out[(start + i) * per + j] = v;
                }
            }
        }
    }
}

/// The first `per` uniforms of the streams of trajectories `first..`, as
/// `TrajectoryRng::uniform` draws them: `out[t · per + j]` is draw j of
/// trajectory first + t, for out.len() / per trajectories. Converted as
/// Philox makes them, sixteen trajectories at once, where going through
/// `stream_blocks`' blocks stored and read back took more time than Philox.
pub fn stream_uniforms(seed: u64, first: u64, per: usize, out: &mut [f64]) {
    if per == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    match Isa::detect() {
        // SAFETY: the processor has every feature the copy is compiled for.
        Isa::Avx512 => return unsafe { wide::stream_uniforms_avx512(seed, first, per, out) },
        // SAFETY: as above.
        Isa::Avx2 => return unsafe { wide::stream_uniforms_avx2(seed, first, per, out) },
        Isa::Baseline => {}
    }
    stream_uniforms_inline(seed, first, per, out)
}

/// Blocks `0..blocks` of the streams of trajectories `first..`, as
/// `TrajectoryRng` draws them: `out[t · blocks + b]` is block b of trajectory
/// first + t, for out.len() / blocks trajectories. Sixteen trajectories go
/// through Philox at once, in vector registers: one trajectory at a time,
/// Philox was the largest part of a poly sweep's draws.
pub fn stream_blocks(seed: u64, first: u64, blocks: usize, out: &mut [[u32; 4]]) {
    if blocks == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    match Isa::detect() {
        // SAFETY: the processor has every feature the copy is compiled for.
        Isa::Avx512 => return unsafe { wide::stream_blocks_avx512(seed, first, blocks, out) },
        // SAFETY: as above.
        Isa::Avx2 => return unsafe { wide::stream_blocks_avx2(seed, first, blocks, out) },
        Isa::Baseline => {}
    }
    stream_blocks_inline(seed, first, blocks, out)
}

#[cfg(target_arch = "x86_64")]
mod wide {
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
    pub unsafe fn stream_blocks_avx512(seed: u64, first: u64, blocks: usize, out: &mut [[u32; 4]]) {
        super::stream_blocks_inline(seed, first, blocks, out)
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn stream_blocks_avx2(seed: u64, first: u64, blocks: usize, out: &mut [[u32; 4]]) {
        super::stream_blocks_inline(seed, first, blocks, out)
    }

    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
    pub unsafe fn stream_uniforms_avx512(seed: u64, first: u64, per: usize, out: &mut [f64]) {
        super::stream_uniforms_inline(seed, first, per, out)
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn stream_uniforms_avx2(seed: u64, first: u64, per: usize, out: &mut [f64]) {
        super::stream_uniforms_inline(seed, first, per, out)
    }
}

/// The uniform in [0, 1) that a draw of 64 random bits gives: its top 53 bits.
#[inline(always)]
pub fn uniform_of(bits: u64) -> f64 {
    // Below 2^53, so exact as a signed integer too: x86-64 converts a signed
    // one in one instruction, an unsigned one with a test and a fix-up.
    ((bits >> 11) as i64) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The stream of one trajectory: key = seed, counter = (trajectory id, block).
///
/// Words come out in block order, four per block, so word `i` of the stream of
/// trajectory `t` is `philox(ctr = [t_lo, t_hi, i/4 lo, i/4 hi], key = seed)[i % 4]`.
/// The first blocks may be given, computed beforehand by `stream_blocks`.
#[derive(Clone, Debug)]
pub struct TrajectoryRng<'a> {
    key: [u32; 2],
    trajectory: u64,
    block: u64,
    buffer: [u32; 4],
    used: usize,
    /// Blocks 0.. of this stream, computed beforehand.
    given: &'a [[u32; 4]],
}

impl TrajectoryRng<'static> {
    #[inline]
    pub fn new(seed: u64, trajectory: u64) -> Self {
        TrajectoryRng::with_blocks(seed, trajectory, &[])
    }
}

impl<'a> TrajectoryRng<'a> {
    /// The stream whose blocks `0..given.len()` are `given` (from
    /// `stream_blocks`); later blocks are computed as they are needed.
    #[inline]
    pub fn with_blocks(seed: u64, trajectory: u64, given: &'a [[u32; 4]]) -> Self {
        Self {
            key: [seed as u32, (seed >> 32) as u32],
            trajectory,
            block: 0,
            buffer: [0; 4],
            used: 4,
            given,
        }
    }

    /// How many blocks of the stream have been drawn so far.
    pub fn blocks_drawn(&self) -> u64 {
        self.block
    }

    /// A uniform draw in [0, 1) with 53 random bits.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        uniform_of(self.next_u64())
    }

    /// A standard normal draw by Box–Muller, in f64 on the host so that every
    /// backend starts from exactly the same point (GPU `log`/`cos` are not
    /// correctly rounded). Each normal takes its own pair of uniforms: the
    /// draws, and so the data and starting points a seed gives, are part of
    /// what a sweep reproduces.
    #[inline]
    pub fn normal(&mut self) -> f64 {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// The next block of four words.
    #[inline]
    fn refill(&mut self) {
        let t = self.trajectory;
        let b = self.block;
        self.buffer = match usize::try_from(b).ok().and_then(|i| self.given.get(i)) {
            Some(&block) => block,
            None => philox4x32_10(
                [t as u32, (t >> 32) as u32, b as u32, (b >> 32) as u32],
                self.key,
            ),
        };
        self.block = self.block.wrapping_add(1);
        self.used = 0;
    }
}

impl RngCore for TrajectoryRng<'_> {
    #[inline]
    fn next_u32(&mut self) -> u32 {
        if self.used == 4 {
            self.refill();
        }
        let word = self.buffer[self.used];
        self.used += 1;
        word
    }

    /// The low word first, as `rand_core::impls::next_u64_via_u32` takes
    /// them; two words of one block at once where the block has them,
    /// since a uniform per trajectory is a large part of a cheap model's
    /// draws (docs/performance.md).
    #[inline]
    fn next_u64(&mut self) -> u64 {
        if self.used == 4 {
            self.refill();
        }
        if self.used <= 2 {
            let (lo, hi) = (self.buffer[self.used], self.buffer[self.used + 1]);
            self.used += 2;
            return (u64::from(hi) << 32) | u64::from(lo);
        }
        let lo = self.next_u32();
        (u64::from(self.next_u32()) << 32) | u64::from(lo)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        impls::fill_bytes_via_next(self, dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer vectors published with Random123 (`kat_vectors`, philox4x32 10 rounds).
    #[test]
    fn philox_known_answers() {
        assert_eq!(
            philox4x32_10([0, 0, 0, 0], [0, 0]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    /// `next_u64` is two `next_u32` words, low first, wherever in a block
    /// the stream stands (so a u64 may straddle two blocks).
    #[test]
    fn u64_draws_are_two_words_low_first() {
        let mut fast = TrajectoryRng::new(9, 4);
        let mut words = TrajectoryRng::new(9, 4);
        for skip in [0, 1, 2, 3, 1, 0, 3, 2, 2, 1] {
            for _ in 0..skip {
                assert_eq!(fast.next_u32(), words.next_u32());
            }
            let lo = u64::from(words.next_u32());
            let hi = u64::from(words.next_u32());
            assert_eq!(fast.next_u64(), (hi << 32) | lo);
        }
    }

    /// `stream_blocks` gives each trajectory's blocks as `TrajectoryRng` draws
    /// them word by word: trajectories not a multiple of the sixteen computed
    /// at once, ids that cross a 2^32 boundary (the counter's high word), and
    /// a stream that draws past its given blocks.
    #[test]
    fn blocks_computed_together_are_each_streams_own() {
        let seed = 0x0123_4567_89ab_cdef;
        let first = (1u64 << 32) - 7;
        let (count, blocks) = (37, 3);
        let mut out = vec![[0u32; 4]; count * blocks];
        stream_blocks(seed, first, blocks, &mut out);
        for t in 0..count {
            let id = first + t as u64;
            let mut given =
                TrajectoryRng::with_blocks(seed, id, &out[t * blocks..(t + 1) * blocks]);
            let mut own = TrajectoryRng::new(seed, id);
            for b in 0..blocks + 2 {
                let words: [u32; 4] = std::array::from_fn(|_| own.next_u32());
                if b < blocks {
                    assert_eq!(out[t * blocks + b], words, "trajectory {id}, block {b}");
                }
                let drawn: [u32; 4] = std::array::from_fn(|_| given.next_u32());
                assert_eq!(drawn, words, "trajectory {id}, block {b}");
            }
        }
    }

    /// `stream_uniforms` gives each trajectory's first uniforms as
    /// `TrajectoryRng::uniform` draws them, bit for bit: an odd count per
    /// trajectory (the last block half used), trajectories not a multiple of
    /// sixteen, ids across a 2^32 boundary.
    #[test]
    fn uniforms_computed_together_are_each_streams_own() {
        let seed = 0xfedc_ba98_7654_3210;
        let first = (1u64 << 32) - 9;
        for per in [1, 2, 5] {
            let count = 37;
            let mut out = vec![0.0; count * per];
            stream_uniforms(seed, first, per, &mut out);
            for t in 0..count {
                let id = first + t as u64;
                let mut own = TrajectoryRng::new(seed, id);
                for j in 0..per {
                    assert_eq!(
                        out[t * per + j].to_bits(),
                        own.uniform().to_bits(),
                        "trajectory {id}, draw {j} of {per}"
                    );
                }
            }
        }
    }

    #[test]
    fn streams_differ_by_trajectory_and_seed() {
        let a: Vec<u32> = (0..8)
            .map(|_| 0)
            .scan(TrajectoryRng::new(1, 0), |r, _: u32| Some(r.next_u32()))
            .collect();
        let b: Vec<u32> = (0..8)
            .map(|_| 0)
            .scan(TrajectoryRng::new(1, 1), |r, _: u32| Some(r.next_u32()))
            .collect();
        let c: Vec<u32> = (0..8)
            .map(|_| 0)
            .scan(TrajectoryRng::new(2, 0), |r, _: u32| Some(r.next_u32()))
            .collect();
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn normal_draws_have_unit_moments() {
        let mut rng = TrajectoryRng::new(7, 3);
        let n = 200_000;
        let draws: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        // Standard errors: 1/sqrt(n) ≈ 0.0022 for the mean, sqrt(2/n) ≈ 0.0032 for the variance.
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.015, "variance {var}");
    }

    #[test]
    fn uniform_draws_fill_the_unit_interval() {
        let mut rng = TrajectoryRng::new(11, 5);
        let n = 100_000;
        let mut bins = [0usize; 10];
        for _ in 0..n {
            let u = rng.uniform();
            assert!((0.0..1.0).contains(&u));
            bins[(u * 10.0) as usize] += 1;
        }
        for count in bins {
            // Each bin expects 10_000 with a standard deviation of about 95.
            assert!((9_500..10_500).contains(&count), "bins {bins:?}");
        }
    }
}
