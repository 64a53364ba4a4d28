//! Safe extraction of tar and tar.gz archives: seed image layers and the `var.tgz`,
//! `etc.tgz` and `ostree.tgz` inside them. Sits under every "unpack" of lca-rs (Prep's
//! stateroot setup, `lca-seed` pulls) and is the only place that turns untrusted archive
//! bytes into files on the node.
//!
//! Guarantees: nothing is ever written outside the target. Entries with absolute paths or
//! `..` components, hardlinks to paths outside the archive, symlinks whose target climbs
//! above the target, device nodes and sparse files are refused, with the entry's name.
//! Extraction never follows a symlink: a path that passes through one is refused. Modes,
//! numeric ownership (when root), mtimes and xattrs (where the filesystem accepts them)
//! are kept. Gzip decompression runs on its own thread, as with `tar xzf` + `gzip -d`.
//! [`extract_file_atomically`] unpacks into a temp dir next to the target and renames it
//! into place, so a refused or truncated archive leaves nothing half-written.
//!
//! Speed (hack/bench-extract): a regular file costs the syscalls it costs `tar xzf` — one
//! `open(O_CREAT|O_EXCL)`, the writes, and metadata through the open descriptor
//! (fchown/fchmod/futimens) — because directories already checked are remembered instead
//! of re-checking every parent of every entry with `lstat`. That memory is safe: nothing
//! in an extraction can turn a directory into something else (`Extractor::clear` refuses).
//! Small files are created by a few writer threads (`writer`), since creating a file is
//! what costs; the reader thread keeps every safety decision.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{PermissionsExt, lchown};
use std::path::{Path, PathBuf};

use tar::EntryType;

mod entries;
mod names;
mod pipe;
mod writer;

use entries::{Item, read_err};
use names::shown;
pub use names::{Refusal, archive_path};
use writer::{pax_xattrs, times};

pub use pipe::{Staging, extract_file_atomically, extract_file_atomically_counted};

/// Errors of archive extraction.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The archive tried something unsafe; nothing of it is kept.
    #[error("archive entry {entry:?} refused: {reason}")]
    Refused { entry: String, reason: String },
    /// The archive bytes are unreadable: corrupt or truncated gzip or tar data.
    #[error("reading archive {archive}: {source}")]
    Read { archive: String, source: io::Error },
    /// The node refused a write (disk full, permissions, ...).
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

impl Error {
    /// True when the archive itself is at fault (retrying with the same bytes is useless).
    pub fn is_bad_archive(&self) -> bool {
        matches!(self, Error::Refused { .. } | Error::Read { .. })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How absolute symlink targets are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbsoluteSymlinks {
    /// Keep them: the archive is a root filesystem (`/etc`, `/var`), where `/usr/lib/x` means
    /// the node's `/usr/lib/x`. The extractor itself never follows them.
    Rooted,
    /// Refuse them, for archives that are not a filesystem root.
    Refuse,
}

/// Extraction options.
#[derive(Clone, Debug)]
pub struct Options {
    /// Restore numeric uid/gid (default: when running as root).
    pub ownership: bool,
    /// Restore extended attributes, skipping those the filesystem refuses.
    pub xattrs: bool,
    pub absolute_symlinks: AbsoluteSymlinks,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ownership: nix::unistd::geteuid().is_root(),
            xattrs: true,
            absolute_symlinks: AbsoluteSymlinks::Rooted,
        }
    }
}

/// What an extraction wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub entries: u64,
    pub bytes: u64,
    /// Extended attributes the filesystem refused (e.g. `security.selinux` without SELinux).
    pub xattrs_skipped: u64,
}

/// Extract the plain tar stream `reader` into the existing directory `target`.
pub fn extract_tar<R: Read>(reader: R, target: &Path, opts: &Options) -> Result<Stats> {
    Extractor::new(target, opts).run(reader)
}

/// Extract a tar.gz stream (one or more concatenated gzip members) into `target`.
pub fn extract_tar_gz<R: Read + Send + 'static>(reader: R, target: &Path, opts: &Options) -> Result<Stats> {
    extract_tar(pipe::gunzip_on_thread(reader), target, opts)
}

/// Metadata applied once a directory's children are written (a read-only dir would
/// otherwise block them, and writing children changes its mtime).
struct DirMeta {
    path: PathBuf,
    mode: u32,
    owner: Option<(u32, u32)>,
    mtime: u64,
}

struct Extractor<'a> {
    target: &'a Path,
    opts: &'a Options,
    stats: Stats,
    dirs: Vec<DirMeta>,
    /// Directories (relative to the target) known to be real directories, not symlinks.
    known_dirs: HashSet<PathBuf>,
    /// Files (relative) queued to the writers since the last [`Extractor::settle`].
    pending: HashSet<PathBuf>,
    writers: writer::Writers,
    buf: Vec<u8>,
}

impl<'a> Extractor<'a> {
    fn new(target: &'a Path, opts: &'a Options) -> Self {
        Self {
            target,
            opts,
            stats: Stats::default(),
            dirs: Vec::new(),
            known_dirs: HashSet::new(),
            pending: HashSet::new(),
            writers: writer::Writers::new(),
            // The inflate thread hands over 1 MiB chunks; match them to halve write calls.
            buf: vec![0; 1 << 20],
        }
    }

