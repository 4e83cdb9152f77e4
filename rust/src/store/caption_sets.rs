//! Caption sets (docs/FORMAT.md, "Caption sets"): several synthetic caption sets stored side by
//! side in `syn_captions` / `syn_tokens` / `text_emb`. Set i holds synthetic positions
//! `o_i .. o_i + S_i` (o_i = S_0 + ... + S_{i-1}); `dims.S` is the sum. One set named `syn_text` is
//! the plain case and is written without the key, so such a store is byte-identical to a store
//! without sets; one set of another name (DFNDR's `syn_text_<tag>` alone) keeps its name in the key,
//! so a set regex such as Apple's `^syn_text_dfn` still finds it.

use serde::{Deserialize, Serialize};

/// The name of the one set of a store that lists none (schema 1, or one set).
pub const DEFAULT_CAPTION_SET: &str = "syn_text";
/// The manifest key and the shard schema metadata key.
pub const CAPTION_SETS_KEY: &str = "caption_sets";

/// One caption set: its name and how many synthetic captions each sample has in it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptionSet {
    pub name: String,
    #[serde(rename = "S")]
    pub s: usize,
}

impl CaptionSet {
    pub fn new(name: impl Into<String>, s: usize) -> CaptionSet {
        CaptionSet { name: name.into(), s }
    }
}

/// The rules a stored `caption_sets` list obeys (checked on open and before writing): at least one
/// set, and not the plain case (one set named `syn_text`, written without the key: one store, one
/// encoding), names non-empty, unique and printable, each S_i >= 1, and the S_i sum to `total_s`.
/// `Err` says what is wrong (the caller names the file).
pub fn check_caption_sets(sets: &[CaptionSet], total_s: usize) -> Result<(), String> {
    if sets.is_empty() {
        return Err("caption_sets lists no set; it lists at least one (or the key is absent)".into());
    }
    if is_plain(sets) {
        return Err(format!(
            "caption_sets lists the one set {DEFAULT_CAPTION_SET:?}, the plain case, which is written without the key"
        ));
    }
    check_sets(sets, total_s)
}

/// One set named `syn_text`: what a store without the key means.
fn is_plain(sets: &[CaptionSet]) -> bool {
    sets.len() == 1 && sets[0].name == DEFAULT_CAPTION_SET
}

/// The rules every list of sets obeys, one set included.
fn check_sets(sets: &[CaptionSet], total_s: usize) -> Result<(), String> {
    let mut sum = 0usize;
    for (n, set) in sets.iter().enumerate() {
        let name = &set.name;
        if name.is_empty() {
            return Err(format!("caption set {n} has an empty name"));
        }
        if name.chars().any(char::is_control) {
            return Err(format!("caption set {n} name {name:?} has a control character"));
        }
        if sets[..n].iter().any(|other| other.name == *name) {
            return Err(format!("caption set name {name:?} is listed twice"));
        }
        if set.s == 0 {
            return Err(format!("caption set {name:?} has S=0; each set has at least 1 caption"));
        }
        sum = sum.checked_add(set.s).ok_or_else(|| "caption set sizes overflow a 64-bit sum".to_string())?;
    }
    if sum != total_s {
        let sizes: Vec<String> = sets.iter().map(|s| format!("{}={}", s.name, s.s)).collect();
        return Err(format!("caption set sizes ({}) sum to {sum}, but dims S is {total_s}", sizes.join(", ")));
    }
    Ok(())
}

/// What a writer stores for the sets a caller gives: `None` (no key) for none or the plain case (one
/// set named `syn_text`, holding all S captions), else the list (one set of another name included).
pub fn stored_caption_sets(sets: Option<Vec<CaptionSet>>, total_s: usize) -> Result<Option<Vec<CaptionSet>>, String> {
    match sets {
        None => Ok(None),
        Some(sets) if sets.is_empty() => Err("caption_sets is empty; give at least one set (or None)".into()),
        Some(sets) if is_plain(&sets) => check_sets(&sets, total_s).map(|()| None),
        Some(sets) => check_caption_sets(&sets, total_s).map(|()| Some(sets)),
    }
}

