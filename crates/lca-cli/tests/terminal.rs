//! `lca-cli` for a person at a terminal: `extract` and `precache` draw progress bars when
//! stderr is a terminal (a pseudo-terminal here), and write only log lines to a pipe (a Job
//! log, a systemd journal).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{lca_cli_bin, sh};

/// The bar's filled cell.
const BAR: char = '█';

/// Run `lca-cli --host-root root args` with stderr on a new pseudo-terminal: exit status and
/// what the terminal received.
fn on_terminal(root: &Path, args: &[&str]) -> (bool, String) {
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut child = Command::new(lca_cli_bin())
        .arg("--host-root")
        .arg(root)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::from(pty.slave))
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(pty.master);
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    // The read fails (EIO) once the child, the last holder of the terminal, has exited.
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    let ok = child.wait().unwrap().success();
    (ok, String::from_utf8_lossy(&seen).into_owned())
}

fn piped(root: &Path, args: &[&str]) -> (bool, String) {
    let out = common::lca_cli(root, args, &[]);
    (out.status.success(), common::stderr(&out))
}

#[test]
fn extract_draws_a_bar_on_a_terminal_and_logs_to_a_pipe() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data"), vec![7u8; 4 << 20]).unwrap();
    let archive = work.path().join("data.tgz");
    sh(&[
        "tar",
        "czf",
        archive.to_str().unwrap(),
        "-C",
        src.to_str().unwrap(),
        ".",
    ]);
    let args = |target: &str| {
        vec![
            "extract".to_string(),
            "--target".into(),
            work.path().join(target).display().to_string(),
            archive.display().to_string(),
        ]
    };
    let tty_args = args("tty");
    let (ok, tty) = on_terminal(
        Path::new("/"),
        &tty_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(ok, "{tty}");
    assert!(
        tty.contains("extract") && tty.contains(BAR),
        "a bar on the terminal:\n{tty}"
    );
    // The archive's ~4 KiB as position/total (`<n> KiB/<n> KiB`); the rate's unit depends on
    // the machine's speed (MiB/s idle, KiB/s under load), so it proves nothing.
    assert!(
        tty.contains(" KiB/") && !tty.contains(" kB"),
        "bytes in binary units:\n{tty}"
    );
    let pipe_args = args("pipe");
    let (ok, log) = piped(
        Path::new("/"),
        &pipe_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(ok, "{log}");
    assert!(!log.contains(BAR), "no bar in a log:\n{log}");
    assert!(
        log.lines()
            .any(|l| l.contains(r#""message":"done""#) && l.contains(r#""phase":"extract""#)),
        "a log line with the phase's total:\n{log}"
    );
    assert_eq!(
        std::fs::read(work.path().join("tty/data")).unwrap().len(),
        4 << 20
    );
}

#[test]
fn precache_counts_images_on_a_terminal() {
    let node = tempfile::tempdir().unwrap();
    let list = node.path().join("images.txt");
    // Nothing listens on port 1: each pull fails at once, and best effort forgives them.
    std::fs::write(&list, "127.0.0.1:1/lca/a:1\n127.0.0.1:1/lca/b:1\n").unwrap();
    let status = node.path().join("status.json");
    let args = common::precache_args(&list, &status, &["--pull-attempts", "1", "--best-effort"]);
    let (ok, tty) = on_terminal(node.path(), &args);
    assert!(ok, "{tty}");
    assert!(
        tty.contains("precache") && tty.contains("2/2"),
        "images counted on the terminal:\n{tty}"
    );
    let (ok, log) = piped(node.path(), &args);
    assert!(ok, "{log}");
    assert!(!log.contains("2/2"), "no bar in a log:\n{log}");
}
