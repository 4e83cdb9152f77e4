//! One stored augmentation entry (`param_aug[j]` of DataCompDR) as a fixed
//! 40-byte little-endian record. Shared by the store (which holds J of them per
//! sample), the imaging replay (which applies one) and the loader.
//!
//! Layout (offsets in bytes):
//! ```text
//!  0  f64  m0      magnitude of RandAugment op 0 (signed, as stored upstream)
//!  8  f64  m1      magnitude of RandAugment op 1
//! 16  i32  top     crop box, in pixels of the *stored* image
//! 20  i32  left
//! 24  i32  height
//! 28  i32  width
//! 32  u8   op0     RandAugment op index 0..=13 (see `Op`)
//! 33  u8   op1
//! 34  u8   n_ops   how many of (op0, op1) apply, 0..=2
//! 35  u8   flags   bit 0: null entry (upstream `null`); bit 1: horizontal flip
//! 36  [u8;4]       zero
//! ```
//! Magnitudes are f64 because the upstream values are JSON doubles and the
//! affine matrices derived from them must match Python's arithmetic exactly.

pub const AUG_RECORD_SIZE: usize = 40;
pub const FLAG_NULL: u8 = 1;
pub const FLAG_HFLIP: u8 = 2;
pub const NUM_OPS: u8 = 14;

/// RandAugment op indices, in torchvision's `RandAugment._augmentation_space` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    Identity = 0,
    ShearX = 1,
    ShearY = 2,
    TranslateX = 3,
    TranslateY = 4,
    Rotate = 5,
    Brightness = 6,
    Color = 7,
    Contrast = 8,
    Sharpness = 9,
    Posterize = 10,
    Solarize = 11,
    AutoContrast = 12,
    Equalize = 13,
}

impl Op {
    pub fn from_index(i: u8) -> Option<Op> {
        use Op::*;
        Some(match i {
            0 => Identity,
            1 => ShearX,
            2 => ShearY,
            3 => TranslateX,
            4 => TranslateY,
            5 => Rotate,
            6 => Brightness,
            7 => Color,
            8 => Contrast,
            9 => Sharpness,
            10 => Posterize,
            11 => Solarize,
            12 => AutoContrast,
            13 => Equalize,
            _ => return None,
        })
    }
}

/// A decoded augmentation entry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AugParams {
    /// Crop box (top, left, height, width) in stored-image pixels; may extend past the image.
    pub top: i32,
    pub left: i32,
    pub height: i32,
    pub width: i32,
    /// The RandAugment ops to apply, in order; only the first `n_ops` are used.
    pub ops: [(Op, f64); 2],
    pub n_ops: u8,
    pub is_null: bool,
    pub hflip: bool,
}

impl AugParams {
    /// The entry used for upstream `null`: the whole image, no ops.
    pub fn null(image_width: i32, image_height: i32) -> Self {
        AugParams {
            top: 0,
            left: 0,
            height: image_height,
            width: image_width,
            ops: [(Op::Identity, 0.0); 2],
            n_ops: 0,
            is_null: true,
            hflip: false,
        }
    }

    pub fn active_ops(&self) -> &[(Op, f64)] {
        &self.ops[..self.n_ops as usize]
    }

    /// Parse one record; `None` when the bytes cannot be a valid record
    /// (bad op index, n_ops > 2, non-positive crop size, unknown flag bits, non-finite magnitude).
    pub fn decode(rec: &[u8]) -> Option<AugParams> {
        if rec.len() != AUG_RECORD_SIZE {
            return None;
        }
        let f64_at = |o: usize| f64::from_le_bytes(rec[o..o + 8].try_into().unwrap());
        let i32_at = |o: usize| i32::from_le_bytes(rec[o..o + 4].try_into().unwrap());
        let (m0, m1) = (f64_at(0), f64_at(8));
        let (op0, op1, n_ops, flags) = (rec[32], rec[33], rec[34], rec[35]);
        if n_ops > 2 || flags & !(FLAG_NULL | FLAG_HFLIP) != 0 || !m0.is_finite() || !m1.is_finite() {
            return None;
        }
        let p = AugParams {
            top: i32_at(16),
            left: i32_at(20),
            height: i32_at(24),
            width: i32_at(28),
            ops: [(Op::from_index(op0)?, m0), (Op::from_index(op1)?, m1)],
            n_ops,
            is_null: flags & FLAG_NULL != 0,
            hflip: flags & FLAG_HFLIP != 0,
        };
        if p.height <= 0 || p.width <= 0 {
            return None;
        }
        Some(p)
    }

    pub fn encode(&self) -> [u8; AUG_RECORD_SIZE] {
        let mut rec = [0u8; AUG_RECORD_SIZE];
        rec[0..8].copy_from_slice(&self.ops[0].1.to_le_bytes());
        rec[8..16].copy_from_slice(&self.ops[1].1.to_le_bytes());
        rec[16..20].copy_from_slice(&self.top.to_le_bytes());
        rec[20..24].copy_from_slice(&self.left.to_le_bytes());
        rec[24..28].copy_from_slice(&self.height.to_le_bytes());
        rec[28..32].copy_from_slice(&self.width.to_le_bytes());
        rec[32] = self.ops[0].0 as u8;
        rec[33] = self.ops[1].0 as u8;
        rec[34] = self.n_ops;
        rec[35] = ((self.is_null as u8) * FLAG_NULL) | ((self.hflip as u8) * FLAG_HFLIP);
        rec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip() {
        let p = AugParams {
            top: -3,
            left: 7,
            height: 100,
            width: 120,
            ops: [(Op::Rotate, -9.0), (Op::Solarize, 178.5)],
            n_ops: 2,
            is_null: false,
            hflip: true,
        };
        assert_eq!(AugParams::decode(&p.encode()), Some(p));
    }

    #[test]
    fn rejects_bad_records() {
        let good = AugParams::null(10, 10).encode();
        let mut bad_op = good;
        bad_op[32] = 14;
        assert_eq!(AugParams::decode(&bad_op), None);
        let mut bad_n = good;
        bad_n[34] = 3;
        assert_eq!(AugParams::decode(&bad_n), None);
        let mut bad_size = good;
        bad_size[24..28].copy_from_slice(&0i32.to_le_bytes());
        assert_eq!(AugParams::decode(&bad_size), None);
        assert_eq!(AugParams::decode(&good[..39]), None);
    }
}
