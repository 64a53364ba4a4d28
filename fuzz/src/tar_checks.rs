//! The invariants of the `tar_extract` fuzz target: `lca_hostops::archive::extract_tar` (and
//! `extract_tar_gz` for inputs with the gzip magic), the one place where untrusted archive
//! bytes become files on the node, writes nothing outside its target whatever the bytes.
//!
//! Each input is extracted into a fresh scratch tree, `<base>/outer/canary`,
//! `<base>/parent/sentinel/{canary,link}` and the empty `<base>/parent/target/`; afterwards
//! `base` and `parent` hold exactly what they held, the sentinels are unchanged (content,
//! mode, mtime, link count), and inside the target there is no device node, every regular
//! file's links are all inside the target, and no symlink resolves above the target (with
//! absolute targets taken as rooted at the target, which is what `AbsoluteSymlinks::Rooted`
//! keeps them for; `Refuse`, chosen for odd-length inputs, must leave none).
//!
//! Shared by the fuzz target (`lca_fuzz::tar_checks`) and the stable replay test
//! `crates/lca-cli/tests/fuzz_corpus.rs`, which includes this file with `#[path]`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use lca_hostops::archive::{self, AbsoluteSymlinks, Options};

/// An absolute path the seeds aim at; it must never appear.
pub const ABSOLUTE_CANARY: &str = "/tmp/lca-fuzz-tar-escape";

/// Symlinks followed at most while resolving one, as the kernel's `ELOOP` limit.
const MAX_HOPS: usize = 40;

/// What a path outside the target looks like; any change is an escape.
type Snapshot = BTreeMap<PathBuf, (u32, u64, i64, Vec<u8>)>;

/// `tar_extract`: the input extracted into a fresh scratch tree, then checked.
pub fn tar_extract(data: &[u8]) {
    let mut builder = tempfile::Builder::new();
    builder.prefix("lca-fuzz-tar-");
    // tmpfs where there is one: creating directories on the disk cost five times the rest
    // of an input here.
    let base = builder
        .tempdir_in("/dev/shm")
        .or_else(|_| builder.tempdir())
        .expect("a scratch directory");
    let root = base.path();
    let (target, before) = scratch(root);
    let absolute = if data.len() % 2 == 1 {
        AbsoluteSymlinks::Refuse
    } else {
        AbsoluteSymlinks::Rooted
    };
    let opts = Options {
        absolute_symlinks: absolute,
        ..Options::default()
    };
    let result = if data.starts_with(&[0x1f, 0x8b]) {
        let threads = thread_count();
        let result = archive::extract_tar_gz(std::io::Cursor::new(data.to_vec()), &target, &opts);
        settle(threads);
        result
    } else {
        archive::extract_tar(data, &target, &opts)
    };
    if let Ok(stats) = &result
        && !data.starts_with(&[0x1f, 0x8b])
    {
        assert!(
            stats.bytes <= data.len() as u64,
            "{stats:?} from {} bytes",
            data.len()
        );
    }
    assert_eq!(
        snapshot(root, &target),
        before,
        "something outside the target changed"
    );
    assert!(
        fs::symlink_metadata(ABSOLUTE_CANARY).is_err(),
        "{ABSOLUTE_CANARY} was created"
    );
    check_target(&target, absolute);
    make_removable(&target);
}

/// Lay out the scratch tree in `root`; the target and what lies outside it.
fn scratch(root: &Path) -> (PathBuf, Snapshot) {
    let outer = root.join("outer");
    let sentinel = root.join("parent/sentinel");
    let target = root.join("parent/target");
    for dir in [&outer, &sentinel, &target] {
        fs::create_dir_all(dir).expect("create a scratch directory");
    }
    fs::write(outer.join("canary"), b"outer\n").expect("write the outer canary");
    fs::write(sentinel.join("canary"), b"sentinel\n").expect("write the sentinel canary");
    symlink("../../outer/canary", sentinel.join("link")).expect("create the sentinel link");
    let before = snapshot(root, &target);
    (target, before)
}

/// Every path under `root` but those under `target`: mode, link count, mtime, content (or
/// link target).
fn snapshot(root: &Path, target: &Path) -> Snapshot {
    let mut out = Snapshot::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).expect("read a scratch directory") {
            let path = entry.expect("a scratch entry").path();
            if path == target {
                continue;
            }
            let m = fs::symlink_metadata(&path).expect("stat a scratch entry");
            let content = if m.file_type().is_symlink() {
                fs::read_link(&path)
                    .expect("read a scratch link")
                    .into_os_string()
                    .into_encoded_bytes()
            } else if m.is_file() {
                fs::read(&path).expect("read a scratch file")
            } else {
                todo.push(path.clone());
                Vec::new()
            };
            let rel = path.strip_prefix(root).expect("under the root").to_path_buf();
            out.insert(rel, (m.mode(), m.nlink(), m.mtime(), content));
        }
    }
    out
}

