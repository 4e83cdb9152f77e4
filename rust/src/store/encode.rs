//! Teacher embeddings -> the store's element type (the one definition of these rules).
//!
//! - float16: IEEE half, round to nearest even; a value that overflows is refused.
//! - bfloat16: stored as raw uint16 bits; float input is rounded to nearest even
//!   (as torch's `.to(torch.bfloat16)`); uint16 input is taken as bits.
//! - int8: symmetric per (row, teacher): scale = max|x| / 127 over that teacher's D
//!   values (float32), q = clamp(rint(x / scale), -127, 127), so x ~ q * scale with
//!   error at most scale / 2; an all-zero slice gets scale 0 and q = 0. int8 input
//!   is taken as already quantized, with its given scales.
//!
//! Float input is checked finite first. Errors are messages (the caller names the sample).

use std::borrow::Cow;

use half::f16;

use super::EmbeddingDtype;

/// Embedding values as the caller has them, row-major [rows, K*D].
#[derive(Clone, Copy, Debug)]
pub enum EmbeddingValues<'a> {
    F16(&'a [f16]),
    F32(&'a [f32]),
    F64(&'a [f64]),
    U16(&'a [u16]),
    I8(&'a [i8]),
    /// Any other element type, by name (refused, the name goes in the message).
    Other(&'a str),
}

impl EmbeddingValues<'_> {
    fn type_name(&self) -> &str {
        match self {
            Self::F16(_) => "float16",
            Self::F32(_) => "float32",
            Self::F64(_) => "float64",
            Self::U16(_) => "uint16",
            Self::I8(_) => "int8",
            Self::Other(name) => name,
        }
    }

    fn all_finite(&self) -> bool {
        match self {
            Self::F16(v) => v.iter().all(|x| x.is_finite()),
            Self::F32(v) => v.iter().all(|x| x.is_finite()),
            Self::F64(v) => v.iter().all(|x| x.is_finite()),
            _ => true,
        }
    }

    /// Float input as float32 (None for non-float input); float32 input is not copied.
    fn floats_f32(&self) -> Option<Cow<'_, [f32]>> {
        match self {
            Self::F16(v) => Some(Cow::Owned(v.iter().map(|x| x.to_f32()).collect())),
            Self::F32(v) => Some(Cow::Borrowed(v)),
            Self::F64(v) => Some(Cow::Owned(v.iter().map(|&x| x as f32).collect())),
            _ => None,
        }
    }
}

/// Embeddings in their stored form.
#[derive(Clone, Debug, PartialEq)]
pub enum Encoded {
    /// float16 bits or bfloat16 bits.
    Bits16(Vec<u16>),
    /// int8 values and one float32 scale per (row, teacher), [rows, K].
    Int8 { values: Vec<i8>, scales: Vec<f32> },
}

impl Encoded {
    pub fn nbytes(&self) -> usize {
        match self {
            Encoded::Bits16(v) => 2 * v.len(),
            Encoded::Int8 { values, .. } => values.len(),
        }
    }
}

/// float32 -> bfloat16 bits, round to nearest even (finite input).
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    let u = x.to_bits();
    let bias = 0x7FFF + ((u >> 16) & 1);
    (u.wrapping_add(bias) >> 16) as u16
}

/// bfloat16 bits -> float32 (exact).
pub fn bf16_bits_to_f32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// Round to nearest, ties to even, for |y| <= 2^22: adding 1.5 * 2^23 leaves no
/// fraction bits, so the float addition itself rounds (to even, the default mode).
/// The same result as `f32::round_ties_even`, which without SSE4.1 is a libm call.
fn rint_small(y: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0; // 1.5 * 2^23
    (y + SHIFT) - SHIFT
}

/// Symmetric per-(row, teacher) int8 quantization of `x` ([rows * K slices of D]).
pub fn quantize_int8(x: &[f32], d: usize) -> (Vec<i8>, Vec<f32>) {
    let mut values = Vec::with_capacity(x.len());
    let mut scales = Vec::with_capacity(x.len() / d.max(1));
    for slice in x.chunks(d.max(1)) {
        let scale = slice.iter().fold(0f32, |m, v| m.max(v.abs())) / 127f32;
        let safe = if scale > 0.0 { scale } else { 1.0 };
        values.extend(slice.iter().map(|v| rint_small((v / safe).clamp(-127.0, 127.0)) as i8));
        scales.push(scale);
    }
    (values, scales)
}

/// int8 values and their [rows, K] scales -> float32 (x = q * scale).
pub fn dequantize_int8(values: &[i8], scales: &[f32], d: usize) -> Vec<f32> {
    values.chunks(d.max(1)).zip(scales).flat_map(|(q, &s)| q.iter().map(move |&v| v as f32 * s)).collect()
}

/// An `encode` error about the embedding called `what`, as a sentence.
pub fn named_error(what: &str, msg: &str) -> String {
    // "contains ..." / "overflows ..." read on after the name; the rest follow a colon.
    if msg.starts_with("contains") || msg.starts_with("overflows") {
        format!("{what} {msg}")
    } else {
        format!("{what}: {msg}")
    }
}

/// Encode `rows` rows of K teachers x D values to `dtype`. `scales` are the given
/// [rows, K] scales of int8 input (ignored otherwise).
pub fn encode(
    values: EmbeddingValues<'_>,
    rows: usize,
    k: usize,
    dtype: EmbeddingDtype,
    scales: Option<&[f32]>,
) -> Result<Encoded, String> {
    if !values.all_finite() {
        return Err("contains non-finite values".into());
    }
    let got = values.type_name();
    match dtype {
        EmbeddingDtype::Float16 => {
            let bits: Vec<u16> = match values {
                EmbeddingValues::F16(v) => v.iter().map(|x| x.to_bits()).collect(),
                EmbeddingValues::F32(v) => v.iter().map(|&x| f16::from_f32(x).to_bits()).collect(),
                // Straight from double (as numpy's cast), not through float32.
                EmbeddingValues::F64(v) => v.iter().map(|&x| f16::from_f64(x).to_bits()).collect(),
                _ => return Err(format!("a float16 store takes float input, got {got}")),
            };
            if bits.iter().any(|&b| b & 0x7C00 == 0x7C00) {
                return Err("overflows float16".into());
            }
            Ok(Encoded::Bits16(bits))
        }
        EmbeddingDtype::BFloat16 => {
            if let EmbeddingValues::U16(v) = values {
                return Ok(Encoded::Bits16(v.to_vec()));
            }
            let floats = values
                .floats_f32()
                .ok_or_else(|| format!("a bfloat16 store takes float input or uint16 bf16 bits, got {got}"))?;
            let bits: Vec<u16> = floats.iter().map(|&x| f32_to_bf16_bits(x)).collect();
            if bits.iter().any(|&b| b & 0x7F80 == 0x7F80) {
                return Err("overflows bfloat16".into());
            }
            Ok(Encoded::Bits16(bits))
        }
        EmbeddingDtype::Int8 => {
            if let EmbeddingValues::I8(v) = values {
                let scales = scales.ok_or("int8 input needs its scales")?;
                if scales.len() != rows * k || !scales.iter().all(|s| s.is_finite() && *s >= 0.0) {
                    return Err(format!("scales must be finite, non-negative, shape ({rows}, {k})"));
                }
                return Ok(Encoded::Int8 { values: v.to_vec(), scales: scales.to_vec() });
            }
            let floats = values
                .floats_f32()
                .ok_or_else(|| format!("an int8 store takes float input or int8 with scales, got {got}"))?;
            let d = floats.len().checked_div(rows * k).unwrap_or(1);
            let (values, scales) = quantize_int8(&floats, d);
            Ok(Encoded::Int8 { values, scales })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounds_to_nearest_even() {
        // 1 + 2^-8 is halfway between two bf16 values: ties go to the even one (1.0).
        assert_eq!(f32_to_bf16_bits(1.0 + 2f32.powi(-8)), 0x3F80);
        assert_eq!(f32_to_bf16_bits(1.0 + 3.0 * 2f32.powi(-8)), 0x3F82);
        assert_eq!(f32_to_bf16_bits(-2.5), half::bf16::from_f32(-2.5).to_bits());
        for i in 0..100_000u32 {
            let x = f32::from_bits(i.wrapping_mul(2_654_435_761) & 0x7F7F_FFFF) * if i % 2 == 0 { 1.0 } else { -1.0 };
            assert_eq!(f32_to_bf16_bits(x), half::bf16::from_f32(x).to_bits(), "{x}");
            assert_eq!(bf16_bits_to_f32(f32_to_bf16_bits(x)), half::bf16::from_f32(x).to_f32());
        }
    }

    #[test]
    fn rint_small_is_round_ties_even() {
        for i in -300_000..=300_000 {
            let y = i as f32 / 2048.0; // halves, quarters, ... in -146..146
            assert_eq!(rint_small(y), y.round_ties_even(), "{y}");
        }
        for y in [0.5f32, 1.5, 2.5, -0.5, -2.5, 126.5, -126.5, 0.49999997, 127.0, -127.0, 1e-30] {
            assert_eq!(rint_small(y), y.round_ties_even(), "{y}");
        }
    }

    #[test]
    fn overflow_and_non_finite_are_refused() {
        let big = [1e6f32];
        assert_eq!(
            encode(EmbeddingValues::F32(&big), 1, 1, EmbeddingDtype::Float16, None),
            Err("overflows float16".into())
        );
        let huge = [f32::MAX];
        assert_eq!(
            encode(EmbeddingValues::F32(&huge), 1, 1, EmbeddingDtype::BFloat16, None),
            Err("overflows bfloat16".into())
        );
        let nan = [f32::NAN];
        assert!(encode(EmbeddingValues::F32(&nan), 1, 1, EmbeddingDtype::Int8, None)
            .unwrap_err()
            .contains("non-finite"));
        let ints = [1u16];
        assert!(encode(EmbeddingValues::U16(&ints), 1, 1, EmbeddingDtype::Float16, None)
            .unwrap_err()
            .contains("got uint16"));
    }

    #[test]
    fn int8_is_symmetric_per_row_and_teacher() {
        // 2 rows x 2 teachers x D=3.
        let x = [1.0f32, -0.5, 0.25, 0.0, 0.0, 0.0, 2.0, 1.0, -1.0, 0.3, -0.6, 0.1];
        let Encoded::Int8 { values, scales } =
            encode(EmbeddingValues::F32(&x), 2, 2, EmbeddingDtype::Int8, None).unwrap()
        else {
            panic!()
        };
        assert_eq!(scales, vec![1.0 / 127.0, 0.0, 2.0 / 127.0, 0.6 / 127.0]);
        assert_eq!(&values[..6], &[127, -64, 32, 0, 0, 0]); // -63.5 and 31.75 round to even / nearest
        let back = dequantize_int8(&values, &scales, 3);
        for (a, b) in x.iter().zip(&back) {
            assert!((a - b).abs() <= 0.6 / 127.0 / 2.0 + 1e-6 || (a - b).abs() <= 2.0 / 127.0 / 2.0 + 1e-6);
        }
        let given = encode(EmbeddingValues::I8(&[1, 2]), 1, 1, EmbeddingDtype::Int8, Some(&[0.5])).unwrap();
        assert_eq!(given, Encoded::Int8 { values: vec![1, 2], scales: vec![0.5] });
        assert!(encode(EmbeddingValues::I8(&[1, 2]), 1, 1, EmbeddingDtype::Int8, None)
            .unwrap_err()
            .contains("needs its scales"));
        assert!(encode(EmbeddingValues::I8(&[1, 2]), 1, 1, EmbeddingDtype::Int8, Some(&[-1.0]))
            .unwrap_err()
            .contains("non-negative"));
    }
}
