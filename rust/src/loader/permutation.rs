//! A keyed bijection of `[0, n)` evaluated one position at a time: a balanced
//! Feistel network on the smallest even-bit power of two that holds `n`, with
//! cycle walking (apply again until the value falls inside `[0, n)`). Memory is
//! O(1) and a position costs a few rounds of `mix64` whatever `n` is, so a rank
//! of a billion-sample epoch computes its own indices lazily and a resumed
//! epoch starts straight at its position.
//!
//! Why it is a bijection: each round maps `(l, r)` to `(r, l ^ F(r))`, which is
//! invertible, so the network permutes `[0, 2^(2h))`; cycle walking a permutation
//! from a point inside `[0, n)` reaches the next point of its cycle inside
//! `[0, n)`, which restricts it to a permutation of `[0, n)`. The domain is at
//! most 4n, so a position walks fewer than 4 steps on average.

use super::rng::{hash_key, mix64};

/// Rounds of the network: well past the 4 of Luby-Rackoff, so that the
/// permutations look random to simple statistics even on small domains.
const ROUNDS: usize = 8;

#[derive(Clone, Debug)]
pub struct Permutation {
    n: u64,
    half_bits: u32,
    mask: u64,
    keys: [u64; ROUNDS],
}

impl Permutation {
    /// The permutation of `[0, n)` keyed by `key` (any value: distinct keys give
    /// independent-looking permutations).
    pub fn new(n: u64, key: u64) -> Permutation {
        // Bits needed for n - 1, split into two equal halves (at least one bit each).
        let bits = if n <= 1 { 0 } else { 64 - (n - 1).leading_zeros() };
        let half_bits = bits.div_ceil(2).max(1);
        let mask = if half_bits >= 64 { u64::MAX } else { (1u64 << half_bits) - 1 };
        let mut keys = [0u64; ROUNDS];
        for (r, k) in keys.iter_mut().enumerate() {
            *k = hash_key(&[key, r as u64]);
        }
        Permutation { n, half_bits, mask, keys }
    }

    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The value at position `i` (`i < n`).
    #[inline]
    pub fn apply(&self, i: u64) -> u64 {
        debug_assert!(i < self.n, "position {i} outside [0, {})", self.n);
        if self.n <= 1 {
            return i;
        }
        let mut x = i;
        loop {
            x = self.network(x);
            if x < self.n {
                return x;
            }
        }
    }

    #[inline]
    fn network(&self, x: u64) -> u64 {
        let h = self.half_bits;
        let (mut l, mut r) = (x >> h, x & self.mask);
        for &k in &self.keys {
            let t = l ^ (mix64(r ^ k) & self.mask);
            l = r;
            r = t;
        }
        (l << h) | r
    }
}

#[cfg(test)]
pub(crate) mod quality {
    //! Statistics a random permutation passes and a structured one (identity,
    //! rotation, reversal) fails: used by the tests here and in `sampler`.

    /// Spearman rank correlation between position and value (both are ranks
    /// already): about N(0, 1/(n-1)) for a random permutation.
    pub fn position_correlation(perm: &[u64]) -> f64 {
        let n = perm.len() as f64;
        let mean = (n - 1.0) / 2.0;
        let var = (n * n - 1.0) / 12.0;
        let cov: f64 = perm.iter().enumerate().map(|(i, &v)| (i as f64 - mean) * (v as f64 - mean)).sum::<f64>() / n;
        cov / var
    }

    /// Chi-square statistic of where each of `groups` consecutive index ranges
    /// lands among `bins` equal position ranges (a contingency table with
    /// uniform expectation). A random permutation gives about (groups-1)(bins-1).
    pub fn range_position_chi_square(perm: &[u64], groups: usize, bins: usize) -> (f64, usize) {
        let n = perm.len();
        let mut counts = vec![0f64; groups * bins];
        for (pos, &v) in perm.iter().enumerate() {
            let g = (v as usize * groups) / n;
            let b = (pos * bins) / n;
            counts[g * bins + b] += 1.0;
        }
        let mut chi = 0.0;
        for g in 0..groups {
            let row: f64 = (0..bins).map(|b| counts[g * bins + b]).sum();
            for b in 0..bins {
                let col: f64 = (0..groups).map(|h| counts[h * bins + b]).sum();
                let expect = row * col / n as f64;
                if expect > 0.0 {
                    chi += (counts[g * bins + b] - expect).powi(2) / expect;
                }
            }
        }
        (chi, (groups - 1) * (bins - 1))
    }

