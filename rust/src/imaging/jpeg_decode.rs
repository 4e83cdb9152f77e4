//! JPEG -> RGB exactly as `Image.open(f).convert("RGB")` in Pillow 13.0.0,
//! which decodes with libjpeg-turbo at its defaults (ISLOW IDCT, fancy
//! upsampling). We call the same library (TurboJPEG API, built from source by
//! the `turbojpeg` crate) with the same defaults:
//! - YCbCr / RGB JPEG: libjpeg's RGB output is Pillow's RGB image;
//! - grayscale JPEG: Pillow's "L" then `convert("RGB")` replicates the value,
//!   which is exactly libjpeg's gray -> RGB output;
//! - CMYK / YCCK JPEG: Pillow always reads "CMYK;I" (Adobe-inverted, libjpeg
//!   converts YCCK -> CMYK first), then `convert("RGB")` uses `cmyk2rgb`.
//!
//! libjpeg *warnings* (corrupt but decodable data) do not stop Pillow, so they
//! do not stop us either, except a premature end of data: Pillow refuses a
//! truncated file ("image file is truncated") where libjpeg would pad it. A
//! partial decode does not read the stream to its end, so there the end is
//! checked separately (`reaches_end_of_image`).

use turbojpeg::raw;

use super::crop::CropBox;
use super::decoded::{check_pixels, Decoded, Region};
use super::{grown, CHANNELS};
use crate::error::{Error, Result};

/// An owned TurboJPEG decompressor handle.
pub struct JpegDecoder {
    handle: raw::tjhandle,
    /// CMYK output before conversion (only used for CMYK/YCCK files).
    cmyk: Vec<u8>,
}

// The handle is only ever used through `&mut self`.
unsafe impl Send for JpegDecoder {}

impl Drop for JpegDecoder {
    fn drop(&mut self) {
        unsafe { raw::tj3Destroy(self.handle) };
    }
}

impl JpegDecoder {
    pub fn new() -> Result<Self> {
        let handle = unsafe { raw::tj3Init(raw::TJINIT_TJINIT_DECOMPRESS as libc_int) };
        if handle.is_null() {
            return Err(Error::Internal("cannot initialise the TurboJPEG decompressor".into()));
        }
        let mut d = JpegDecoder { handle, cmyk: Vec::new() };
        // libjpeg's defaults, which Pillow uses; set explicitly so nothing else can change them.
        d.set(raw::TJPARAM_TJPARAM_FASTDCT, 0)?;
        d.set(raw::TJPARAM_TJPARAM_FASTUPSAMPLE, 0)?;
        d.set(raw::TJPARAM_TJPARAM_STOPONWARNING, 0)?;
        Ok(d)
    }

    fn set(&mut self, param: raw::TJPARAM, value: i32) -> Result<()> {
        if unsafe { raw::tj3Set(self.handle, param as libc_int, value) } != 0 {
            return Err(Error::Internal(format!("TurboJPEG: {}", self.error_str())));
        }
        Ok(())
    }

    fn get(&mut self, param: raw::TJPARAM) -> i32 {
        unsafe { raw::tj3Get(self.handle, param as libc_int) }
    }

