//! The committed fuzz corpus of lca-core's decoders (`fuzz/corpus/<target>/`, plus any
//! reproducers under `fuzz/regressions/<target>/`) replayed on stable, without libFuzzer,
//! through the same invariant checks as the fuzz targets (`fuzz/src/checks.rs`, included
//! below), so that CI keeps every input the fuzzer once found interesting. The targets that
//! need the node crates are replayed by `crates/lca-cli/tests/fuzz_corpus.rs`.

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/src/checks.rs"]
mod checks;
#[path = "../../../fuzz/src/replay.rs"]
mod replay;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn replay(target: &str) {
    let check = checks::by_target(target).expect("a known target");
    replay::replay(&fuzz_dir(), target, check);
}

#[test]
fn apply_label_corpus_keeps_the_invariants() {
    replay("apply_label");
}

#[test]
fn oadp_configmap_corpus_keeps_the_invariants() {
    replay("oadp_configmap");
}

#[test]
fn extra_manifests_corpus_keeps_the_invariants() {
    replay("extra_manifests");
}
