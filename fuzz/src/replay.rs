//! Replaying the committed fuzz corpus on stable, without libFuzzer: every file of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through the target's check.
//! Included with `#[path]` by the replay tests (`crates/lca-core/tests/fuzz_corpus.rs`,
//! `crates/lca-cli/tests/fuzz_corpus.rs`), so only `std`.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One input may take this long before it counts as a hang (libFuzzer's `-timeout` in the
/// smoke run is 10 s; a debug build on a busy CI machine is slower).
const HANG: Duration = Duration::from_secs(60);

/// The files of `dir` (none when it does not exist), hidden ones skipped, by name.
pub fn inputs(dir: &Path) -> Vec<PathBuf> {
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

/// Run `check` on every committed input of `target` under `fuzz_dir`; fails naming each
/// input that panicked or hung, and when the corpus is missing or empty.
pub fn replay(fuzz_dir: &Path, target: &str, check: fn(&[u8])) {
    let corpus = inputs(&fuzz_dir.join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "no corpus for {target} under {}",
        fuzz_dir.display()
    );
    let regressions = inputs(&fuzz_dir.join("regressions").join(target));
    let start = Instant::now();
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).expect("read corpus file");
        if let Err(why) = run(check, data) {
            failed.push(format!("{} ({why})", path.display()));
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

/// `check(data)` on its own thread: a panic is a failure, and so is a hang (the thread is
/// left behind; the test fails anyway).
fn run(check: fn(&[u8]), data: Vec<u8>) -> Result<(), &'static str> {
    let (done, wait) = mpsc::channel();
    std::thread::spawn(move || {
        check(&data);
        // The receiver is gone only after a hang was reported.
        let _ = done.send(());
    });
    match wait.recv_timeout(HANG) {
        Ok(()) => Ok(()),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("panicked"),
        Err(mpsc::RecvTimeoutError::Timeout) => Err("hung"),
    }
}
