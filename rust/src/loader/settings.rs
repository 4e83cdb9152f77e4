//! The loader's settings as a user gives them (one field per keyword of
//! `FastReinforcedLoader`), and the one place each rule on them lives:
//! `LoaderConfig::new` turns them into a checked `LoaderConfig` or an
//! `Error::InvalidArgument` that names the setting. The bindings only parse
//! Python objects into these types (strings into the enums below).

use crate::error::{Error, Result};
use crate::imaging::{Interpolation, DECODE_MAX_PIXELS};
use crate::store::AccessPattern;

use super::batch::EmbeddingOutput;
use super::OnError;

/// A setting whose value is one of a few names (`image_dtype="uint8"`, ...).
pub trait Named: Copy + PartialEq + 'static {
    /// The setting (keyword) this is the value of, for error messages.
    const SETTING: &'static str;
    /// Every valid name with its value.
    const NAMES: &'static [(&'static str, Self)];

    fn from_name(name: &str) -> Result<Self> {
        Self::NAMES.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).ok_or_else(|| {
            let names: Vec<String> = Self::NAMES.iter().map(|(n, _)| format!("{n:?}")).collect();
            Error::InvalidArgument(format!("{} must be one of {}, got {name:?}", Self::SETTING, names.join(", ")))
        })
    }

    fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(_, v)| *v == self).map(|(n, _)| *n).expect("every value has a name")
    }
}

/// What `images` holds: raw pixels, or pixels normalised with `mean` / `std`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageDtype {
    Uint8,
    Float32,
}

/// Which captions a batch carries (`mix_probability` applies to "mix").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptionSetting {
    Both,
    Mix,
}

/// The epoch order; "auto" is shard blocks for a remote store, global for a local one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderSetting {
    Auto,
    Global,
    ShardBlock,
}

impl Named for Interpolation {
    const SETTING: &'static str = "interpolation";
    const NAMES: &'static [(&'static str, Self)] =
        &[("bicubic", Interpolation::Bicubic), ("bilinear", Interpolation::Bilinear)];
}

impl Named for ImageDtype {
    const SETTING: &'static str = "image_dtype";
    const NAMES: &'static [(&'static str, Self)] = &[("float32", ImageDtype::Float32), ("uint8", ImageDtype::Uint8)];
}

impl Named for EmbeddingOutput {
    const SETTING: &'static str = "embedding_output_dtype";
    const NAMES: &'static [(&'static str, Self)] =
        &[("float16", EmbeddingOutput::Float16), ("float32", EmbeddingOutput::Float32)];
}

impl Named for CaptionSetting {
    const SETTING: &'static str = "caption_mode";
    const NAMES: &'static [(&'static str, Self)] = &[("both", CaptionSetting::Both), ("mix", CaptionSetting::Mix)];
}

impl Named for OnError {
    const SETTING: &'static str = "on_error";
    const NAMES: &'static [(&'static str, Self)] = &[("skip", OnError::Skip), ("raise", OnError::Raise)];
}

impl Named for OrderSetting {
    const SETTING: &'static str = "order";
    const NAMES: &'static [(&'static str, Self)] =
        &[("auto", OrderSetting::Auto), ("global", OrderSetting::Global), ("shard_block", OrderSetting::ShardBlock)];
}

impl Named for AccessPattern {
    const SETTING: &'static str = "pattern";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("random", AccessPattern::Random),
        ("sequential", AccessPattern::Sequential),
        ("normal", AccessPattern::Normal),
    ];
}

/// Every keyword of the loader, as given (integers unchecked: any Python int
/// arrives here, saturated to the i128 range).
#[derive(Clone, Debug)]
pub struct LoaderSettings {
    pub batch_size: i128,
    pub image_size: i128,
    pub interpolation: Interpolation,
    pub image_dtype: ImageDtype,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub embedding_output_dtype: EmbeddingOutput,
    /// None: every core, at most `MAX_LOADER_THREADS`.
    pub num_threads: Option<i128>,
    /// None: twice `num_threads`.
    pub prefetch: Option<i128>,
    pub seed: i128,
    pub shuffle: bool,
    pub drop_last: bool,
    pub rank: i128,
    pub world_size: i128,
    pub caption_mode: CaptionSetting,
    pub mix_probability: f64,
    pub on_error: OnError,
    pub dct_scaling: Option<f64>,
    pub order: OrderSetting,
    pub shuffle_window: i128,
    /// Indices of the store's caption sets to draw synthetic captions from (None: every set);
    /// the Python side resolves names or a regex to these.
    pub caption_sets: Option<Vec<i128>>,
}

/// An integer setting within [minimum, 2**64 - 1] (the core counts in 64 bits).
pub fn integer(setting: &str, value: i128, minimum: u64) -> Result<u64> {
    if value < minimum as i128 || value > u64::MAX as i128 {
        return Err(Error::InvalidArgument(format!(
            "{setting} must be an integer in [{minimum}, 2**64 - 1], got {value}"
        )));
    }
    Ok(value as u64)
}

