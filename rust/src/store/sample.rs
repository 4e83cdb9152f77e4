//! One sample as a writer takes it (`SampleInput`, borrowed from the caller) and as
//! it is stored (`EncodedSample`, checked against the store's dims and encoded).

use super::encode::{encode, named_error, EmbeddingValues, Encoded};
use super::schema::MAX_TOKENS;
use super::shard::check_aug_records;
use super::{Dims, EmbeddingDtype};
use crate::aug::AUG_RECORD_SIZE;
use crate::error::{Error, Result};

/// Token ids as the caller has them.
#[derive(Clone, Copy, Debug)]
pub enum TokenValues<'a> {
    U16(&'a [u16]),
    /// Any other integer type, widened.
    I64(&'a [i64]),
    /// Not integers (the name of the type, for the message).
    Other(&'a str),
}

#[derive(Clone, Copy, Debug)]
pub struct TokensInput<'a> {
    pub values: TokenValues<'a>,
    pub shape: &'a [usize],
}

#[derive(Clone, Copy, Debug)]
pub struct EmbeddingInput<'a> {
    pub values: EmbeddingValues<'a>,
    pub shape: &'a [usize],
    /// Scales of int8 input, [rows, K] float32.
    pub scales: Option<&'a [f32]>,
}

/// A sample before validation. Sizes are wide so out-of-range values are reported, not wrapped.
#[derive(Clone, Debug)]
pub struct SampleInput<'a> {
    pub uid: &'a str,
    pub image: &'a [u8],
    /// width, height, orig_width, orig_height
    pub size: [i128; 4],
    pub caption: &'a str,
    pub caption_tokens: TokensInput<'a>,
    pub syn_captions: Vec<&'a str>,
    pub syn_tokens: Vec<TokensInput<'a>>,
    /// J records of `AUG_RECORD_SIZE` bytes.
    pub aug: &'a [u8],
    pub image_emb: EmbeddingInput<'a>,
    pub text_emb: EmbeddingInput<'a>,
    pub sha256: Option<&'a [u8]>,
    pub flags: i128,
}

/// A validated sample in its stored form.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedSample {
    pub uid: String,
    pub image: Vec<u8>,
    pub size: [u32; 4],
    pub caption: String,
    pub caption_tokens: Vec<u16>,
    pub syn_captions: Vec<String>,
    pub syn_tokens: Vec<Vec<u16>>,
    pub aug: Vec<u8>,
    pub image_emb: Encoded,
    pub text_emb: Encoded,
    pub sha256: Option<[u8; 32]>,
    pub flags: u32,
}

impl EncodedSample {
    /// About how many bytes the sample adds to a shard (for rolling to a new one).
    pub fn nbytes(&self) -> usize {
        self.image.len()
            + self.uid.len()
            + self.caption.len()
            + self.aug.len()
            + self.image_emb.nbytes()
            + self.text_emb.nbytes()
            + self.syn_captions.iter().map(String::len).sum::<usize>()
            + 64
    }
}

/// Python's repr of a shape: `(3,)`, `(2, 8)`.
pub fn shape_repr(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// Python's repr of a str, for naming a sample in a message.
pub fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The error for bad sample `uid`: a ValueError in Python.
pub fn sample_error(uid: &str, what: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("sample {}: {what}", quoted(uid)))
}

fn tokens(t: &TokensInput<'_>, what: &str) -> std::result::Result<Vec<u16>, String> {
    if t.shape.len() != 1 {
        return Err(format!("{what} must be 1-D, got shape {}", shape_repr(t.shape)));
    }
    let n = t.shape[0];
    let ids = match t.values {
        TokenValues::U16(v) => v.to_vec(),
        TokenValues::I64(v) if v.iter().all(|&x| (0..=0xFFFF).contains(&x)) => v.iter().map(|&x| x as u16).collect(),
        TokenValues::Other(_) if n == 0 => Vec::new(),
        _ => return Err(format!("{what} must be integer token ids in 0..65535")),
    };
    if ids.len() > MAX_TOKENS {
        return Err(format!("{what} has {} tokens; at most {MAX_TOKENS} (SOT and EOT included)", ids.len()));
    }
    Ok(ids)
}

fn embedding(
    e: &EmbeddingInput<'_>,
    rows: usize,
    dims: Dims,
    dtype: EmbeddingDtype,
    what: &str,
) -> std::result::Result<Encoded, String> {
    if e.shape != [rows, dims.row_len()] {
        return Err(format!("{what} must have shape ({rows}, {}), got {}", dims.row_len(), shape_repr(e.shape)));
    }
    encode(e.values, rows, dims.k, dtype, e.scales).map_err(|m| named_error(what, &m))
}

impl SampleInput<'_> {
    /// Check the sample against the store's dims and encode it; errors name the sample.
    pub fn encode(&self, dims: Dims, dtype: EmbeddingDtype) -> Result<EncodedSample> {
        self.encode_inner(dims, dtype).map_err(|m| sample_error(self.uid, m))
    }

    fn encode_inner(&self, dims: Dims, dtype: EmbeddingDtype) -> std::result::Result<EncodedSample, String> {
        let Dims { j, s, .. } = dims;
        if self.size.iter().any(|&v| !(0..=u32::MAX as i128).contains(&v)) {
            let [w, h, ow, oh] = self.size;
            return Err(format!("width/height/orig_width/orig_height ({w}, {h}, {ow}, {oh}) must fit uint32"));
        }
        if self.syn_captions.len() != s {
            return Err(format!("syn_captions must be {s} strings, got {}", self.syn_captions.len()));
        }
        if self.syn_tokens.len() != s {
            return Err(format!("syn_tokens must hold {s} arrays, got {}", self.syn_tokens.len()));
        }
        if self.aug.len() != j * AUG_RECORD_SIZE {
            return Err(format!("aug must have shape ({j},), got ({},)", self.aug.len() / AUG_RECORD_SIZE));
        }
        check_aug_records(self.aug, j).map_err(|m| format!("aug: {m}"))?;
        let image_emb = embedding(&self.image_emb, j, dims, dtype, "image_emb")?;
        let text_emb = embedding(&self.text_emb, dims.text_rows(), dims, dtype, "text_emb")?;
        let sha256 = match self.sha256 {
            None => None,
            Some(h) => Some(<[u8; 32]>::try_from(h).map_err(|_| format!("sha256 must be 32 bytes, got {}", h.len()))?),
        };
        if !(0..=u32::MAX as i128).contains(&self.flags) {
            return Err(format!("flags {} must fit uint32", self.flags));
        }
        let caption_tokens = tokens(&self.caption_tokens, "caption_tokens")?;
        let syn_tokens = self
            .syn_tokens
            .iter()
            .enumerate()
            .map(|(k, t)| tokens(t, &format!("syn_tokens[{k}]")))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(EncodedSample {
            uid: self.uid.to_string(),
            image: self.image.to_vec(),
            size: self.size.map(|v| v as u32),
            caption: self.caption.to_string(),
            caption_tokens,
            syn_captions: self.syn_captions.iter().map(|c| c.to_string()).collect(),
            syn_tokens,
            aug: self.aug.to_vec(),
            image_emb,
            text_emb,
            sha256,
            flags: self.flags as u32,
        })
    }
}
