//! A tiny deterministic PRNG (SplitMix64) for the seed generator.
//!
//! No clock, no thread RNG: every stream is derived from a fixed constant, a
//! stream tag and an index (for example the patient number), so the output
//! never depends on how many patients are generated. Only integer arithmetic
//! and IEEE basic operations are used, so results are identical everywhere.

/// The population's master seed.
const MASTER_SEED: u64 = 0x00F1_1E6A_7E5E_ED00;

/// Independent streams, so that adding draws to one part of the generator
/// does not shift the random choices of another.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stream {
    /// The patient's main record.
    Patient = 1,
    /// Which sensitive conditions the patient has.
    Sensitive = 2,
}

/// SplitMix64 generator.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    state: u64,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// The generator for `stream` of item `index`.
    pub(crate) fn new(stream: Stream, index: u64) -> Self {
        let seed = mix(MASTER_SEED ^ mix((stream as u64) << 32 ^ index));
        Self { state: seed }
    }

    /// Next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// Uniform integer in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform integer in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// True with probability `per_mille / 1000`.
    pub(crate) fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// Uniform float in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Approximately normal (Irwin-Hall sum of 12 uniforms), clamped to ±3 sd.
    pub(crate) fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let mut sum = 0.0;
        for _ in 0..12 {
            sum += self.unit();
        }
        mean + (sum - 6.0).clamp(-3.0, 3.0) * sd
    }

    /// One element of a non-empty slice.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = self.below(items.len() as u64) as usize;
        &items[i.min(items.len().saturating_sub(1))]
    }

    /// Index chosen by integer weights (the last index when all are 0).
    pub(crate) fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut roll = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if roll < *w {
                return i;
            }
            roll -= w;
        }
        weights.len().saturating_sub(1)
    }

    /// `n` distinct indices from `0..len` in ascending order.
    pub(crate) fn sample_indices(&mut self, len: usize, n: usize) -> Vec<usize> {
        let mut pool: Vec<usize> = (0..len).collect();
        let mut out = Vec::with_capacity(n.min(len));
        for _ in 0..n.min(len) {
            let i = self.below(pool.len() as u64) as usize;
            out.push(pool.swap_remove(i.min(pool.len() - 1)));
        }
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| Rng::new(Stream::Patient, 7).next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Rng::new(Stream::Patient, 7).next_u64(),
            Rng::new(Stream::Sensitive, 7).next_u64()
        );
        assert_ne!(
            Rng::new(Stream::Patient, 7).next_u64(),
            Rng::new(Stream::Patient, 8).next_u64()
        );
    }

    #[test]
    fn helpers_stay_in_bounds() {
        let mut r = Rng::new(Stream::Patient, 1);
        for _ in 0..1000 {
            let v = r.range(3, 5);
            assert!((3..=5).contains(&v));
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            let n = r.normal(10.0, 2.0);
            assert!((4.0..=16.0).contains(&n));
            assert!(r.weighted(&[0, 5, 0]) == 1);
        }
        let s = r.sample_indices(10, 4);
        assert_eq!(s.len(), 4);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
    }
}
