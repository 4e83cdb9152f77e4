//! Which samples a rank sees in an epoch, in which order, and which
//! augmentation / synthetic caption each one uses.
//!
//! `Order::Global` (local stores): the order of an epoch is a seeded
//! permutation of all N samples (or the identity without shuffling). It is cut
//! into `world_size` equal rank shards by striding (rank r takes positions r,
//! r+W, r+2W, ...), after padding the order by wrapping around to a multiple of
//! W, as torch's DistributedSampler does; with `drop_last` the tail is dropped
//! instead, so that shards stay disjoint.
//!
//! `Order::ShardBlock { window }` (remote stores; docs/REMOTE.md): the store's
//! shards are permuted per epoch and their samples laid end to end; rank r
//! takes the r-th contiguous block of that sequence (padded by wrapping around,
//! or the tail dropped, as above), so ranks share at most the shards at block
//! boundaries. Each rank's block is cut into windows of `window` consecutive
//! shards and the samples of each window are shuffled, so a rank reads (and
//! downloads) a window of shards at a time.

use std::ops::Range;
use std::sync::Arc;

use super::rng::{below, hash_key, unit_f64, SplitMix64};

/// Stream ids keep independent draws for the same sample apart.
const STREAM_PERMUTATION: u64 = 1;
const STREAM_AUGMENTATION: u64 = 2;
const STREAM_SYN_CAPTION: u64 = 3;
const STREAM_MIX: u64 = 4;
const STREAM_SHARD_PERMUTATION: u64 = 5;
const STREAM_WINDOW: u64 = 6;

/// How an epoch's sample order is formed (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Global,
    ShardBlock { window: usize },
}

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
    pub order: Order,
    /// Samples per shard, in store order (needed by `Order::ShardBlock`).
    pub shard_sizes: Arc<Vec<usize>>,
}

/// This rank's indices for one epoch.
pub fn rank_indices(cfg: &SamplerConfig, epoch: u64) -> Vec<u64> {
    match cfg.order {
        Order::Global => global_rank_indices(cfg, epoch),
        Order::ShardBlock { window } => shard_block_rank_indices(cfg, epoch, window.max(1)),
    }
}