/// An integer setting that counts things in memory (a `usize`).
pub fn count(setting: &str, value: i128, minimum: u64) -> Result<usize> {
    let v = integer(setting, value, minimum)?;
    usize::try_from(v)
        .map_err(|_| Error::InvalidArgument(format!("{setting} {v} does not fit this machine's address space")))
}

/// A count with a stated bound below 2**64 (the message gives the real range).
pub fn count_at_most(setting: &str, value: i128, minimum: usize, maximum: usize) -> Result<usize> {
    if value < minimum as i128 || value > maximum as i128 {
        return Err(Error::InvalidArgument(format!(
            "{setting} must be an integer in [{minimum}, {maximum}], got {value}"
        )));
    }
    Ok(value as usize)
}

/// The side of a square output image (the loader's `image_size`, a replay's
/// `size`): at least 1, at most the pixels one decoded image may have
/// (Pillow's decompression-bomb limit), since buffers scale with its square.
pub fn output_side(setting: &str, value: i128) -> Result<usize> {
    let side = count(setting, value, 1)?;
    if (side as u128).pow(2) > DECODE_MAX_PIXELS as u128 {
        return Err(Error::InvalidArgument(format!(
            "{setting} {side} is too large: {side}x{side} is more than {DECODE_MAX_PIXELS} pixels"
        )));
    }
    Ok(side)
}

/// The inexact DCT-scaled decode (None: exact): the crop must be at least this
/// many times the output size on both sides for a JPEG to be decoded scaled.
pub fn dct_scaling(value: Option<f64>) -> Result<Option<f64>> {
    match value {
        Some(r) if !(r.is_finite() && r > 0.0) => {
            Err(Error::InvalidArgument(format!("dct_scaling must be a finite number > 0 or None, got {r}")))
        }
        _ => Ok(value),
    }
}

/// A per-channel setting (`mean`, `std`): three values, checked in float32,
/// the type the normalisation computes in.
fn rgb(setting: &str, values: &[f64]) -> Result<[f32; 3]> {
    match values {
        &[r, g, b] => Ok([r as f32, g as f32, b as f32]),
        _ => Err(Error::InvalidArgument(format!(
            "{setting} must have 3 values (one per RGB channel), got {}",
            values.len()
        ))),
    }
}

/// `mean` and `std` have one value per channel (raw output does not use them).
pub(super) fn rgb_lengths(mean: &[f64], std: &[f64]) -> Result<()> {
    rgb("mean", mean).and(rgb("std", std)).map(|_| ())
}

/// The normalisation of float32 output, or why it is not a valid one.
pub(super) fn normalisation(mean: &[f64], std: &[f64]) -> Result<([f32; 3], [f32; 3])> {
    let (mean, std) = (rgb("mean", mean)?, rgb("std", std)?);
    let bad = |m: String| Err(Error::InvalidArgument(m));
    if !mean.iter().all(|v| v.is_finite()) {
        return bad(format!("mean must be finite, got {mean:?}"));
    }
    if !std.iter().all(|v| v.is_normal()) {
        return bad(format!("std must be finite, non-zero and not subnormal in float32, got {std:?}"));
    }
    if !crate::imaging::planar::Normalize::new(mean, std).is_finite() {
        return bad(format!("mean {mean:?} and std {std:?} normalise some pixel values to infinity"));
    }
    Ok((mean, std))
}

/// The caption sets chosen by index: at least one, each once, each a valid index (checked against
/// the store's sets when the loader opens it, `caption_sets_in_store`).
pub(super) fn caption_set_indices(value: &Option<Vec<i128>>) -> Result<Option<Vec<usize>>> {
    let Some(indices) = value else { return Ok(None) };
    if indices.is_empty() {
        return Err(Error::InvalidArgument("caption_sets must choose at least one caption set".into()));
    }
    let mut out: Vec<usize> = Vec::with_capacity(indices.len());
    for &i in indices {
        let i = count("caption_sets index", i, 0)?;
        if out.contains(&i) {
            return Err(Error::InvalidArgument(format!("caption_sets chooses set {i} twice")));
        }
        out.push(i);
    }
    Ok(Some(out))
}

/// The chosen sets (None: all) of a store whose caption sets are `sets`, in the order given.
pub(super) fn caption_sets_in_store(
    chosen: Option<&[usize]>,
    sets: &[crate::store::CaptionSet],
) -> Result<Vec<super::sampler::ChosenSet>> {
    let offsets = crate::store::caption_set_offsets(sets);
    let all: Vec<usize> = (0..sets.len()).collect();
    let chosen = chosen.unwrap_or(&all);
    chosen
        .iter()
        .map(|&set| {
            if set >= sets.len() {
                let names: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
                return Err(Error::InvalidArgument(format!(
                    "caption_sets chooses set {set}, but the store has {} ({names:?})",
                    sets.len()
                )));
            }
            Ok(super::sampler::ChosenSet { set, offset: offsets[set], size: sets[set].s })
        })
        .collect()
}

/// A probability setting.
pub(super) fn probability(setting: &str, p: f64) -> Result<f64> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::InvalidArgument(format!("{setting} must be in [0, 1], got {p}")));
    }
    Ok(p)
}

