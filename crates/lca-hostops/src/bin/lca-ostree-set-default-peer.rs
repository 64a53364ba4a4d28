//! Test peer: implements `ostree admin set-default <index> [--sysroot=PATH]` with libostree,
//! for machines whose ostree CLI (Debian 12's 2022.7) lacks the subcommand. Integration tests
//! put a wrapper named `ostree` first in PATH that sends `admin set-default` here and everything
//! else to the real ostree, so the CLI path of `ostree::set_default` runs against a real sysroot.
//! Not used in production.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut sysroot = PathBuf::from("/");
    let mut index = None;
    for arg in std::env::args().skip(1) {
        if let Some(p) = arg.strip_prefix("--sysroot=") {
            sysroot = PathBuf::from(p);
        } else if arg == "admin" || arg == "set-default" {
        } else if let Ok(i) = arg.parse::<usize>() {
            index = Some(i);
        } else {
            eprintln!("error: unexpected argument {arg:?}");
            return ExitCode::from(2);
        }
    }
    let Some(index) = index else {
        eprintln!("error: INDEX must be specified");
        return ExitCode::from(2);
    };
    match lca_hostops::ostree::libostree::set_default(&sysroot, index) {
        Ok(()) => {
            println!("Bootloader updated; new default deployment index: {index}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
