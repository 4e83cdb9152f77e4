//! The four sizes that shape every sample of a store.

use serde::{Deserialize, Serialize};

/// J augmentations, S synthetic captions, K teachers of D dimensions each.
/// In JSON (the manifest) it is `{"J", "S", "K", "D"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dims {
    #[serde(rename = "J")]
    pub j: usize,
    #[serde(rename = "S")]
    pub s: usize,
    #[serde(rename = "K")]
    pub k: usize,
    #[serde(rename = "D")]
    pub d: usize,
}

impl Dims {
    /// Elements of one embedding row (all teachers concatenated): K*D.
    pub fn row_len(&self) -> usize {
        self.k * self.d
    }

    /// Embedding rows per sample in `text_emb`: the real caption plus S synthetic ones.
    pub fn text_rows(&self) -> usize {
        1 + self.s
    }

    /// Bytes every row of a shard occupies at least, whatever its variable-size
    /// columns hold: its J aug records and its image and text embedding rows.
    /// Bounds how many rows a shard of a given byte size can have. `None` on overflow.
    pub fn min_row_bytes(&self, itemsize: usize) -> Option<u64> {
        let aug = (self.j as u64).checked_mul(crate::aug::AUG_RECORD_SIZE as u64)?;
        let rows = (self.j as u64).checked_add(self.text_rows() as u64)?;
        let emb = rows.checked_mul(self.row_len() as u64)?.checked_mul(itemsize as u64)?;
        aug.checked_add(emb)
    }

    /// Every size must be at least 1 (an empty fixed-size list cannot carry rows) and
    /// the per-sample element counts must fit Arrow's i32 list sizes.
    pub fn check(&self) -> Result<(), String> {
        let Dims { j, s, k, d } = *self;
        if j == 0 || s == 0 || k == 0 || d == 0 {
            return Err(format!("dims must all be >= 1, got J={j} S={s} K={k} D={d}"));
        }
        let biggest = [j * k * d, (1 + s) * k * d, j * crate::aug::AUG_RECORD_SIZE];
        if biggest.iter().any(|&n| n > i32::MAX as usize) {
            return Err(format!("dims J={j} S={s} K={k} D={d} exceed Arrow's per-row size limit"));
        }
        Ok(())
    }
}
