//! The per-thread replay engine: decode, crop+resize, flip, RandAugment ops,
//! with every buffer owned and reused, so that steady-state replay of JPEG
//! input allocates nothing.

use super::crop::CropBox;
use super::decode::Decoder;
use super::decoded::{Decoded, Region};
use super::randaugment::{apply_op, OpScratch};
use super::resample::{Interpolation, Resampler};
use super::{geometry, CHANNELS};
use crate::aug::AugParams;
use crate::error::{Error, Result};

/// Reusable replay state; create one per worker thread (it is `Send`).
#[derive(Debug)]
pub struct Replayer {
    decoder: Decoder,
    /// Last decoded image or region, packed RGB (only the first `w * h * 3` bytes are valid).
    image: Vec<u8>,
    decoded: Option<Decoded>,
    partial_decode: bool,
    dct_scaling: Option<f64>,
    resampler: Resampler,
    ops: OpScratch,
    /// Benchmarks only: accumulated wall time per stage, when switched on.
    stage_times: Option<StageTimes>,
}

/// Wall time spent per replay stage (for benchmarks; off by default).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageTimes {
    pub decode: std::time::Duration,
    /// Crop + resize (and the optional flip).
    pub resize: std::time::Duration,
    pub ops: std::time::Duration,
}

impl Default for Replayer {
    fn default() -> Self {
        Replayer {
            decoder: Decoder::default(),
            image: Vec::new(),
            decoded: None,
            partial_decode: true,
            dct_scaling: None,
            resampler: Resampler::default(),
            ops: OpScratch::default(),
            stage_times: None,
        }
    }
}

impl Replayer {
    pub fn new() -> Result<Self> {
        Ok(Self::default())
    }

    /// Largest image (and crop box) accepted, in pixels; default
    /// [`super::DECODE_MAX_PIXELS`] (Pillow's bomb limit).
    pub fn set_max_pixels(&mut self, max_pixels: u64) {
        self.decoder.max_pixels = max_pixels;
    }

    pub fn max_pixels(&self) -> u64 {
        self.decoder.max_pixels
    }

    /// Whether [`Self::replay`] decodes only the JPEG region the crop needs
    /// (default on; pixel-identical, faster for small crops).
    pub fn set_partial_decode(&mut self, on: bool) {
        self.partial_decode = on;
    }

    /// Fast, *inexact* mode (default off): when a crop is at least
    /// `min_ratio * size * d` pixels on both sides, decode the JPEG at 1/d
    /// resolution (d = 8, 4 or 2, the largest that fits) in the DCT domain
    /// and crop the scaled image with the box rounded to scaled pixels.
    /// Pixels then differ from the reference (see the benchmark for PSNR).
    pub fn set_dct_scaling(&mut self, min_ratio: Option<f64>) {
        self.dct_scaling = min_ratio.filter(|r| r.is_finite() && *r > 0.0);
    }

    /// Start (or stop) accumulating per-stage wall times (benchmarks).
    pub fn set_stage_timing(&mut self, on: bool) {
        self.stage_times = on.then(StageTimes::default);
    }

    /// The stage times accumulated since timing was switched on.
    pub fn stage_times(&self) -> Option<StageTimes> {
        self.stage_times
    }

    /// `Some(now)` only while stage timing is on (no clock reads otherwise).
    fn clock(&self) -> Option<std::time::Instant> {
        self.stage_times.map(|_| std::time::Instant::now())
    }

    /// Add the time since `t0` to one stage; returns the new start.
    fn lap(
        &mut self,
        t0: Option<std::time::Instant>,
        stage: fn(&mut StageTimes) -> &mut std::time::Duration,
    ) -> Option<std::time::Instant> {
        let (t0, times) = (t0?, self.stage_times.as_mut()?);
        let now = std::time::Instant::now();
        *stage(times) += now - t0;
        Some(now)
    }

    /// Decode the whole image into the internal buffer; returns (width, height).
    pub fn decode_rgb(&mut self, key: &str, bytes: &[u8]) -> Result<(usize, usize)> {
        let d = self.decode(key, bytes, None, 1)?;
        Ok((d.width, d.height))
    }

    /// The last image decoded whole (by [`Self::decode_rgb`]): (packed RGB, width, height).
    pub fn decoded(&self) -> Option<(&[u8], usize, usize)> {
        let d = self.decoded.filter(|d| d.is_full())?;
        Some((&self.image[..d.width * d.height * CHANNELS], d.width, d.height))
    }