    /// Kolmogorov-Smirnov distance between the displacement `|value - position|`
    /// of a random permutation (density 2(n-d)/n^2, in units of n) and the observed one.
    pub fn displacement_ks(perm: &[u64]) -> f64 {
        let n = perm.len() as f64;
        let mut d: Vec<f64> = perm.iter().enumerate().map(|(i, &v)| (v as f64 - i as f64).abs() / n).collect();
        d.sort_by(|a, b| a.partial_cmp(b).unwrap());
        // CDF of |U - V| for independent uniforms: 1 - (1 - x)^2.
        d.iter()
            .enumerate()
            .map(|(k, &x)| {
                let cdf = 1.0 - (1.0 - x).powi(2);
                ((k as f64 + 1.0) / n - cdf).abs().max((cdf - k as f64 / n).abs())
            })
            .fold(0.0, f64::max)
    }

    /// All three tests at a level a random permutation fails about once in 10^4+.
    pub fn looks_random(perm: &[u64]) -> Result<(), String> {
        let n = perm.len() as f64;
        let rho = position_correlation(perm);
        if rho.abs() > 4.5 / (n - 1.0).sqrt() {
            return Err(format!("position correlation {rho:.4} (n = {n})"));
        }
        let (chi, dof) = range_position_chi_square(perm, 16, 16);
        // Normal approximation of chi-square: mean dof, sd sqrt(2 dof).
        if chi > dof as f64 + 5.0 * (2.0 * dof as f64).sqrt() {
            return Err(format!("range/position chi-square {chi:.1} on {dof} degrees of freedom"));
        }
        let ks = displacement_ks(perm);
        if ks > 2.0 / n.sqrt() {
            return Err(format!("displacement KS distance {ks:.4}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::quality::looks_random;
    use super::*;

    fn all(p: &Permutation) -> Vec<u64> {
        (0..p.len()).map(|i| p.apply(i)).collect()
    }

    #[test]
    fn bijective_for_every_small_n_and_several_keys() {
        for n in 0..=600u64 {
            for key in [0, 1, 0xDEAD_BEEF, u64::MAX] {
                let mut v = all(&Permutation::new(n, key));
                v.sort_unstable();
                assert_eq!(v, (0..n).collect::<Vec<_>>(), "n {n} key {key}");
            }
        }
        // Powers of two and their neighbours, where the domain is tight or 4x.
        for bits in 10..=16 {
            for n in [(1u64 << bits) - 1, 1 << bits, (1 << bits) + 1] {
                let mut v = all(&Permutation::new(n, bits as u64));
                v.sort_unstable();
                assert!(v.iter().enumerate().all(|(i, &x)| i as u64 == x), "n {n}");
            }
        }
    }

    #[test]
    fn huge_domains_stay_in_range_and_distinct() {
        for n in [1_280_000_000u64, (1 << 40) + 3, u64::MAX] {
            let p = Permutation::new(n, 9);
            let mut seen: Vec<u64> =
                (0..2000).map(|i| p.apply(i)).chain((0..2000).map(|i| p.apply(n - 1 - i))).collect();
            assert!(seen.iter().all(|&x| x < n));
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), 4000);
        }
    }

    #[test]
    fn keyed_and_deterministic() {
        let a = all(&Permutation::new(1000, 1));
        assert_eq!(a, all(&Permutation::new(1000, 1)));
        let b = all(&Permutation::new(1000, 2));
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        assert!(same < 10, "{same} fixed points shared by two keys");
    }

    #[test]
    fn passes_statistics_that_structured_orders_fail() {
        for (n, key) in [(10_000u64, 1u64), (65_537, 2), (100_003, 3), (1 << 17, 4), (3_000, 5)] {
            let perm = all(&Permutation::new(n, key));
            looks_random(&perm).unwrap_or_else(|e| panic!("n {n} key {key}: {e}"));
        }
        let n = 10_000u64;
        let identity: Vec<u64> = (0..n).collect();
        let half_rotation: Vec<u64> = (0..n).map(|i| (i + n / 2) % n).collect();
        let small_rotation: Vec<u64> = (0..n).map(|i| (i + 7) % n).collect();
        let reversal: Vec<u64> = (0..n).rev().collect();
        for bad in [identity, half_rotation, small_rotation, reversal] {
            assert!(looks_random(&bad).is_err());
        }
    }
}
