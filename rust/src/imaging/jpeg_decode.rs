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
//! truncated file ("image file is truncated") where libjpeg would pad it.

use turbojpeg::raw;

use super::CHANNELS;
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

    /// Decode into `out` (grown as needed; the first `w*h*3` bytes are the
    /// image). Returns (width, height).
    pub fn decode_rgb(
        &mut self,
        key: &str,
        data: &[u8],
        max_pixels: u64,
        out: &mut Vec<u8>,
    ) -> Result<(usize, usize)> {
        // Our own marker scan finds the frame header first: TurboJPEG accepts a
        // tables-only or garbage stream without touching the size it reports
        // (it would keep the previous image's), and this also lets the size
        // limit apply before libjpeg allocates anything.
        let (fw, fh) = frame_size(data)
            .ok_or_else(|| Error::decode(key, "not a decodable JPEG (no frame header before the scan data)"))?;
        super::decode::check_pixels(key, fw, fh, max_pixels)?;
        if unsafe { raw::tj3DecompressHeader(self.handle, data.as_ptr(), data.len() as _) } != 0 {
            return Err(Error::decode(key, format!("invalid JPEG header: {}", self.error_str())));
        }
        let w = self.get(raw::TJPARAM_TJPARAM_JPEGWIDTH);
        let h = self.get(raw::TJPARAM_TJPARAM_JPEGHEIGHT);
        let colorspace = self.get(raw::TJPARAM_TJPARAM_COLORSPACE);
        let precision = self.get(raw::TJPARAM_TJPARAM_PRECISION);
        if w <= 0 || h <= 0 || (w as usize, h as usize) != (fw, fh) {
            return Err(Error::decode(key, format!("inconsistent JPEG header ({fw}x{fh} vs {w}x{h})")));
        }
        if precision != 8 {
            // Pillow: "cannot handle 12-bit layers".
            return Err(Error::decode(key, format!("unsupported {precision}-bit JPEG")));
        }
        let (w, h) = (fw, fh);
        let n = w * h * CHANNELS;
        if out.len() < n {
            out.resize(n, 0);
        }
        let cmyk = colorspace == raw::TJCS_TJCS_CMYK as i32 || colorspace == raw::TJCS_TJCS_YCCK as i32;
        if cmyk {
            let m = w * h * 4;
            if self.cmyk.len() < m {
                self.cmyk.resize(m, 0);
            }
            let ptr = self.cmyk.as_mut_ptr();
            self.decompress(key, data, ptr, w * 4, raw::TJPF_TJPF_CMYK)?;
            cmyk_inverted_to_rgb(&self.cmyk[..m], &mut out[..n]);
        } else {
            self.decompress(key, data, out.as_mut_ptr(), w * CHANNELS, raw::TJPF_TJPF_RGB)?;
        }
        Ok((w, h))
    }

    /// `tj3Decompress8` into a buffer the caller sized from the header.
    fn decompress(
        &mut self,
        key: &str,
        data: &[u8],
        dst: *mut u8,
        pitch: usize,
        format: raw::TJPF,
    ) -> Result<()> {
        let rc = unsafe {
            raw::tj3Decompress8(
                self.handle,
                data.as_ptr(),
                data.len() as _,
                dst,
                pitch as libc_int,
                format as libc_int,
            )
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
            return Err(Error::decode(key, "JPEG file is truncated"));
        }
        Err(Error::decode(key, format!("cannot decode JPEG: {msg}")))
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