    /// Decode `bytes` and replay `aug` into `out` (`size * size * 3`, HWC uint8).
    /// `key` names the sample in errors.
    pub fn replay(
        &mut self,
        key: &str,
        bytes: &[u8],
        aug: &AugParams,
        size: usize,
        interp: Interpolation,
        out: &mut [u8],
    ) -> Result<()> {
        check_out(key, size, out)?;
        let b = if aug.is_null { None } else { Some(crop_box(key, aug, self.decoder.max_pixels)?) };
        let denom = match (b, self.dct_scaling) {
            (Some(b), Some(ratio)) => dct_denominator(b, size, ratio),
            _ => 1,
        };
        let scaled = b.map(|b| scale_box(b, denom));
        let want = if self.partial_decode { scaled } else { None };
        let d = self.decode(key, bytes, want, denom)?;
        // A PNG (or a lossless JPEG) ignores the scaling: use the box as given.
        let b = if d.scale_denom == denom { scaled } else { b };
        let (b, ops) = match b {
            Some(b) => (b, aug.active_ops()),
            // A null entry is the whole image, no ops (its stored box is not used).
            None => (CropBox::full(d.width, d.height), &[][..]),
        };
        self.render(key, d, b, ops, aug.hflip, size, interp, out)
    }

    /// Decode `bytes` once and replay every entry of `augs` into consecutive
    /// `size * size * 3` slices of `out` (reinforcement replays J augmentations
    /// of one image). Pixels are those of [`Self::replay`] per entry, exact
    /// mode (DCT scaling is not used): a JPEG is decoded over the union of the
    /// regions the boxes read (whole when an entry is null).
    pub fn replay_many(
        &mut self,
        key: &str,
        bytes: &[u8],
        augs: &[AugParams],
        size: usize,
        interp: Interpolation,
        out: &mut [u8],
    ) -> Result<()> {
        let n = size * size * CHANNELS;
        if size == 0 || out.len() != augs.len() * n {
            return Err(Error::InvalidArgument(format!(
                "sample {key}: output buffer has {} bytes, expected {} entries x {size}*{size}*3",
                out.len(),
                augs.len()
            )));
        }
        if augs.is_empty() {
            return Ok(());
        }
        let mut union: Option<CropBox> = None;
        let mut whole = !self.partial_decode;
        for aug in augs {
            if aug.is_null {
                whole = true;
            } else {
                let b = crop_box(key, aug, self.decoder.max_pixels)?;
                union = Some(union.map_or(b, |u| bounding_box(u, b)));
            }
        }
        let d = self.decode(key, bytes, if whole { None } else { union }, 1)?;
        for (aug, o) in augs.iter().zip(out.chunks_exact_mut(n)) {
            let (b, ops) = if aug.is_null {
                (CropBox::full(d.width, d.height), &[][..])
            } else {
                (crop_box(key, aug, self.decoder.max_pixels)?, aug.active_ops())
            };
            self.render(key, d, b, ops, aug.hflip, size, interp, o)?;
        }
        Ok(())
    }

    /// Decode into the internal buffer (see [`Decoder::decode_region`]),
    /// timed as the decode stage; remembers what was decoded.
    fn decode(&mut self, key: &str, bytes: &[u8], want: Option<CropBox>, denom: usize) -> Result<Decoded> {
        self.decoded = None;
        let t0 = self.clock();
        let d = self.decoder.decode_region(key, bytes, want, denom, &mut self.image)?;
        self.decoded = Some(d);
        self.lap(t0, |t| &mut t.decode);
        Ok(d)
    }

    /// Crop box `b` (pixels of the decoded image) + resize, flip, ops.
    #[allow(clippy::too_many_arguments)]
    fn render(
        &mut self,
        key: &str,
        d: Decoded,
        b: CropBox,
        ops: &[(crate::aug::Op, f64)],
        hflip: bool,
        size: usize,
        interp: Interpolation,
        out: &mut [u8],
    ) -> Result<()> {
        let r = d.region;
        if !covers(r, b, d.width, d.height) {
            return Err(Error::InvalidArgument(format!(
                "sample {key}: the decoded region does not cover the crop box; decode the whole image first"
            )));
        }
        // Crop coordinates relative to the decoded region: pixels of the box
        // outside the region are outside the image, i.e. black padding.
        let shifted = CropBox { left: b.left - r.x as i64, top: b.top - r.y as i64, ..b };
        let t0 = self.clock();
        let src = &self.image[..r.w * r.h * CHANNELS];
        self.resampler.crop_resize(src, r.w, r.h, shifted, size, size, interp, out);
        if hflip {
            geometry::flip_left_right(out, size, size);
        }
        let t0 = self.lap(t0, |t| &mut t.resize);
        for &(op, m) in ops {
            apply_op(op, m, out, size, &mut self.ops)
                .map_err(|e| Error::InvalidArgument(format!("sample {key}: {e}")))?;
        }
        self.lap(t0, |t| &mut t.ops);
        Ok(())
    }
}

