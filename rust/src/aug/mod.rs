//! The augmentation entries of DataCompDR (`param_aug`) and the 40-byte record
//! the store keeps for each. This module is the only definition of the record:
//! its layout (`record`), its validity rule (`AugParams::validate`, used by the
//! reader, the writer, the loader and, through `_core`, by Python), the box
//! rescaling rule (`rescale`) and the parsing of upstream entries (`param_aug`,
//! which takes them as `Item`s).

mod item;
mod op;
pub mod param_aug;
mod record;
mod rescale;

pub use item::Item;
pub use op::{Op, NUM_OPS};
pub use record::{
    AugParams, Field, FieldKind, InvalidRecord, AUG_RECORD_SIZE, FIELDS, FLAG_HFLIP, FLAG_NULL, MAX_OPS_PER_ENTRY,
};
pub use rescale::{rescale_box, RescaleError};
