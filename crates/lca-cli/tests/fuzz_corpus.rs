//! The committed fuzz corpus of the targets that need the node crates (`fuzz/corpus/<target>/`,
//! plus any reproducers under `fuzz/regressions/<target>/`) replayed on stable, without
//! libFuzzer, through the same invariant checks as the fuzz targets (`fuzz/src/*_checks.rs`,
//! included below). Here because lca-cli depends on every crate they call (lca-api,
//! lca-core, lca-hostops, lca-seed); lca-core's own decoders are replayed by
//! `crates/lca-core/tests/fuzz_corpus.rs`.

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/src/api_checks.rs"]
mod api_checks;
#[path = "../../../fuzz/src/replay.rs"]
mod replay;
#[path = "../../../fuzz/src/seed_checks.rs"]
mod seed_checks;
#[path = "../../../fuzz/src/tar_checks.rs"]
mod tar_checks;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn replay(target: &str) {
    let check = api_checks::by_target(target)
        .or_else(|| seed_checks::by_target(target))
        .or_else(|| tar_checks::by_target(target))
        .expect("a known target");
    replay::replay(&fuzz_dir(), target, check);
}

#[test]
fn seed_labels_corpus_keeps_the_invariants() {
    replay("seed_labels");
}

#[test]
fn seed_reconfiguration_corpus_keeps_the_invariants() {
    replay("seed_reconfiguration");
}

#[test]
fn ibu_json_corpus_keeps_the_invariants() {
    replay("ibu_json");
}

#[test]
fn autorollback_config_corpus_keeps_the_invariants() {
    replay("autorollback_config");
}

#[test]
fn tar_extract_corpus_keeps_the_invariants() {
    replay("tar_extract");
}