/// The largest DCT scaling denominator (8, 4, 2; else 1) keeping both sides of
/// the scaled crop at least `ratio * size` pixels.
fn dct_denominator(b: CropBox, size: usize, ratio: f64) -> usize {
    let need = ratio * size as f64;
    [8usize, 4, 2].into_iter().find(|&d| (b.width.min(b.height) as f64) / d as f64 >= need).unwrap_or(1)
}

/// A crop box in pixels of an image decoded at 1/`denom`: edges rounded to
/// the nearest scaled pixel, at least one pixel wide and high.
fn scale_box(b: CropBox, denom: usize) -> CropBox {
    if denom == 1 {
        return b;
    }
    let d = denom as f64;
    let edge = |v: i64| (v as f64 / d).round() as i64;
    let (l, t) = (edge(b.left), edge(b.top));
    let (r, btm) = (edge(b.left + b.width as i64), edge(b.top + b.height as i64));
    CropBox { left: l, top: t, width: (r - l).max(1) as usize, height: (btm - t).max(1) as usize }
}

/// The crop box of a non-null entry, validated (non-empty, within the pixel limit).
fn crop_box(key: &str, aug: &AugParams, max_pixels: u64) -> Result<CropBox> {
    if aug.width <= 0 || aug.height <= 0 {
        return Err(Error::InvalidArgument(format!("sample {key}: crop box {}x{} is empty", aug.width, aug.height)));
    }
    let b =
        CropBox { left: aug.left as i64, top: aug.top as i64, width: aug.width as usize, height: aug.height as usize };
    b.check(max_pixels).map_err(|e| Error::InvalidArgument(format!("sample {key}: {e}")))?;
    Ok(b)
}

/// The smallest box holding both `a` and `b`.
fn bounding_box(a: CropBox, b: CropBox) -> CropBox {
    let left = a.left.min(b.left);
    let top = a.top.min(b.top);
    let right = (a.left + a.width as i64).max(b.left + b.width as i64);
    let bottom = (a.top + a.height as i64).max(b.top + b.height as i64);
    CropBox { left, top, width: (right - left) as usize, height: (bottom - top) as usize }
}

/// Whether region `r` holds every pixel of box `b` that lies inside the `w x h` image.
fn covers(r: Region, b: CropBox, w: usize, h: usize) -> bool {
    let x0 = b.left.clamp(0, w as i64);
    let x1 = (b.left + b.width as i64).clamp(0, w as i64);
    let y0 = b.top.clamp(0, h as i64);
    let y1 = (b.top + b.height as i64).clamp(0, h as i64);
    if x0 >= x1 || y0 >= y1 {
        return true; // nothing of the image is needed
    }
    x0 >= r.x as i64 && x1 <= (r.x + r.w) as i64 && y0 >= r.y as i64 && y1 <= (r.y + r.h) as i64
}

