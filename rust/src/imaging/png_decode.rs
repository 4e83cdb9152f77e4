//! PNG -> RGB exactly as `Image.open(f).convert("RGB")` in Pillow 13.0.0.
//!
//! Pillow's PNG modes (`PngImagePlugin._MODES`) and what `convert("RGB")`
//! then does to each, replicated from the raw (big-endian) samples:
//! - gray 1/2/4 bit: "1" / "L;2" / "L;4" scale to 0..255 (x255, x85, x17);
//! - gray 8 bit: "L", replicated; gray 16 bit: "I;16", whose RGB conversion
//!   *clips* at 255 (it does not take the high byte);
//! - gray+alpha 8 bit: "LA", alpha dropped; 16 bit: "LA;16B" keeps the high
//!   byte of gray;
//! - RGB / RGBA 8 bit: alpha dropped; 16 bit: "RGB;16B"/"RGBA;16B" keep the
//!   high byte of each sample;
//! - palette 1/2/4/8 bit: palette lookup (tRNS ignored), indices past the
//!   palette give black.
//!
//! Gamma, colour profiles and tRNS do not affect Pillow's RGB pixels, so they
//! are ignored here too. Interlaced files are de-interlaced by the `png` crate.

use super::decoded::check_pixels;
use super::{grown, CHANNELS};
use crate::error::{Error, Result};

pub fn decode_rgb(
    key: &str,
    data: &[u8],
    max_pixels: u64,
    raw: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(usize, usize)> {
    let bad = |e: png::DecodingError| Error::decode(key, format!("cannot decode PNG: {e}"));
    let mut decoder = png::Decoder::new(std::io::Cursor::new(data));
    decoder.set_transformations(png::Transformations::IDENTITY);
    decoder.set_ignore_text_chunk(true);
    let (w, h) = {
        let info = decoder.read_header_info().map_err(bad)?;
        (info.width as usize, info.height as usize)
    };
    check_pixels(key, w, h, max_pixels)?;
    let mut reader = decoder.read_info().map_err(bad)?;
    let size = reader.output_buffer_size().ok_or_else(|| Error::decode(key, "PNG frame too large"))?;
    let raw = grown(raw, size);
    // The png crate merges Adam7 passes of sub-byte rows into the buffer bit by
    // bit, so stale bytes from a previous image would leak through: clear it.
    raw.fill(0);
    let frame = reader.next_frame(raw).map_err(bad)?;
    let (w, h) = (frame.width as usize, frame.height as usize);
    let line = frame.line_size;
    let info = reader.info();
    let n = w * h * CHANNELS;
    grown(out, n);
    let depth = frame.bit_depth as u8 as usize;
    let palette: &[u8] = info.palette.as_deref().unwrap_or(&[]);
    for y in 0..h {
        let src = &raw[y * line..(y + 1) * line];
        let dst = &mut out[y * w * CHANNELS..(y + 1) * w * CHANNELS];
        match frame.color_type {
            png::ColorType::Grayscale => gray_row(src, depth, dst),
            png::ColorType::GrayscaleAlpha => {
                let step = 2 * depth / 8;
                for (s, d) in src.chunks_exact(step).zip(dst.chunks_exact_mut(CHANNELS)) {
                    d.fill(s[0]);
                }
            }
            png::ColorType::Rgb | png::ColorType::Rgba => {
                let samples = if frame.color_type == png::ColorType::Rgb { 3 } else { 4 };
                let bytes = depth / 8;
                for (s, d) in src.chunks_exact(samples * bytes).zip(dst.chunks_exact_mut(CHANNELS)) {
                    // 16-bit: the high (first) byte of each big-endian sample.
                    d[0] = s[0];
                    d[1] = s[bytes];
                    d[2] = s[2 * bytes];
                }
            }
            png::ColorType::Indexed => {
                for (x, d) in dst.chunks_exact_mut(CHANNELS).enumerate() {
                    let i = packed_sample(src, x, depth) as usize;
                    match palette.get(i * 3..i * 3 + 3) {
                        Some(rgb) => d.copy_from_slice(rgb),
                        None => d.fill(0),
                    }
                }
            }
        }
    }
    Ok((w, h))
}

/// Sample `x` of a row packed at `depth` < 8 bits (most significant bits first).
#[inline]
fn packed_sample(row: &[u8], x: usize, depth: usize) -> u8 {
    if depth == 8 {
        return row[x];
    }
    let per_byte = 8 / depth;
    let byte = row[x / per_byte];
    let shift = 8 - depth * (x % per_byte + 1);
    (byte >> shift) & ((1u16 << depth) - 1) as u8
}

fn gray_row(src: &[u8], depth: usize, dst: &mut [u8]) {
    match depth {
        16 => {
            // "I;16" -> RGB clips the 16-bit value at 255.
            for (s, d) in src.chunks_exact(2).zip(dst.chunks_exact_mut(CHANNELS)) {
                let v = u16::from_be_bytes([s[0], s[1]]).min(255) as u8;
                d.fill(v);
            }
        }
        _ => {
            let scale = 255 / ((1u16 << depth) - 1) as u8;
            for (x, d) in dst.chunks_exact_mut(CHANNELS).enumerate() {
                d.fill(packed_sample(src, x, depth) * scale);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_samples_msb_first() {
        let row = [0b1011_0010u8];
        assert_eq!(packed_sample(&row, 0, 1), 1);
        assert_eq!(packed_sample(&row, 1, 1), 0);
        assert_eq!(packed_sample(&row, 0, 2), 0b10);
        assert_eq!(packed_sample(&row, 3, 2), 0b10);
        assert_eq!(packed_sample(&row, 1, 4), 0b0010);
    }
}
