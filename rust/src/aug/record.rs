//! One stored augmentation entry (`param_aug[j]` of DataCompDR) as a fixed
//! 40-byte little-endian record. Shared by the store (which holds J of them per
//! sample), the imaging replay (which applies one) and the loader; Python builds
//! its numpy dtype from `FIELDS`.
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
//! 36  [u8;4] pad   zero
//! ```
//! Magnitudes are f64 because the upstream values are JSON doubles and the
//! affine matrices derived from them must match Python's arithmetic exactly.
//! Every byte is checked on decode (unused ops and the pad included), so equal
//! parameters always mean equal bytes.

use super::op::{Op, NUM_OPS};

pub const AUG_RECORD_SIZE: usize = 40;
pub const FLAG_NULL: u8 = 1;
pub const FLAG_HFLIP: u8 = 2;
/// Upstream entries hold at most this many RandAugment ops (`RandAugment(num_ops=2)`).
pub const MAX_OPS_PER_ENTRY: usize = 2;

/// Byte offsets of the fields (the table below and the codec both use these).
mod at {
    pub const M0: usize = 0;
    pub const M1: usize = 8;
    pub const TOP: usize = 16;
    pub const LEFT: usize = 20;
    pub const HEIGHT: usize = 24;
    pub const WIDTH: usize = 28;
    pub const OP0: usize = 32;
    pub const OP1: usize = 33;
    pub const N_OPS: usize = 34;
    pub const FLAGS: usize = 35;
    pub const PAD: usize = 36;
}
const PAD_LEN: usize = AUG_RECORD_SIZE - at::PAD;

/// The little-endian type of one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    F64,
    I32,
    U8,
    /// `n` zero bytes.
    Pad(usize),
}

impl FieldKind {
    pub const fn size(self) -> usize {
        match self {
            FieldKind::F64 => 8,
            FieldKind::I32 => 4,
            FieldKind::U8 => 1,
            FieldKind::Pad(n) => n,
        }
    }
}

/// One named field of the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub kind: FieldKind,
    pub offset: usize,
}

/// The record layout, in offset order; the Python `AUG_DTYPE` is built from it.
pub const FIELDS: [Field; 11] = [
    Field { name: "m0", kind: FieldKind::F64, offset: at::M0 },
    Field { name: "m1", kind: FieldKind::F64, offset: at::M1 },
    Field { name: "top", kind: FieldKind::I32, offset: at::TOP },
    Field { name: "left", kind: FieldKind::I32, offset: at::LEFT },
    Field { name: "height", kind: FieldKind::I32, offset: at::HEIGHT },
    Field { name: "width", kind: FieldKind::I32, offset: at::WIDTH },
    Field { name: "op0", kind: FieldKind::U8, offset: at::OP0 },
    Field { name: "op1", kind: FieldKind::U8, offset: at::OP1 },
    Field { name: "n_ops", kind: FieldKind::U8, offset: at::N_OPS },
    Field { name: "flags", kind: FieldKind::U8, offset: at::FLAGS },
    Field { name: "pad", kind: FieldKind::Pad(PAD_LEN), offset: at::PAD },
];

/// Why some parameters or bytes are not a valid record.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum InvalidRecord {
    #[error("augmentation record must be {AUG_RECORD_SIZE} bytes, got {0}")]
    Size(usize),
    #[error("crop box {} does not fit int32", show_box(.0))]
    BoxNotInt32([i64; 4]),
    #[error("crop box {} is empty: height and width must be positive", show_box(.0))]
    EmptyBox([i64; 4]),
    #[error("at most {MAX_OPS_PER_ENTRY} RandAugment ops per entry, got {0}")]
    TooManyOps(usize),
    #[error("RandAugment op index {0} is not in 0..{last}", last = NUM_OPS - 1)]
    OpIndex(i64),
    #[error("RandAugment magnitude {0} is not finite")]
    Magnitude(f64),
    #[error("flags {0:#04x} has bits other than null ({FLAG_NULL}) and hflip ({FLAG_HFLIP})")]
    Flags(u8),
    #[error("pad bytes {0:?} are not zero")]
    Pad([u8; PAD_LEN]),
}