fn check_out(key: &str, size: usize, out: &[u8]) -> Result<()> {
    if size == 0 {
        return Err(Error::InvalidArgument(format!("sample {key}: output size must be positive")));
    }
    if out.len() != size * size * CHANNELS {
        return Err(Error::InvalidArgument(format!(
            "sample {key}: output buffer has {} bytes, expected {size}*{size}*3 = {}",
            out.len(),
            size * size * CHANNELS
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn replayer_is_send() {
        assert_send::<Replayer>();
    }

    pub(crate) fn test_jpeg(w: usize, h: usize, subsamp: turbojpeg::Subsamp) -> Vec<u8> {
        crate::imaging::test_images::jpeg(w, h, subsamp, false)
    }

    #[test]
    fn null_entry_is_a_full_image_resize() {
        let jpeg = test_jpeg(64, 48, turbojpeg::Subsamp::Sub2x2);
        let mut r = Replayer::new().unwrap();
        let mut a = vec![0u8; 32 * 32 * 3];
        let mut b = vec![0u8; 32 * 32 * 3];
        // The stored box of a null entry is ignored; its ops too.
        let mut null = AugParams::null(1, 1);
        null.ops = [(crate::aug::Op::Equalize, 0.0); 2];
        null.n_ops = 2;
        r.replay("n", &jpeg, &null, 32, Interpolation::Bicubic, &mut a).unwrap();
        let full = AugParams { is_null: false, n_ops: 0, ..AugParams::null(64, 48) };
        r.replay("f", &jpeg, &full, 32, Interpolation::Bicubic, &mut b).unwrap();
        assert_eq!(a, b);
    }

    /// One decode for many entries gives the pixels of one replay per entry,
    /// with and without a null entry (which forces a whole decode).
    #[test]
    fn replay_many_equals_one_replay_per_entry() {
        use crate::aug::Op;
        let jpeg = test_jpeg(160, 120, turbojpeg::Subsamp::Sub2x2);
        let entry = |top: i32, left: i32, h: i32, w: i32, op: Op, m: f64, hflip: bool| AugParams {
            top,
            left,
            height: h,
            width: w,
            ops: [(op, m), (Op::Contrast, 0.27)],
            n_ops: 2,
            is_null: false,
            hflip,
        };
        let mut augs = vec![
            entry(10, 20, 50, 40, Op::Rotate, 9.0, false),
            entry(-5, 100, 80, 90, Op::Equalize, 0.0, true),
            entry(70, 3, 30, 20, Op::ShearX, -0.09, false),
        ];
        for with_null in [false, true] {
            if with_null {
                augs.push(AugParams::null(160, 120));
            }
            let size = 24;
            let n = size * size * 3;
            let mut many = vec![0u8; augs.len() * n];
            let mut r = Replayer::new().unwrap();
            r.replay_many("m", &jpeg, &augs, size, Interpolation::Bicubic, &mut many).unwrap();
            for (aug, got) in augs.iter().zip(many.chunks_exact(n)) {
                let mut one = vec![0u8; n];
                Replayer::new().unwrap().replay("o", &jpeg, aug, size, Interpolation::Bicubic, &mut one).unwrap();
                assert_eq!(got, &one[..], "{aug:?}");
            }
        }
    }

    #[test]
    fn rejects_unknown_format_and_bad_output() {
        let mut r = Replayer::new().unwrap();
        let aug = AugParams::null(4, 4);
        let mut out = vec![0u8; 4 * 4 * 3];
        let e = r.replay("k1", b"GIF89a....", &aug, 4, Interpolation::Bilinear, &mut out).unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e}");
        assert!(e.to_string().contains("k1"));
        let e = r.replay("k2", b"", &aug, 5, Interpolation::Bilinear, &mut out).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }
}

/// Steady-state replay must not allocate on the Rust side (libjpeg-turbo's own
/// per-image working memory is C malloc, as in Pillow, and not counted here).
#[cfg(test)]
mod allocation {
    use super::tests::test_jpeg;
    use super::*;
    use crate::aug::Op;
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    struct Counting;

    thread_local! {
        static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.with(|c| c.set(c.get() + 1));
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            ALLOCATIONS.with(|c| c.set(c.get() + 1));
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    fn allocations() -> usize {
        ALLOCATIONS.with(|c| c.get())
    }

    #[test]
    fn steady_state_replay_does_not_allocate() {
        let big = test_jpeg(200, 150, turbojpeg::Subsamp::Sub2x2);
        let small = test_jpeg(120, 90, turbojpeg::Subsamp::None);
        let all_ops = [
            Op::Identity,
            Op::ShearX,
            Op::ShearY,
            Op::TranslateX,
            Op::TranslateY,
            Op::Rotate,
            Op::Brightness,
            Op::Color,
            Op::Contrast,
            Op::Sharpness,
            Op::Posterize,
            Op::Solarize,
            Op::AutoContrast,
            Op::Equalize,
        ];
        let mut r = Replayer::new().unwrap();
        let mut out = vec![0u8; 64 * 64 * 3];
        let run = |r: &mut Replayer, out: &mut [u8]| {
            for (i, &op) in all_ops.iter().enumerate() {
                let m = if op == Op::Posterize { 5.0 } else { 0.3 + i as f64 };
                for (j, bytes) in [&big, &small].into_iter().enumerate() {
                    let aug = AugParams {
                        top: -3 + j as i32 * 7,
                        left: 5,
                        height: 100 - 20 * j as i32,
                        width: 90 + i as i32,
                        ops: [(op, m), (all_ops[(i + 5) % 14], if i % 2 == 0 { -0.2 } else { 7.0 })],
                        n_ops: 2,
                        is_null: false,
                        hflip: j == 1,
                    };
                    let interp = if i % 2 == 0 { Interpolation::Bilinear } else { Interpolation::Bicubic };
                    r.replay("k", bytes, &aug, 64, interp, out).unwrap();
                }
            }
        };
        run(&mut r, &mut out); // warm-up: buffers grow to their working size
        let before = allocations();
        run(&mut r, &mut out);
        assert_eq!(allocations() - before, 0, "Rust-side allocations in steady state");
    }
}
