//! Which samples a rank sees in an epoch, in which order, and which
//! augmentation / synthetic caption each one uses.
//!
//! The global order of an epoch is a seeded permutation of all N samples (or
//! the identity without shuffling). It is cut into `world_size` equal rank
//! shards by striding (rank r takes positions r, r+W, r+2W, ...), after
//! padding the order by wrapping around to a multiple of W, as
//! torch's DistributedSampler does; with `drop_last` the tail is dropped
//! instead, so that shards stay disjoint.

use super::rng::{below, hash_key, unit_f64, SplitMix64};

/// Stream ids keep independent draws for the same sample apart.
const STREAM_PERMUTATION: u64 = 1;
const STREAM_AUGMENTATION: u64 = 2;
const STREAM_SYN_CAPTION: u64 = 3;
const STREAM_MIX: u64 = 4;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CaptionMode {
    /// Real caption and one synthetic caption per sample (the reference).
    Both,
    /// The `text` slot holds a synthetic caption with probability `p`, else the real one.
    Mix(f64),
}

#[derive(Clone, Debug)]
pub struct SamplerConfig {
    pub num_samples: usize,
    pub seed: u64,
    pub shuffle: bool,
    pub drop_last: bool,
    pub rank: usize,
    pub world_size: usize,
    pub batch_size: usize,
}

/// This rank's indices for one epoch.
pub fn rank_indices(cfg: &SamplerConfig, epoch: u64) -> Vec<u64> {
    let n = cfg.num_samples;
    let mut order: Vec<u64> = (0..n as u64).collect();
    if cfg.shuffle {
        let mut rng = SplitMix64::new(hash_key(&[cfg.seed, epoch, STREAM_PERMUTATION]));
        for i in (1..n).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
    }
    let w = cfg.world_size;
    // Positions rank, rank + W, ... of the padded (or cut) order; counted, so
    // that a huge world size cannot overflow `per_rank * W`.
    (0..samples_per_rank(cfg))
        .map(|k| order[((cfg.rank as u128 + k as u128 * w as u128) % n.max(1) as u128) as usize])
        .collect()
}

/// Samples this rank sees per epoch (the padded or cut shard length).
pub fn samples_per_rank(cfg: &SamplerConfig) -> usize {
    let (n, w) = (cfg.num_samples, cfg.world_size);
    if cfg.drop_last {
        n / w
    } else {
        n.div_ceil(w)
    }
}

/// Number of batches per epoch on this rank.
pub fn num_batches(cfg: &SamplerConfig) -> usize {
    let per_rank = samples_per_rank(cfg);
    if cfg.drop_last {
        per_rank / cfg.batch_size
    } else {
        per_rank.div_ceil(cfg.batch_size)
    }
}

/// The augmentation index (0..J) sample `index` uses in `epoch`.
pub fn augmentation_choice(seed: u64, epoch: u64, index: u64, num_augs: usize) -> usize {
    below(hash_key(&[seed, epoch, index, STREAM_AUGMENTATION]), num_augs as u64) as usize
}

/// The synthetic caption index (0..S) sample `index` uses in `epoch`.
pub fn syn_caption_choice(seed: u64, epoch: u64, index: u64, num_syn: usize) -> usize {
    below(hash_key(&[seed, epoch, index, STREAM_SYN_CAPTION]), num_syn as u64) as usize
}

/// In `Mix(p)` mode: whether the `text` slot takes the synthetic caption.
pub fn mix_takes_synthetic(seed: u64, epoch: u64, index: u64, p: f64) -> bool {
    unit_f64(hash_key(&[seed, epoch, index, STREAM_MIX])) < p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(n: usize, rank: usize, world: usize, drop_last: bool) -> SamplerConfig {
        SamplerConfig {
            num_samples: n,
            seed: 7,
            shuffle: true,
            drop_last,
            rank,
            world_size: world,
            batch_size: 4,
        }
    }

    #[test]
    fn permutation_is_complete_and_seeded() {
        let a = rank_indices(&cfg(101, 0, 1, false), 3);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..101).collect::<Vec<_>>());
        assert_eq!(a, rank_indices(&cfg(101, 0, 1, false), 3));
        assert_ne!(a, rank_indices(&cfg(101, 0, 1, false), 4));
    }

    #[test]
    fn rank_shards_are_disjoint_complete_equal() {
        let world = 4;
        let shards: Vec<_> = (0..world).map(|r| rank_indices(&cfg(100, r, world, false), 0)).collect();
        let mut all: Vec<u64> = shards.iter().flatten().copied().collect();
        assert!(shards.iter().all(|s| s.len() == 25));
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn uneven_shards_pad_or_drop() {
        let padded: Vec<_> = (0..3).map(|r| rank_indices(&cfg(10, r, 3, false), 0)).collect();
        assert!(padded.iter().all(|s| s.len() == 4));
        let mut union: Vec<u64> = padded.iter().flatten().copied().collect();
        union.sort();
        union.dedup();
        assert_eq!(union.len(), 10);
        let dropped: Vec<_> = (0..3).map(|r| rank_indices(&cfg(10, r, 3, true), 0)).collect();
        assert!(dropped.iter().all(|s| s.len() == 3));
        let mut all: Vec<u64> = dropped.iter().flatten().copied().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 9);
    }

    #[test]
    fn huge_world_sizes_and_batches_do_not_overflow() {
        let mut c = cfg(10, 3, usize::MAX, false);
        assert_eq!(samples_per_rank(&c), 1);
        assert_eq!(rank_indices(&c, 0).len(), 1); // padded: one sample per rank
        c.rank = usize::MAX - 1;
        assert_eq!(rank_indices(&c, 0).len(), 1);
        c.drop_last = true;
        assert!(rank_indices(&c, 0).is_empty());
        assert_eq!(num_batches(&c), 0);
        let mut b = cfg(10, 0, 1, false);
        b.batch_size = usize::MAX;
        assert_eq!(num_batches(&b), 1);
    }

    #[test]
    fn batch_counts() {
        assert_eq!(num_batches(&cfg(10, 0, 1, false)), 3);
        assert_eq!(num_batches(&cfg(10, 0, 1, true)), 2);
        assert_eq!(num_batches(&cfg(10, 0, 3, false)), 1);
    }
}