    fn error_str(&mut self) -> String {
        let p = unsafe { raw::tj3GetErrorStr(self.handle) };
        if p.is_null() {
            return "unknown error".into();
        }
        unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    /// Decode into `out` (grown as needed). With `want` (a crop box in pixels
    /// of the decoded image, may extend past it), only a region covering the
    /// part of the box inside the image is decoded; otherwise the whole image.
    /// `scale_denom` (1, 2, 4 or 8) asks libjpeg-turbo for a 1/denom scaled
    /// decode in the DCT domain (only 1 is exact). Returns the decoded image
    /// size and region (its pixels are the first `region.w * region.h * 3`
    /// bytes of `out`).
    pub fn decode_rgb(
        &mut self,
        key: &str,
        data: &[u8],
        max_pixels: u64,
        want: Option<CropBox>,
        scale_denom: usize,
        out: &mut Vec<u8>,
    ) -> Result<Decoded> {
        // Our own marker scan finds the frame header first: TurboJPEG accepts a
        // tables-only or garbage stream without touching the size it reports
        // (it would keep the previous image's), and this also lets the size
        // limit apply before libjpeg allocates anything.
        let (fw, fh) = frame_size(data)
            .ok_or_else(|| Error::decode(key, "not a decodable JPEG (no frame header before the scan data)"))?;
        check_pixels(key, fw, fh, max_pixels)?;
        if unsafe { raw::tj3DecompressHeader(self.handle, data.as_ptr(), data.len() as _) } != 0 {
            return Err(Error::decode(key, format!("invalid JPEG header: {}", self.error_str())));
        }
        let w = self.get(raw::TJPARAM_TJPARAM_JPEGWIDTH);
        let h = self.get(raw::TJPARAM_TJPARAM_JPEGHEIGHT);
        let colorspace = self.get(raw::TJPARAM_TJPARAM_COLORSPACE);
        let precision = self.get(raw::TJPARAM_TJPARAM_PRECISION);
        let subsamp = self.get(raw::TJPARAM_TJPARAM_SUBSAMP);
        let lossless = self.get(raw::TJPARAM_TJPARAM_LOSSLESS) != 0;
        if w <= 0 || h <= 0 || (w as usize, h as usize) != (fw, fh) {
            return Err(Error::decode(key, format!("inconsistent JPEG header ({fw}x{fh} vs {w}x{h})")));
        }
        if precision != 8 {
            // Pillow: "cannot handle 12-bit layers".
            return Err(Error::decode(key, format!("unsupported {precision}-bit JPEG")));
        }
        let denom = if lossless || !matches!(scale_denom, 1 | 2 | 4 | 8) { 1 } else { scale_denom };
        let factor = raw::tjscalingfactor { num: 1, denom: denom as _ };
        if unsafe { raw::tj3SetScalingFactor(self.handle, factor) } != 0 {
            return Err(Error::Internal(format!("TurboJPEG scaling factor: {}", self.error_str())));
        }
        // TJSCALED: the scaled size rounds up.
        let (w, h) = (fw.div_ceil(denom), fh.div_ceil(denom));
        let full = Region { x: 0, y: 0, w, h };
        let region = match (want, mcu_width(subsamp)) {
            // The region's left edge aligns to the *scaled* iMCU width.
            (Some(b), Some(mcu)) if !lossless => plan_region(b, w, h, (mcu / denom).max(1)),
            _ => full,
        };
        let tjr = if region == full {
            raw::tjregion { x: 0, y: 0, w: 0, h: 0 } // TJUNCROPPED
        } else {
            raw::tjregion { x: region.x as _, y: region.y as _, w: region.w as _, h: region.h as _ }
        };
        if unsafe { raw::tj3SetCroppingRegion(self.handle, tjr) } != 0 {
            return Err(Error::Internal(format!("TurboJPEG cropping region: {}", self.error_str())));
        }
        let n = region.w * region.h * CHANNELS;
        grown(out, n);
        let cmyk = colorspace == raw::TJCS_TJCS_CMYK as i32 || colorspace == raw::TJCS_TJCS_YCCK as i32;
        if cmyk {
            let m = region.w * region.h * 4;
            grown(&mut self.cmyk, m);
            let ptr = self.cmyk.as_mut_ptr();
            self.decompress(key, data, ptr, region.w * 4, raw::TJPF_TJPF_CMYK)?;
            cmyk_inverted_to_rgb(&self.cmyk[..m], &mut out[..n]);
        } else {
            self.decompress(key, data, out.as_mut_ptr(), region.w * CHANNELS, raw::TJPF_TJPF_RGB)?;
        }
        // A region decode skips the rows below it without reading their data:
        // a truncated tail is only noticed by looking for the end-of-image marker.
        if region != full && !reaches_end_of_image(data) {
            return Err(Error::decode(key, TRUNCATED));
        }
        Ok(Decoded { width: w, height: h, region, scale_denom: denom })
    }

    /// `tj3Decompress8` into a buffer the caller sized from the header.
    fn decompress(&mut self, key: &str, data: &[u8], dst: *mut u8, pitch: usize, format: raw::TJPF) -> Result<()> {
        let rc = unsafe {
            raw::tj3Decompress8(self.handle, data.as_ptr(), data.len() as _, dst, pitch as libc_int, format as libc_int)
        };
        if rc == 0 {
            return Ok(());
        }
        let code = unsafe { raw::tj3GetErrorCode(self.handle) };
        let msg = self.error_str();
        if code == raw::TJERR_TJERR_WARNING as libc_int && !msg.contains("Premature end of JPEG file") {
            // Corrupt-but-complete data: Pillow keeps libjpeg's pixels, so do we.
            return Ok(());
        }
        if msg.contains("Premature end of JPEG file") {
            return Err(Error::decode(key, TRUNCATED));
        }
        Err(Error::decode(key, format!("cannot decode JPEG: {msg}")))
    }
}

const TRUNCATED: &str = "JPEG file is truncated";

/// Whether the stream reaches its EOI marker, walking it as libjpeg reads it:
/// marker segments are skipped by their length, entropy-coded data up to the
/// next marker (0xFF 0x00 is a stuffed data byte, 0xFF fill bytes and RSTn
/// carry no length). libjpeg reports "Premature end of JPEG file" exactly when
/// its input ends before this marker, which Pillow refuses as truncated.
fn reaches_end_of_image(data: &[u8]) -> bool {
    let mut i = 2; // after SOI
    loop {
        let Some(ff) = memchr::memchr(0xFF, &data[i.min(data.len())..]) else {
            return false;
        };
        i += ff;
        while data.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = data.get(i) else { return false };
        i += 1;
        match marker {
            0xD9 => return true,
            0x00 | 0x01 | 0xD0..=0xD8 => continue, // stuffed byte, TEM, RSTn, SOI: no length
            _ => {
                let (Some(&hi), Some(&lo)) = (data.get(i), data.get(i + 1)) else { return false };
                let len = u16::from_be_bytes([hi, lo]) as usize;
                if len < 2 || i + len > data.len() {
                    return false;
                }
                i += len;
            }
        }
    }
}

/// Extra pixels decoded around the needed area: libjpeg-turbo's partial
/// decompression matches a full decode except possibly at the region's own
/// left/right edge (fancy upsampling treats it as an image edge), so the
/// region is widened and those edge pixels are never used.
const REGION_MARGIN: usize = 16;

/// Below this fraction of the image, a partial decode is worth its overhead.
const REGION_MAX_FRACTION: f64 = 0.85;

/// iMCU width (`tjMCUWidth`) of a subsampling, the alignment of a region's left edge.
fn mcu_width(subsamp: i32) -> Option<usize> {
    match subsamp {
        x if x == raw::TJSAMP_TJSAMP_444 => Some(8),
        x if x == raw::TJSAMP_TJSAMP_422 => Some(16),
        x if x == raw::TJSAMP_TJSAMP_420 => Some(16),
        x if x == raw::TJSAMP_TJSAMP_GRAY => Some(8),
        x if x == raw::TJSAMP_TJSAMP_440 => Some(8),
        x if x == raw::TJSAMP_TJSAMP_411 => Some(32),
        x if x == raw::TJSAMP_TJSAMP_441 => Some(8),
        _ => None,
    }
}

/// The region to decode for crop box `b` of a `w x h` image: the box's part
/// inside the image plus a margin, left edge aligned to the iMCU.
fn plan_region(b: CropBox, w: usize, h: usize, mcu: usize) -> Region {
    let full = Region { x: 0, y: 0, w, h };
    let x0 = b.left.clamp(0, w as i64) as usize;
    let x1 = (b.left + b.width as i64).clamp(0, w as i64) as usize;
    let y0 = b.top.clamp(0, h as i64) as usize;
    let y1 = (b.top + b.height as i64).clamp(0, h as i64) as usize;
    let (x0, x1, y0, y1) = if x0 >= x1 || y0 >= y1 {
        // No source pixel is needed; still decode (a sliver) so that corrupt
        // data is reported as it would be by a full decode.
        (0, 1, 0, 1)
    } else {
        (x0, x1, y0, y1)
    };
    let rx0 = x0.saturating_sub(REGION_MARGIN) / mcu * mcu;
    let rx1 = (x1 + REGION_MARGIN).min(w);
    let ry0 = y0.saturating_sub(REGION_MARGIN);
    let ry1 = (y1 + REGION_MARGIN).min(h);
    let r = Region { x: rx0, y: ry0, w: rx1 - rx0, h: ry1 - ry0 };
    if (r.w * r.h) as f64 > REGION_MAX_FRACTION * (w * h) as f64 {
        full
    } else {
        r
    }
}

/// Width and height from the first SOFn segment, scanning markers from SOI
/// (as Pillow's JpegImagePlugin does); `None` if a scan or the end comes first.
fn frame_size(data: &[u8]) -> Option<(usize, usize)> {
    let mut i = 2; // after SOI
    loop {
        if *data.get(i)? != 0xFF {
            return None;
        }
        while *data.get(i)? == 0xFF {
            i += 1; // fill bytes
        }
        let marker = data[i];
        i += 1;
        match marker {
            0x01 | 0xD0..=0xD7 => continue, // no length
            0xD9 | 0xDA => return None,     // EOI / SOS before any frame header
            _ => {}
        }
        let len = u16::from_be_bytes([*data.get(i)?, *data.get(i + 1)?]) as usize;
        if len < 2 {
            return None;
        }
        if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let seg = data.get(i + 2..i + len)?;
            if seg.len() < 6 {
                return None;
            }
            let h = u16::from_be_bytes([seg[1], seg[2]]) as usize;
            let w = u16::from_be_bytes([seg[3], seg[4]]) as usize;
            return Some((w, h));
        }
        i += len;
    }
}

