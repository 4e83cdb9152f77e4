//! The loader's epoch order as a function (tests, benches, tools that want to
//! know which samples a rank reads where): the same `EpochPlan` the loader runs.

use std::sync::Arc;

use pyo3::prelude::*;

use super::errors::IntoPyResult;
use super::settings::Integer;
use crate::error::Error;
use crate::loader::sampler::{EpochPlan, Order, SamplerConfig};
use crate::loader::settings::{count, integer};

/// Rank `rank`'s sample indices at its epoch positions `[start, start + count)`
/// (clipped to the epoch); with `shard_sizes`, the `shard_block` order with
/// `window`, else the global order. Memory and time are O(count) (plus the
/// rank's shards for `shard_block`), whatever `num_samples` is.
#[pyfunction]
#[pyo3(signature = (num_samples, *, seed=Integer(0), epoch=Integer(0), rank=Integer(0), world_size=Integer(1),
                    start=Integer(0), count=None, shuffle=true, drop_last=false, shard_sizes=None, window=Integer(1)))]
#[pyo3(text_signature = "(num_samples, *, seed=0, epoch=0, rank=0, world_size=1, start=0, count=None, shuffle=True, \
                         drop_last=False, shard_sizes=None, window=1)")]
#[allow(clippy::too_many_arguments)]
fn epoch_indices(
    py: Python<'_>,
    num_samples: Integer,
    seed: Integer,
    epoch: Integer,
    rank: Integer,
    world_size: Integer,
    start: Integer,
    count: Option<Integer>,
    shuffle: bool,
    drop_last: bool,
    shard_sizes: Option<Vec<usize>>,
    window: Integer,
) -> PyResult<Vec<u64>> {
    let num_samples = self::count("num_samples", num_samples.0, 0).py_err()?;
    let world_size = self::count("world_size", world_size.0, 1).py_err()?;
    let rank = self::count("rank", rank.0, 0).py_err()?;
    if rank >= world_size {
        return Err(Error::InvalidArgument(format!(
            "rank must be < world_size (got rank {rank}, world_size {world_size})"
        )))
        .py_err();
    }
    let window = self::count("window", window.0, 1).py_err()?;
    let order = match &shard_sizes {
        Some(sizes) => {
            let total = sizes.iter().try_fold(0usize, |a, &b| a.checked_add(b));
            if total != Some(num_samples) {
                return Err(Error::InvalidArgument(format!(
                    "shard_sizes add up to {total:?}, not num_samples {num_samples}"
                )))
                .py_err();
            }
            Order::ShardBlock { window }
        }
        None => Order::Global,
    };
    let cfg = SamplerConfig {
        num_samples,
        seed: integer("seed", seed.0, 0).py_err()?,
        shuffle,
        drop_last,
        rank,
        world_size,
        batch_size: 1,
        order,
        shard_sizes: Arc::new(shard_sizes.unwrap_or_else(|| vec![num_samples])),
    };
    let epoch = integer("epoch", epoch.0, 0).py_err()?;
    let start = self::count("start", start.0, 0).py_err()?;
    let count = match count {
        Some(c) => self::count("count", c.0, 0).py_err()?,
        None => usize::MAX,
    };
    Ok(py.detach(|| {
        let plan = EpochPlan::new(&cfg, epoch);
        let mut out = Vec::with_capacity(count.min(plan.len().saturating_sub(start)));
        plan.extend(start..start.saturating_add(count), &mut out);
        out
    }))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(epoch_indices, m)?)?;
    Ok(())
}
