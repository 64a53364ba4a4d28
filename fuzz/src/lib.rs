//! The invariants of the fuzz targets, in a library so that the targets and the stable
//! replay tests share one copy: `checks` (lca-core's decoders) is replayed by
//! `crates/lca-core/tests/fuzz_corpus.rs`; `api_checks`, `seed_checks` and `tar_checks`
//! (which need lca-api, lca-seed and lca-hostops) by `crates/lca-cli/tests/fuzz_corpus.rs`.
//! Both tests include these files with `#[path]`, and `replay` (the corpus walk they share).

pub mod api_checks;
pub mod checks;
pub mod replay;
pub mod seed_checks;
pub mod tar_checks;
