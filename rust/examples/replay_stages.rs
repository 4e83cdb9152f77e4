//! Driver for instruction counting (`valgrind --tool=callgrind`) of the
//! loader's per-sample image work, stage by stage; run by
//! `benches/bench_per_core.py --callgrind`. Reads a cases file (see
//! `write_cases` there), replays every case `rounds` times with one reused
//! replayer and writes each result into a 32-row batch, as the loader does.
//!
//!     cargo run --release --example replay_stages -- CASES SIZE INTERP OUTPUT ROUNDS

use _core::aug::{AugParams, Op};
use _core::imaging::Interpolation;
use _core::loader::stage_timing::time_stages;
use _core::loader::{ImageOutput, Named};

/// Records: u32 length, JPEG bytes, i32 top, left, height, width, u8 n_ops,
/// n_ops x (u8 op, f64 magnitude); all little-endian.
fn read_cases(data: &[u8]) -> Vec<(Vec<u8>, AugParams)> {
    let mut rest = data;
    let mut take = |n: usize| {
        let (s, r) = rest.split_at(n);
        rest = r;
        s
    };
    let mut cases = Vec::new();
    for _ in 0..count_records(data) {
        let n = u32::from_le_bytes(take(4).try_into().unwrap()) as usize;
        let jpeg = take(n).to_vec();
        let mut b = [0i32; 4];
        for v in &mut b {
            *v = i32::from_le_bytes(take(4).try_into().unwrap());
        }
        let n_ops = take(1)[0];
        let mut ops = [(Op::Identity, 0.0); 2];
        for slot in ops.iter_mut().take(n_ops as usize) {
            let op = Op::from_index(take(1)[0]).expect("op index");
            *slot = (op, f64::from_le_bytes(take(8).try_into().unwrap()));
        }
        let aug =
            AugParams { top: b[0], left: b[1], height: b[2], width: b[3], ops, n_ops, is_null: false, hflip: false };
        cases.push((jpeg, aug));
    }
    cases
}

/// Number of records in a cases file (walks the length fields).
fn count_records(data: &[u8]) -> usize {
    let (mut at, mut n) = (0, 0);
    while at < data.len() {
        at += 4 + u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize + 16;
        at += 1 + 9 * data[at] as usize;
        n += 1;
    }
    n
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    assert_eq!(a.len(), 6, "usage: replay_stages CASES SIZE INTERP OUTPUT ROUNDS");
    let cases = read_cases(&std::fs::read(&a[1]).expect("cases file"));
    let size: usize = a[2].parse().unwrap();
    let interp = Interpolation::from_name(&a[3]).expect("interpolation");
    let image = match a[4].as_str() {
        "uint8" => ImageOutput::Uint8,
        _ => ImageOutput::Float32 { mean: [0.0; 3], std: [1.0; 3] },
    };
    let rounds: usize = a[5].parse().unwrap();
    let t = time_stages(&cases, size, interp, image, rounds).expect("replay");
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6 / t.samples as f64;
    println!(
        "{} samples; us per sample: decode {:.0} resize {:.0} ops {:.0} write {:.0}",
        t.samples,
        us(t.decode),
        us(t.resize),
        us(t.ops),
        us(t.write)
    );
}
