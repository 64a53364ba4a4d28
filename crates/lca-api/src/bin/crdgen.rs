//! `crdgen [DIR]`: writes the CRDs generated from the Rust types into DIR (default
//! `config/crd`), or with `--check` fails when the files there differ from them.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut check = false;
    let mut dir = PathBuf::from("config/crd");
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            other => dir = PathBuf::from(other),
        }
    }
    let mut drift = false;
    for (file, crd) in lca_api::crd::all() {
        let path = dir.join(file);
        let want = lca_api::crd::to_yaml(&crd);
        if check {
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            if have != want {
                eprintln!(
                    "crdgen: {} differs from the Rust types; run `make manifests`",
                    path.display()
                );
                drift = true;
            }
        } else if let Err(e) = std::fs::write(&path, want) {
            eprintln!("crdgen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if drift {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
