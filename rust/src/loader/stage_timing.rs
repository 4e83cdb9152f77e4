//! The loader's per-sample image work timed stage by stage: decode, crop +
//! resize, RandAugment ops, and the write of a batch row. For benchmarks only:
//! `_core.bench_stage_times` (`benches/bench_per_core.py`) and the callgrind
//! driver `examples/replay_stages.rs` both run this loop.

use std::time::{Duration, Instant};

use super::{BatchMemory, BatchShape, EmbeddingOutput, ImageOutput};
use crate::aug::AugParams;
use crate::error::Result;
use crate::imaging::{Interpolation, Replayer};

/// Summed time of each stage over `samples` replays (divide for per-sample figures).
pub struct StageReport {
    pub decode: Duration,
    pub resize: Duration,
    pub ops: Duration,
    pub write: Duration,
    pub total: Duration,
    pub samples: usize,
}

/// Replay every case `rounds` times as the loader does: one reused replayer,
/// each result written into the next row of a 32-row batch.
pub fn time_stages(
    cases: &[(Vec<u8>, AugParams)],
    size: usize,
    interpolation: Interpolation,
    image: ImageOutput,
    rounds: usize,
) -> Result<StageReport> {
    const ROWS: usize = 32;
    let mut batch = BatchMemory::try_new(BatchShape {
        batch_size: ROWS,
        image_size: size,
        emb_width: 1,
        image,
        embedding: EmbeddingOutput::Float16,
    })?;
    let mut hwc = vec![0u8; size * size * 3];
    let mut replayer = Replayer::new()?;
    replayer.set_stage_timing(true);
    let (mut write, mut samples) = (Duration::ZERO, 0usize);
    let start = Instant::now();
    for _ in 0..rounds {
        for (jpeg, aug) in cases {
            replayer.replay("bench", jpeg, aug, size, interpolation, &mut hwc)?;
            let t0 = Instant::now();
            batch.put_image(samples % ROWS, &hwc);
            write += t0.elapsed();
            samples += 1;
        }
    }
    let total = start.elapsed();
    let stages = replayer.stage_times().expect("stage timing was switched on");
    Ok(StageReport { decode: stages.decode, resize: stages.resize, ops: stages.ops, write, total, samples })
}