fn global_rank_indices(cfg: &SamplerConfig, epoch: u64) -> Vec<u64> {
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

/// Runs of consecutive global indices (one per non-empty shard) in this epoch's shard order.
fn shard_runs(cfg: &SamplerConfig, epoch: u64) -> Vec<(usize, Range<u64>)> {
    let mut start = 0u64;
    let mut runs: Vec<(usize, Range<u64>)> = Vec::with_capacity(cfg.shard_sizes.len());
    for (n, &len) in cfg.shard_sizes.iter().enumerate() {
        if len > 0 {
            runs.push((n, start..start + len as u64));
        }
        start += len as u64;
    }
    if cfg.shuffle {
        let mut rng = SplitMix64::new(hash_key(&[cfg.seed, epoch, STREAM_SHARD_PERMUTATION]));
        for i in (1..runs.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            runs.swap(i, j);
        }
    }
    runs
}

/// This rank's contiguous block of the shard-ordered sequence, as (shard, indices) pieces.
fn rank_block(cfg: &SamplerConfig, epoch: u64) -> Vec<(usize, Range<u64>)> {
    let runs = shard_runs(cfg, epoch);
    // offsets[k]: where run k starts in the epoch's sequence.
    let mut offsets = Vec::with_capacity(runs.len());
    let mut total = 0u64;
    for (_, run) in &runs {
        offsets.push(total);
        total += run.end - run.start;
    }
    let per = samples_per_rank(cfg) as u64;
    let (mut pos, to) = (cfg.rank as u64 * per, (cfg.rank as u64 + 1) * per);
    let mut pieces = Vec::new();
    while pos < to && total > 0 {
        // Positions past the end wrap around to the start (padding, as in Order::Global).
        let p = pos % total;
        let k = offsets.partition_point(|&o| o <= p) - 1;
        let (shard, run) = &runs[k];
        let skip = p - offsets[k];
        let take = (run.end - run.start - skip).min(to - pos);
        pieces.push((*shard, run.start + skip..run.start + skip + take));
        pos += take;
    }
    pieces
}

fn shard_block_rank_indices(cfg: &SamplerConfig, epoch: u64, window: usize) -> Vec<u64> {
    let pieces = rank_block(cfg, epoch);
    let mut out = Vec::with_capacity(samples_per_rank(cfg));
    for (w, group) in pieces.chunks(window).enumerate() {
        let first = out.len();
        out.extend(group.iter().flat_map(|(_, r)| r.clone()));
        if cfg.shuffle {
            let block = &mut out[first..];
            let mut rng = SplitMix64::new(hash_key(&[cfg.seed, epoch, STREAM_WINDOW, cfg.rank as u64, w as u64]));
            for i in (1..block.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                block.swap(i, j);
            }
        }
    }
    out
}

/// The shards this rank reads this epoch, in the order it first reads them
/// (what a remote store downloads ahead of need). Global order: every shard.
pub fn shard_plan(cfg: &SamplerConfig, epoch: u64) -> Vec<usize> {
    match cfg.order {
        Order::Global => (0..cfg.shard_sizes.len()).filter(|&n| cfg.shard_sizes[n] > 0).collect(),
        Order::ShardBlock { .. } => {
            let mut seen = vec![false; cfg.shard_sizes.len()];
            let mut plan: Vec<usize> = Vec::new();
            for (shard, _) in rank_block(cfg, epoch) {
                if !std::mem::replace(&mut seen[shard], true) {
                    plan.push(shard);
                }
            }
            plan
        }
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
            order: Order::Global,
            shard_sizes: Arc::new(vec![n]),
        }
    }

    fn blocks(sizes: &[usize], rank: usize, world: usize, drop_last: bool, window: usize) -> SamplerConfig {
        SamplerConfig {
            order: Order::ShardBlock { window },
            shard_sizes: Arc::new(sizes.to_vec()),
            ..cfg(sizes.iter().sum(), rank, world, drop_last)
        }
    }

    fn shard_of(sizes: &[usize], i: u64) -> usize {
        let mut start = 0;
        for (n, &len) in sizes.iter().enumerate() {
            if (i as usize) < start + len {
                return n;
            }
            start += len;
        }
        unreachable!()
    }

    #[test]
    fn shard_block_is_a_seeded_permutation_split_into_rank_blocks() {
        let sizes = [5, 0, 7, 3, 6, 6, 1, 4];
        let n: usize = sizes.iter().sum();
        for world in [1, 2, 3] {
            let per_rank: Vec<Vec<u64>> = (0..world).map(|r| rank_indices(&blocks(&sizes, r, world, true, 2), 9)).collect();
            assert!(per_rank.iter().all(|ix| ix.len() == n / world));
            let mut all: Vec<u64> = per_rank.iter().flatten().copied().collect();
            all.sort();
            all.dedup();
            assert_eq!(all.len(), n / world * world, "disjoint with drop_last");
            // Contiguous blocks: only a shard at a block boundary is read by two ranks.
            let shards_read: usize = per_rank
                .iter()
                .map(|ix| ix.iter().map(|&i| shard_of(&sizes, i)).collect::<std::collections::BTreeSet<_>>().len())
                .sum();
            assert!(shards_read < 7 + world, "world {world}: {shards_read} shard reads");
            // Padded: every sample appears, blocks are equal.
            let padded: Vec<Vec<u64>> = (0..world).map(|r| rank_indices(&blocks(&sizes, r, world, false, 2), 9)).collect();
            let mut all: Vec<u64> = padded.iter().flatten().copied().collect();
            assert!(padded.iter().all(|ix| ix.len() == n.div_ceil(world)));
            all.sort();
            all.dedup();
            assert_eq!(all.len(), n);
        }
        let a = rank_indices(&blocks(&sizes, 0, 1, false, 2), 1);
        assert_eq!(a, rank_indices(&blocks(&sizes, 0, 1, false, 2), 1));
        assert_ne!(a, rank_indices(&blocks(&sizes, 0, 1, false, 2), 2));
    }

    #[test]
    fn shard_block_reads_a_window_of_shards_at_a_time() {
        let sizes = [4usize; 12];
        let window = 3;
        let ix = rank_indices(&blocks(&sizes, 0, 1, false, window), 5);
        let plan = shard_plan(&blocks(&sizes, 0, 1, false, window), 5);
        assert_eq!(plan.len(), 12);
        // Consecutive groups of window*4 samples come from exactly `window` shards, the plan's next ones.
        for (w, chunk) in ix.chunks(window * 4).enumerate() {
            let shards: std::collections::BTreeSet<usize> = chunk.iter().map(|&i| shard_of(&sizes, i)).collect();
            let want: std::collections::BTreeSet<usize> = plan[w * window..(w + 1) * window].iter().copied().collect();
            assert_eq!(shards, want);
        }
        // Unshuffled: the identity.
        let mut c = blocks(&sizes, 0, 1, false, window);
        c.shuffle = false;
        assert_eq!(rank_indices(&c, 0), (0..48).collect::<Vec<u64>>());
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
