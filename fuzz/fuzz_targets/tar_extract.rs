//! `lca_hostops::archive::extract_tar` (`extract_tar_gz` for gzip input) into a fresh target
//! next to sentinel directories: never panics or hangs, nothing outside the target changes,
//! no device node, no hardlink out and no symlink leading above the target.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lca_fuzz::tar_checks::tar_extract(data);
});
