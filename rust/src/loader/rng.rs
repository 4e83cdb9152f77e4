//! Counter-based randomness: every draw is a pure function of its key
//! (seed, epoch, sample, stream), so results never depend on thread count,
//! scheduling or how far a previous run got. SplitMix64 finaliser: small,
//! well-mixed, and stable forever (no crate version can change it).

#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash an ordered tuple of words into one well-mixed word.
#[inline]
pub fn hash_key(words: &[u64]) -> u64 {
    words.iter().fold(0x6A09_E667_F3BC_C908, |h, &w| mix64(h ^ w))
}

/// Uniform integer in `0..n` (n > 0), unbiased by rejection (Lemire's method).
#[inline]
pub fn below(key: u64, n: u64) -> u64 {
    debug_assert!(n > 0);
    let mut x = mix64(key);
    let mut m = (x as u128) * (n as u128);
    let threshold = n.wrapping_neg() % n;
    let mut round = key;
    while (m as u64) < threshold {
        round = round.wrapping_add(1);
        x = mix64(round ^ 0xD1B5_4A32_D192_ED03);
        m = (x as u128) * (n as u128);
    }
    (m >> 64) as u64
}

/// Uniform float in [0, 1) with 53 random bits.
#[inline]
pub fn unit_f64(key: u64) -> f64 {
    (mix64(key) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A small sequential generator (for the Fisher-Yates shuffle).
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        below(self.next_u64(), n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut counts = [0u32; 7];
        for i in 0..70_000u64 {
            let v = below(hash_key(&[42, i]), 7);
            counts[v as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn unit_is_in_unit_interval() {
        for i in 0..10_000u64 {
            let u = unit_f64(hash_key(&[i]));
            assert!((0.0..1.0).contains(&u));
        }
    }
}