#[allow(non_camel_case_types)]
type libc_int = std::os::raw::c_int;

/// Pillow's "CMYK;I" unpack (255 - v) followed by `cmyk2rgb` (Convert.c):
/// `nk = 255 - k; out = CLIP8(nk - MULDIV255(c, nk))`.
fn cmyk_inverted_to_rgb(cmyk: &[u8], rgb: &mut [u8]) {
    #[inline]
    fn muldiv255(a: i32, b: i32) -> i32 {
        let tmp = a * b + 128;
        ((tmp >> 8) + tmp) >> 8
    }
    for (p, o) in cmyk.chunks_exact(4).zip(rgb.chunks_exact_mut(CHANNELS)) {
        let k = 255 - p[3] as i32;
        let nk = 255 - k;
        for c in 0..3 {
            let v = 255 - p[c] as i32;
            o[c] = (nk - muldiv255(v, nk)).clamp(0, 255) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::test_images;

    /// A partial decode equals the same pixels of a full decode over the whole
    /// area a crop can read, for every subsampling and random boxes.
    #[test]
    fn region_decode_matches_full_decode() {
        use turbojpeg::Subsamp::*;
        let mut seed = 99u64;
        let mut rnd = move |n: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n.max(1)
        };
        let mut d = JpegDecoder::new().unwrap();
        let (mut full, mut part) = (Vec::new(), Vec::new());
        for subsamp in [None, Sub2x1, Sub2x2, Gray, Sub1x2, Sub4x1] {
            for progressive in [false, true] {
                let (w, h) = (200 + rnd(150), 150 + rnd(150));
                let jpeg = test_images::jpeg(w, h, subsamp, progressive);
                let fd = d.decode_rgb("k", &jpeg, u64::MAX, Option::None, 1, &mut full).unwrap();
                assert_eq!((fd.width, fd.height), (w, h));
                for _ in 0..25 {
                    let b = CropBox {
                        left: rnd(w + 40) as i64 - 20,
                        top: rnd(h + 40) as i64 - 20,
                        width: 1 + rnd(w / 2),
                        height: 1 + rnd(h / 2),
                    };
                    let pd = d.decode_rgb("k", &jpeg, u64::MAX, Some(b), 1, &mut part).unwrap();
                    let r = pd.region;
                    // The area a crop reads: the box's part inside the image.
                    let x0 = b.left.clamp(0, w as i64) as usize;
                    let x1 = (b.left + b.width as i64).clamp(0, w as i64) as usize;
                    let y0 = b.top.clamp(0, h as i64) as usize;
                    let y1 = (b.top + b.height as i64).clamp(0, h as i64) as usize;
                    for y in y0..y1.max(y0) {
                        if x0 >= x1 {
                            break;
                        }
                        let f = &full[(y * w + x0) * 3..(y * w + x1) * 3];
                        let o = (y - r.y) * r.w;
                        let p = &part[(o + x0 - r.x) * 3..(o + x1 - r.x) * 3];
                        assert_eq!(f, p, "{subsamp:?} progressive={progressive} box={b:?} region={r:?} row {y}");
                    }
                }
            }
        }
    }

    #[test]
    fn end_of_image_is_found_past_segments_stuffing_and_restarts() {
        let jpeg = test_images::jpeg(64, 48, turbojpeg::Subsamp::Sub2x2, false);
        assert!(reaches_end_of_image(&jpeg));
        let mut trailing = jpeg.clone();
        trailing.extend_from_slice(b"\0\xFFjunk");
        assert!(reaches_end_of_image(&trailing));
        for cut in [1, 2, jpeg.len() / 2, jpeg.len() - 40] {
            assert!(!reaches_end_of_image(&jpeg[..jpeg.len() - cut]), "cut {cut}");
        }
        // An EOI inside a segment's payload (an EXIF thumbnail, say) is not the end.
        let mut app =
            vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xD9, 0xFF, 0xDA, 0x00, 0x02, 1, 0xFF, 0x00, 2];
        assert!(!reaches_end_of_image(&app));
        app.extend_from_slice(&[0xFF, 0xD0, 3, 0xFF, 0xFF, 0xD9]);
        assert!(reaches_end_of_image(&app));
    }

    #[test]
    fn cmyk_formula_matches_pillow_corners() {
        // Inverted storage: raw 255 means ink 0.
        let mut out = [0u8; 3];
        cmyk_inverted_to_rgb(&[255, 255, 255, 255], &mut out);
        assert_eq!(out, [255, 255, 255]);
        cmyk_inverted_to_rgb(&[0, 0, 0, 255], &mut out);
        assert_eq!(out, [0, 0, 0]);
        cmyk_inverted_to_rgb(&[255, 255, 255, 0], &mut out);
        assert_eq!(out, [0, 0, 0]);
    }
}