/// Worker threads when the user names no number: one per core.
pub(super) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(super::MAX_LOADER_THREADS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::{CaptionMode, ImageOutput, LoaderConfig, Order};

    fn settings() -> LoaderSettings {
        LoaderSettings {
            batch_size: 4,
            image_size: 8,
            interpolation: Interpolation::Bicubic,
            image_dtype: ImageDtype::Float32,
            mean: vec![0.0; 3],
            std: vec![1.0; 3],
            embedding_output_dtype: EmbeddingOutput::Float16,
            num_threads: None,
            prefetch: None,
            seed: 0,
            shuffle: true,
            drop_last: false,
            rank: 0,
            world_size: 1,
            caption_mode: CaptionSetting::Both,
            mix_probability: 0.5,
            on_error: OnError::Skip,
            dct_scaling: None,
            order: OrderSetting::Auto,
            shuffle_window: 4,
            caption_sets: None,
        }
    }

    fn rejected(edit: impl FnOnce(&mut LoaderSettings)) -> String {
        let mut s = settings();
        edit(&mut s);
        match LoaderConfig::new(&s, false) {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn defaults_and_auto_order_resolve() {
        let local = LoaderConfig::new(&settings(), false).unwrap();
        assert!(local.num_threads >= 1 && local.num_threads <= crate::loader::MAX_LOADER_THREADS);
        assert_eq!(local.prefetch, 2 * local.num_threads);
        assert_eq!(local.sampler.order, Order::Global);
        assert_eq!(local.caption_mode, CaptionMode::Both);
        assert!(matches!(local.image, ImageOutput::Float32 { .. }));
        let remote = LoaderConfig::new(&settings(), true).unwrap();
        assert_eq!(remote.sampler.order, Order::ShardBlock { window: 4 });
    }

    #[test]
    fn each_rule_names_its_setting() {
        assert!(rejected(|s| s.batch_size = 0).starts_with("batch_size must be an integer in [1, 2**64 - 1], got 0"));
        assert!(rejected(|s| s.seed = -1).starts_with("seed must be an integer in [0, 2**64 - 1]"));
        assert!(rejected(|s| s.seed = u64::MAX as i128 + 1).starts_with("seed must be"));
        assert!(rejected(|s| s.image_size = 1 << 20).starts_with("image_size 1048576 is too large"));
        assert!(rejected(|s| s.num_threads = Some(1025))
            .starts_with("num_threads must be an integer in [1, 1024], got 1025"));
        assert!(rejected(|s| s.num_threads = Some(0)).starts_with("num_threads must be an integer in [1, 1024], got 0"));
        assert!(rejected(|s| s.rank = 1).starts_with("rank must be < world_size"));
        assert!(rejected(|s| s.shuffle_window = 0).starts_with("shuffle_window must be"));
        assert!(rejected(|s| s.mix_probability = f64::NAN).starts_with("mix_probability must be in [0, 1]"));
        assert!(rejected(|s| s.mean = vec![0.0; 2]).starts_with("mean must have 3 values"));
        assert!(rejected(|s| s.std[1] = 1e-50).starts_with("std must be finite, non-zero"));
        assert!(rejected(|s| s.dct_scaling = Some(0.0)).starts_with("dct_scaling must be"));
        assert!(rejected(|s| s.caption_sets = Some(vec![])).starts_with("caption_sets must choose at least one"));
        assert!(rejected(|s| s.caption_sets = Some(vec![1, 1])).starts_with("caption_sets chooses set 1 twice"));
        assert!(rejected(|s| s.caption_sets = Some(vec![-1])).starts_with("caption_sets index must be"));
        // Raw output does not normalise: mean/std need only their three values.
        let mut raw = settings();
        raw.image_dtype = ImageDtype::Uint8;
        raw.std[0] = 0.0;
        assert!(LoaderConfig::new(&raw, false).is_ok());
    }

    #[test]
    fn names_parse_both_ways_and_errors_list_the_valid_ones() {
        for &(name, value) in OrderSetting::NAMES {
            assert_eq!(OrderSetting::from_name(name).unwrap(), value);
            assert_eq!(value.name(), name);
        }
        match Interpolation::from_name("BICUBIC") {
            Err(Error::InvalidArgument(m)) => {
                assert_eq!(m, r#"interpolation must be one of "bicubic", "bilinear", got "BICUBIC""#)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn chosen_caption_sets_are_checked_against_the_store() {
        use crate::loader::sampler::ChosenSet;
        use crate::store::CaptionSet;
        let sets = [CaptionSet::new("syn_text", 3), CaptionSet::new("syn_text_b", 2)];
        let all = caption_sets_in_store(None, &sets).unwrap();
        let both = [ChosenSet { set: 0, offset: 0, size: 3 }, ChosenSet { set: 1, offset: 3, size: 2 }];
        assert_eq!(all, both);
        assert_eq!(caption_sets_in_store(Some(&[1]), &sets).unwrap(), both[1..]);
        match caption_sets_in_store(Some(&[2]), &sets) {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("chooses set 2") && m.contains("syn_text_b"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
