//! The committed fuzz corpus (`fuzz/corpus/<target>/`, plus any reproducers under
//! `fuzz/regressions/<target>/`) replayed on stable, without libFuzzer, through the same
//! invariant checks as the fuzz targets (`fuzz/src/checks.rs`, included below), so that CI
//! keeps every input the fuzzer once found interesting.

use std::panic;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[path = "../../../fuzz/src/checks.rs"]
mod checks;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `dir` (none when it does not exist), hidden ones skipped, by name.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("read corpus entry").path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let check = checks::by_target(target).expect("a known target");
    let corpus = inputs(&fuzz_dir().join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "no corpus for {target} under {}",
        fuzz_dir().display()
    );
    let regressions = inputs(&fuzz_dir().join("regressions").join(target));
    let start = Instant::now();
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).expect("read corpus file");
        if panic::catch_unwind(|| check(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    eprintln!(
        "{target}: {} corpus + {} regression inputs in {:?}",
        corpus.len(),
        regressions.len(),
        start.elapsed()
    );
    assert!(failed.is_empty(), "{target}: invariants broken by {failed:#?}");
}

#[test]
fn apply_label_corpus_keeps_the_invariants() {
    replay("apply_label");
}

#[test]
fn oadp_configmap_corpus_keeps_the_invariants() {
    replay("oadp_configmap");
}