/// Whether a store of `schema_version` can hold the stored list `stored` (`stored_caption_sets`):
/// schema 1 holds only the plain case.
pub fn check_schema_holds(stored: Option<&[CaptionSet]>, schema_version: u32) -> Result<(), String> {
    if stored.is_some() && schema_version < 2 {
        let why = "schema_version 1 holds the one set syn_text only; write named or several caption sets with";
        return Err(format!("{why} schema_version 2"));
    }
    Ok(())
}

/// The sets of a store whose stored list is `stored`: the list, or the one default set of S captions.
pub fn resolved_caption_sets(stored: Option<&[CaptionSet]>, total_s: usize) -> Vec<CaptionSet> {
    match stored {
        Some(sets) => sets.to_vec(),
        None => vec![CaptionSet::new(DEFAULT_CAPTION_SET, total_s)],
    }
}

/// The compact JSON the shard schema metadata holds under `caption_sets`.
pub fn caption_sets_json(sets: &[CaptionSet]) -> String {
    serde_json::to_string(sets).expect("a list of names and sizes serialises")
}

/// The first synthetic position of each set, then S: `offsets[i]..offsets[i+1]` is set i.
pub fn caption_set_offsets(sets: &[CaptionSet]) -> Vec<usize> {
    let mut offsets = Vec::with_capacity(sets.len() + 1);
    let mut at = 0usize;
    offsets.push(0);
    for set in sets {
        at += set.s;
        offsets.push(at);
    }
    offsets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(list: &[(&str, usize)]) -> Vec<CaptionSet> {
        list.iter().map(|&(n, s)| CaptionSet::new(n, s)).collect()
    }

    #[test]
    fn good_lists_pass_and_give_offsets() {
        let two = sets(&[("syn_text", 5), ("syn_text_dfn", 3)]);
        check_caption_sets(&two, 8).unwrap();
        assert_eq!(caption_set_offsets(&two), vec![0, 5, 8]);
        assert_eq!(caption_sets_json(&two), r#"[{"name":"syn_text","S":5},{"name":"syn_text_dfn","S":3}]"#);
    }

    #[test]
    fn each_rule_refuses() {
        let cases: [(Vec<CaptionSet>, usize, &str); 9] = [
            (sets(&[("syn_text", 5)]), 5, "the plain case"),
            (sets(&[]), 0, "at least one"),
            (sets(&[("syn_text_dfn", 4)]), 5, "sum to 4, but dims S is 5"),
            (sets(&[("", 2), ("b", 3)]), 5, "empty name"),
            (sets(&[("a\n", 2), ("b", 3)]), 5, "control character"),
            (sets(&[("a", 2), ("a", 3)]), 5, "listed twice"),
            (sets(&[("a", 0), ("b", 5)]), 5, "S=0"),
            (sets(&[("a", 2), ("b", 2)]), 5, "sum to 4, but dims S is 5"),
            (sets(&[("a", usize::MAX), ("b", 2)]), 5, "overflow"),
        ];
        for (list, total, want) in cases {
            let err = check_caption_sets(&list, total).unwrap_err();
            assert!(err.contains(want), "{list:?}: {err}");
        }
    }

    #[test]
    fn a_writer_stores_one_set_as_the_plain_case() {
        assert_eq!(stored_caption_sets(None, 5).unwrap(), None);
        assert_eq!(stored_caption_sets(Some(sets(&[("syn_text", 5)])), 5).unwrap(), None);
        assert!(stored_caption_sets(Some(sets(&[("syn_text", 4)])), 5).unwrap_err().contains("dims S is 5"));
        assert!(stored_caption_sets(Some(vec![]), 5).unwrap_err().contains("empty"));
        let two = sets(&[("a", 2), ("b", 3)]);
        assert_eq!(stored_caption_sets(Some(two.clone()), 5).unwrap(), Some(two));
        let tagged = sets(&[("syn_text_dfn_mscoco38k", 5)]); // one set of another name keeps its name
        assert_eq!(stored_caption_sets(Some(tagged.clone()), 5).unwrap(), Some(tagged.clone()));
        check_caption_sets(&tagged, 5).unwrap();
        assert_eq!(resolved_caption_sets(None, 7), sets(&[("syn_text", 7)]));
    }
}
