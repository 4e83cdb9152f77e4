//! How teacher embeddings are stored.

/// Element type of `image_emb` / `text_emb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EmbeddingDtype {
    /// IEEE half (Arrow halffloat).
    Float16,
    /// bfloat16 stored as its raw 16 bits (Arrow uint16): Arrow has no bf16 type.
    BFloat16,
    /// Symmetric int8 with one float32 scale per (row, teacher): x = q * scale.
    Int8,
}

impl EmbeddingDtype {
    /// Every stored element type, in the order the docs list them.
    pub const ALL: [EmbeddingDtype; 3] = [Self::Float16, Self::BFloat16, Self::Int8];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "float16" => Some(Self::Float16),
            "bfloat16" => Some(Self::BFloat16),
            "int8" => Some(Self::Int8),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Float16 => "float16",
            Self::BFloat16 => "bfloat16",
            Self::Int8 => "int8",
        }
    }

    /// Bytes per element.
    pub fn itemsize(&self) -> usize {
        match self {
            Self::Float16 | Self::BFloat16 => 2,
            Self::Int8 => 1,
        }
    }

    /// Whether the shard carries `image_emb_scale` / `text_emb_scale`.
    pub fn has_scales(&self) -> bool {
        matches!(self, Self::Int8)
    }
}

impl std::fmt::Display for EmbeddingDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
