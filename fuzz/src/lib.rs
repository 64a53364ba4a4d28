//! The invariants of the fuzz targets (see `checks`), in a library so that the targets and the
//! stable replay test `crates/lca-core/tests/fuzz_corpus.rs` share one copy.

pub mod checks;
