//! RandAugment op indices as stored in a record.

/// How many RandAugment ops there are (indices `0..NUM_OPS`).
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
    /// torchvision's name of the op (the key of `_augmentation_space`, the name `_apply_op` takes).
    pub fn name(self) -> &'static str {
        use Op::*;
        match self {
            Identity => "Identity",
            ShearX => "ShearX",
            ShearY => "ShearY",
            TranslateX => "TranslateX",
            TranslateY => "TranslateY",
            Rotate => "Rotate",
            Brightness => "Brightness",
            Color => "Color",
            Contrast => "Contrast",
            Sharpness => "Sharpness",
            Posterize => "Posterize",
            Solarize => "Solarize",
            AutoContrast => "AutoContrast",
            Equalize => "Equalize",
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_below_num_ops_is_an_op_and_maps_back() {
        for i in 0..=255u8 {
            match Op::from_index(i) {
                Some(op) => {
                    assert_eq!(op as u8, i);
                    assert_eq!(op.name(), format!("{op:?}"));
                }
                None => assert!(i >= NUM_OPS),
            }
        }
    }
}
