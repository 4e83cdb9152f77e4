//! What every worker of every pass records for the loader's user: samples
//! delivered and samples skipped (each with its replacement).

use std::collections::HashSet;
use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;

/// A sample that could not be used and what replaced it.
#[derive(Clone, Debug)]
pub struct SkippedSample {
    pub index: u64,
    pub uid: String,
    pub reason: String,
    /// The sample delivered in its place: the next one in index order that decodes.
    pub replacement: u64,
}

/// Every sample skipped so far, each listed once (in the order first met).
#[derive(Default)]
pub struct SkipLog {
    samples: Vec<SkippedSample>,
    seen: HashSet<u64>,
}

impl SkipLog {
    pub fn record(&mut self, s: SkippedSample) {
        if self.seen.insert(s.index) {
            self.samples.push(s);
        }
    }

    pub fn samples(&self) -> &[SkippedSample] {
        &self.samples
    }
}

/// Counters shared by all workers of all passes, readable at any time.
#[derive(Default)]
pub struct Stats {
    pub samples: AtomicUsize,
    pub skipped: Mutex<SkipLog>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_log_lists_each_sample_once() {
        let mut log = SkipLog::default();
        let s =
            |index, replacement| SkippedSample { index, uid: format!("u{index}"), reason: "bad".into(), replacement };
        for (i, r) in [(3, 5), (4, 5), (4, 5), (3, 5), (9, 0)] {
            log.record(s(i, r));
        }
        let got: Vec<_> = log.samples().iter().map(|s| (s.index, s.replacement)).collect();
        assert_eq!(got, vec![(3, 5), (4, 5), (9, 0)]);
    }
}