/// Inside the target: no device node or socket, no hardlink to a file outside, no symlink
/// that leads above the target, no absolute symlink unless they are `Rooted`.
fn check_target(target: &Path, absolute: AbsoluteSymlinks) {
    let mut links: HashMap<(u64, u64), (u64, u64)> = HashMap::new();
    let mut todo = vec![target.to_path_buf()];
    while let Some(dir) = todo.pop() {
        make_removable_dir(&dir);
        for entry in fs::read_dir(&dir).expect("read a target directory") {
            let path = entry.expect("a target entry").path();
            let m = fs::symlink_metadata(&path).expect("stat a target entry");
            let kind = m.file_type();
            assert!(
                !kind.is_block_device() && !kind.is_char_device() && !kind.is_socket(),
                "{} is a device node or socket",
                path.display()
            );
            if kind.is_dir() {
                todo.push(path);
            } else if kind.is_file() {
                let seen = links.entry((m.dev(), m.ino())).or_insert((m.nlink(), 0));
                seen.1 += 1;
            } else if kind.is_symlink() {
                let rel = path.strip_prefix(target).expect("under the target");
                check_symlink(target, rel, absolute);
            }
        }
    }
    for ((_, ino), (nlink, inside)) in links {
        assert_eq!(
            nlink, inside,
            "inode {ino} has {nlink} links, {inside} in the target"
        );
    }
}

/// Resolve the symlink `rel` (relative to `target`) as the kernel would with `target` as
/// `/`; a `..` above `/` is an escape.
fn check_symlink(target: &Path, rel: &Path, absolute: AbsoluteSymlinks) {
    // Components still to walk, owned: a link read on the way puts its own in front.
    let owned = |p: &Path| -> Vec<OsString> {
        p.components()
            .map(|c| match c {
                Component::RootDir => OsString::from("/"),
                other => other.as_os_str().to_os_string(),
            })
            .collect()
    };
    let mut todo: VecDeque<OsString> = owned(rel).into();
    let mut at: Vec<OsString> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop_front() {
        match c.to_str() {
            Some("/") => at.clear(),
            Some(".") => {}
            Some("..") => assert!(
                at.pop().is_some(),
                "the symlink {} leads above the target",
                rel.display()
            ),
            _ => {
                at.push(c);
                let here: PathBuf = at.iter().collect();
                let Ok(m) = fs::symlink_metadata(target.join(&here)) else {
                    return; // ENOENT: resolution stops here.
                };
                if m.file_type().is_symlink() {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return; // ELOOP
                    }
                    let link = fs::read_link(target.join(&here)).expect("read a target link");
                    assert!(
                        !(link.is_absolute() && absolute == AbsoluteSymlinks::Refuse),
                        "absolute symlink {} -> {} kept with Refuse",
                        here.display(),
                        link.display()
                    );
                    at.pop();
                    for c in owned(&link).into_iter().rev() {
                        todo.push_front(c);
                    }
                } else if !m.is_dir() && !todo.is_empty() {
                    return; // ENOTDIR
                }
            }
        }
    }
}

fn thread_count() -> usize {
    fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// Wait (at most 5 s) for the process to be back to `threads` threads. `extract_tar_gz`
/// does not join its inflate thread, which ends at its next send once the extraction
/// dropped the receiver: still running, its inflate state is what LeakSanitizer reports
/// as a leak. Not an assertion: the replay test runs other tests' threads alongside.
fn settle(threads: usize) {
    let start = std::time::Instant::now();
    while thread_count() > threads && start.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// Let the scratch tree be removed whatever modes the archive gave its directories.
fn make_removable(target: &Path) {
    let mut todo = vec![target.to_path_buf()];
    while let Some(dir) = todo.pop() {
        make_removable_dir(&dir);
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(entry.path());
            }
        }
    }
}

fn make_removable_dir(dir: &Path) {
    // Best effort: a directory it fails on shows up as an error reading it.
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
}

/// A check by the name of its target (`tar_extract`).
pub fn by_target(target: &str) -> Option<fn(&[u8])> {
    match target {
        "tar_extract" => Some(tar_extract),
        _ => None,
    }
}