/// A box as (top, left, height, width), the order of upstream entries.
fn show_box(b: &[i64; 4]) -> String {
    format!("({}, {}, {}, {})", b[0], b[1], b[2], b[3])
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

    /// A valid entry from its parts: box (top, left, height, width) and up to
    /// two (op index, magnitude). The same rule `validate` applies to bytes.
    pub fn new(b: [i64; 4], ops: &[(i64, f64)], is_null: bool, hflip: bool) -> Result<Self, InvalidRecord> {
        let [top, left, height, width] = b.map(i32::try_from);
        let (Ok(top), Ok(left), Ok(height), Ok(width)) = (top, left, height, width) else {
            return Err(InvalidRecord::BoxNotInt32(b));
        };
        if height < 1 || width < 1 {
            return Err(InvalidRecord::EmptyBox(b));
        }
        if ops.len() > MAX_OPS_PER_ENTRY {
            return Err(InvalidRecord::TooManyOps(ops.len()));
        }
        let mut pairs = [(Op::Identity, 0.0); 2];
        for (slot, &(index, m)) in pairs.iter_mut().zip(ops) {
            let op = u8::try_from(index).ok().and_then(Op::from_index).ok_or(InvalidRecord::OpIndex(index))?;
            if !m.is_finite() {
                return Err(InvalidRecord::Magnitude(m));
            }
            *slot = (op, m);
        }
        Ok(AugParams { top, left, height, width, ops: pairs, n_ops: ops.len() as u8, is_null, hflip })
    }

    pub fn active_ops(&self) -> &[(Op, f64)] {
        &self.ops[..self.n_ops as usize]
    }

    /// Parse one record, checking every byte: op indices (unused ones too),
    /// n_ops <= 2, finite magnitudes, known flag bits, positive crop size, zero pad.
    pub fn validate(rec: &[u8]) -> Result<AugParams, InvalidRecord> {
        let rec: &[u8; AUG_RECORD_SIZE] = rec.try_into().map_err(|_| InvalidRecord::Size(rec.len()))?;
        let f64_at = |o: usize| f64::from_le_bytes(rec[o..o + 8].try_into().expect("8 bytes"));
        let i32_at = |o: usize| i32::from_le_bytes(rec[o..o + 4].try_into().expect("4 bytes"));
        let n_ops = rec[at::N_OPS];
        if n_ops as usize > MAX_OPS_PER_ENTRY {
            return Err(InvalidRecord::TooManyOps(n_ops as usize));
        }
        let mut ops = [(Op::Identity, 0.0); 2];
        for (slot, (op_at, m_at)) in ops.iter_mut().zip([(at::OP0, at::M0), (at::OP1, at::M1)]) {
            let op = Op::from_index(rec[op_at]).ok_or(InvalidRecord::OpIndex(rec[op_at] as i64))?;
            let m = f64_at(m_at);
            if !m.is_finite() {
                return Err(InvalidRecord::Magnitude(m));
            }
            *slot = (op, m);
        }
        let flags = rec[at::FLAGS];
        if flags & !(FLAG_NULL | FLAG_HFLIP) != 0 {
            return Err(InvalidRecord::Flags(flags));
        }
        let pad: [u8; PAD_LEN] = rec[at::PAD..].try_into().expect("pad length");
        if pad != [0; PAD_LEN] {
            return Err(InvalidRecord::Pad(pad));
        }
        let (top, left, height, width) = (i32_at(at::TOP), i32_at(at::LEFT), i32_at(at::HEIGHT), i32_at(at::WIDTH));
        if height < 1 || width < 1 {
            return Err(InvalidRecord::EmptyBox([top, left, height, width].map(i64::from)));
        }
        Ok(AugParams {
            top,
            left,
            height,
            width,
            ops,
            n_ops,
            is_null: flags & FLAG_NULL != 0,
            hflip: flags & FLAG_HFLIP != 0,
        })
    }

    /// `validate`, for callers that only need to know whether the bytes are a record.
    pub fn decode(rec: &[u8]) -> Option<AugParams> {
        Self::validate(rec).ok()
    }

    pub fn encode(&self) -> [u8; AUG_RECORD_SIZE] {
        let mut rec = [0u8; AUG_RECORD_SIZE];
        rec[at::M0..at::M0 + 8].copy_from_slice(&self.ops[0].1.to_le_bytes());
        rec[at::M1..at::M1 + 8].copy_from_slice(&self.ops[1].1.to_le_bytes());
        rec[at::TOP..at::TOP + 4].copy_from_slice(&self.top.to_le_bytes());
        rec[at::LEFT..at::LEFT + 4].copy_from_slice(&self.left.to_le_bytes());
        rec[at::HEIGHT..at::HEIGHT + 4].copy_from_slice(&self.height.to_le_bytes());
        rec[at::WIDTH..at::WIDTH + 4].copy_from_slice(&self.width.to_le_bytes());
        rec[at::OP0] = self.ops[0].0 as u8;
        rec[at::OP1] = self.ops[1].0 as u8;
        rec[at::N_OPS] = self.n_ops;
        rec[at::FLAGS] = ((self.is_null as u8) * FLAG_NULL) | ((self.hflip as u8) * FLAG_HFLIP);
        rec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_tile_the_record_exactly() {
        let mut next = 0;
        for f in FIELDS {
            assert_eq!(f.offset, next, "{} starts where the previous field ends", f.name);
            next += f.kind.size();
        }
        assert_eq!(next, AUG_RECORD_SIZE);
    }

    #[test]
    fn record_round_trip_and_hand_computed_bytes() {
        let p = AugParams::new([-3, 7, 100, 120], &[(5, -9.0), (11, 178.5)], false, true).unwrap();
        assert_eq!(AugParams::validate(&p.encode()), Ok(p));
        let mut want = Vec::new();
        want.extend((-9.0f64).to_le_bytes());
        want.extend(178.5f64.to_le_bytes());
        for v in [-3i32, 7, 100, 120] {
            want.extend(v.to_le_bytes());
        }
        want.extend([5, 11, 2, FLAG_HFLIP, 0, 0, 0, 0]);
        assert_eq!(p.encode().as_slice(), want.as_slice());
    }

    #[test]
    fn rejects_bad_records_with_the_reason() {
        let good = AugParams::null(10, 10).encode();
        let broken = |at: usize, v: u8| {
            let mut r = good;
            r[at] = v;
            AugParams::validate(&r)
        };
        assert_eq!(broken(32, 14), Err(InvalidRecord::OpIndex(14)));
        assert_eq!(broken(33, 200), Err(InvalidRecord::OpIndex(200)), "unused ops are checked too");
        assert_eq!(broken(34, 3), Err(InvalidRecord::TooManyOps(3)));
        assert_eq!(broken(35, 4), Err(InvalidRecord::Flags(4)));
        assert_eq!(broken(39, 1), Err(InvalidRecord::Pad([0, 0, 0, 1])));
        let mut empty = good;
        empty[24..28].copy_from_slice(&0i32.to_le_bytes());
        assert_eq!(AugParams::validate(&empty), Err(InvalidRecord::EmptyBox([0, 0, 0, 10])));
        let mut nan = good;
        nan[8..16].copy_from_slice(&f64::NAN.to_le_bytes());
        assert!(matches!(AugParams::validate(&nan), Err(InvalidRecord::Magnitude(m)) if m.is_nan()));
        assert_eq!(AugParams::validate(&good[..39]), Err(InvalidRecord::Size(39)));
        assert_eq!(AugParams::decode(&good[..39]), None);
    }

    #[test]
    fn new_applies_the_same_rule() {
        assert_eq!(AugParams::new([0, 0, 1, 1], &[(0, 0.0); 3], false, false), Err(InvalidRecord::TooManyOps(3)));
        assert_eq!(AugParams::new([0, 0, 1, 1], &[(14, 0.0)], false, false), Err(InvalidRecord::OpIndex(14)));
        assert_eq!(AugParams::new([0, 0, 1, 1], &[(-1, 0.0)], false, false), Err(InvalidRecord::OpIndex(-1)));
        assert!(matches!(
            AugParams::new([0, 0, 1, 1], &[(0, f64::INFINITY)], false, false),
            Err(InvalidRecord::Magnitude(_))
        ));
        assert_eq!(
            AugParams::new([1 << 31, 0, 1, 1], &[], false, false),
            Err(InvalidRecord::BoxNotInt32([1 << 31, 0, 1, 1]))
        );
        assert_eq!(AugParams::new([0, 0, 0, 1], &[], false, false), Err(InvalidRecord::EmptyBox([0, 0, 0, 1])));
        assert_eq!(
            InvalidRecord::EmptyBox([0, 0, 0, 1]).to_string(),
            "crop box (0, 0, 0, 1) is empty: height and width must be positive"
        );
    }

    /// Fuzz-style: any 40 bytes either are rejected or re-encode to themselves.
    #[test]
    fn random_bytes_validate_or_round_trip() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut accepted = 0;
        for _ in 0..200_000 {
            let mut rec = [0u8; AUG_RECORD_SIZE];
            for b in rec.iter_mut() {
                *b = next() as u8;
            }
            // Bias toward valid records so both outcomes are exercised.
            let bits = next();
            if bits & 1 == 0 {
                rec[32] %= NUM_OPS;
                rec[33] %= NUM_OPS;
                rec[34] %= 3;
                rec[35] &= FLAG_NULL | FLAG_HFLIP;
                rec[36..].fill(0);
                rec[27] &= 0x7f;
                rec[31] &= 0x7f;
                rec[7] &= 0xbf; // clear an exponent bit: finite
                rec[15] &= 0xbf;
            }
            if let Ok(p) = AugParams::validate(&rec) {
                accepted += 1;
                assert_eq!(p.encode(), rec);
            }
        }
        assert!(accepted > 10_000, "{accepted} valid records drawn");
    }
}