    fn run<R: Read>(mut self, reader: R) -> Result<Stats> {
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(read_err)? {
            let mut entry = entry.map_err(read_err)?;
            self.entry(&mut entry)?;
            self.stats.entries += 1;
        }
        self.settle()?;
        // Deepest first, so a parent's mtime is set after its children changed it.
        for d in std::mem::take(&mut self.dirs).into_iter().rev() {
            self.apply_meta(&d.path, d.mode, d.owner, Some(d.mtime), false)?;
        }
        Ok(self.stats)
    }

    /// Wait for the queued files: before touching a name (or a parent name) one of them
    /// may still be creating, before a hardlink, and at the end.
    fn settle(&mut self) -> Result<()> {
        self.stats.xattrs_skipped += self.writers.barrier()?;
        self.pending.clear();
        Ok(())
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let refuse = |reason: Refusal| Error::Refused {
            entry: name.clone(),
            reason: reason.0,
        };
        let rel = archive_path(&entry.path_bytes()).map_err(&refuse)?;
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header
            .mode()
            .map_err(|e| refuse(format!("bad mode: {e}").into()))?;
        let mtime = header.mtime().unwrap_or(0);
        let owner = match self.opts.ownership {
            true => Some((header.uid().unwrap_or(0) as u32, header.gid().unwrap_or(0) as u32)),
            false => None,
        };
        if rel.as_os_str().is_empty() {
            // "./": the target itself, which already exists and keeps its own metadata.
            return Ok(());
        }
        if !self.pending.is_empty()
            && (kind == EntryType::Link || rel.ancestors().any(|a| self.pending.contains(a)))
        {
            self.settle()?;
        }
        self.ensure_parents(&rel).map_err(&refuse)?;
        let dest = self.target.join(&rel);
        let e = Item {
            name,
            rel,
            dest,
            mode,
            mtime,
            owner,
        };
        match kind {
            EntryType::Directory => self.directory(entry, e),
            EntryType::Regular | EntryType::Continuous if entry.size() <= writer::SMALL => {
                self.small_file(entry, e)
            }
            EntryType::Regular | EntryType::Continuous => self.large_file(entry, e),
            EntryType::Symlink => self.symlink(entry, e),
            EntryType::Link => self.hardlink(entry, e),
            EntryType::Fifo => {
                self.clear(&e.dest).map_err(|r| e.refuse(r))?;
                nix::unistd::mkfifo(&e.dest, nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .map_err(|err| e.write_err(io::Error::from(err)))?;
                self.apply_meta(&e.dest, mode, owner, None, true)?;
                self.xattrs(entry, &e.dest)
            }
            EntryType::Char | EntryType::Block => Err(e.refuse("device nodes are not allowed".into())),
            EntryType::XGlobalHeader => Ok(()),
            EntryType::GNUSparse => Err(e.refuse("sparse files are not supported".into())),
            _ => Err(e.refuse("unsupported entry type".into())),
        }
    }

    /// Create missing parents of `rel` and refuse a path through a symlink or a file.
    fn ensure_parents(&mut self, rel: &Path) -> Result<(), Refusal> {
        let Some(parent) = rel.parent() else { return Ok(()) };
        if parent.as_os_str().is_empty() || self.known_dirs.contains(parent) {
            return Ok(());
        }
        let mut cur = self.target.to_path_buf();
        let mut cur_rel = PathBuf::new();
        for c in parent.components() {
            cur.push(c);
            cur_rel.push(c);
            if self.known_dirs.contains(&cur_rel) {
                continue;
            }
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {
                    self.known_dirs.insert(cur_rel.clone());
                }
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Refusal(format!(
                        "path passes through the symlink {}",
                        shown(self.target, &cur)
                    )));
                }
                Ok(_) => return Err(format!("parent {} is not a directory", shown(self.target, &cur)).into()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&cur).map_err(|e| Refusal(format!("creating {}: {e}", cur.display())))?;
                    self.known_dirs.insert(cur_rel.clone());
                }
                Err(e) => return Err(format!("inspecting {}: {e}", cur.display()).into()),
            }
        }
        Ok(())
    }

    /// Remove what a later entry of the same name replaces; never a directory.
    fn clear(&self, dest: &Path) -> Result<(), Refusal> {
        match fs::symlink_metadata(dest) {
            Ok(m) if m.is_dir() => Err("a non-directory would replace a directory".into()),
            Ok(_) => fs::remove_file(dest).map_err(|e| Refusal(format!("replacing {}: {e}", dest.display()))),
            Err(_) => Ok(()),
        }
    }

    fn apply_meta(
        &self,
        path: &Path,
        mode: u32,
        owner: Option<(u32, u32)>,
        mtime: Option<u64>,
        file: bool,
    ) -> Result<()> {
        let err = |source| Error::Write {
            path: path.to_path_buf(),
            source,
        };
        // chown first: it clears set-id bits that chmod must then restore.
        if let Some((uid, gid)) = owner {
            lchown(path, Some(uid), Some(gid)).map_err(err)?;
        }
        if !file
            || fs::symlink_metadata(path)
                .map(|m| !m.file_type().is_symlink())
                .unwrap_or(false)
        {
            fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777)).map_err(err)?;
        }
        if let Some(mtime) = mtime {
            File::open(path)
                .and_then(|f| f.set_times(times(mtime)))
                .map_err(err)?;
        }
        Ok(())
    }

    fn xattrs<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, dest: &Path) -> Result<()> {
        if !self.opts.xattrs {
            return Ok(());
        }
        for (name, value) in pax_xattrs(entry) {
            if let Err(e) = xattr::set(dest, &name, &value) {
                tracing::debug!(path = %dest.display(), name, error = %e, "xattr not kept");
                self.stats.xattrs_skipped += 1;
            }
        }
        Ok(())
    }
}
