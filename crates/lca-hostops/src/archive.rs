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

use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, lchown, symlink};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use tar::EntryType;

mod pipe;

pub use pipe::Staging;

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

/// Extract the archive file `archive` (tar or tar.gz, told apart by the gzip magic) into
/// `target` all or nothing: into a temp dir next to `target`, renamed over it on success.
pub fn extract_file_atomically(archive: &Path, target: &Path, opts: &Options) -> Result<Stats> {
    let name = archive.display().to_string();
    let read_err = |source| Error::Read {
        archive: name.clone(),
        source,
    };
    let mut file = File::open(archive).map_err(read_err)?;
    let mut magic = [0u8; 2];
    let gz = file.read(&mut magic).map_err(read_err)? == 2 && magic == [0x1f, 0x8b];
    drop(file);
    let file = File::open(archive).map_err(read_err)?;
    let staging = pipe::Staging::new(target).map_err(|source| Error::Write {
        path: target.into(),
        source,
    })?;
    let stats = if gz {
        extract_tar_gz(file, staging.path(), opts)
    } else {
        extract_tar(file, staging.path(), opts)
    }
    .map_err(|e| rename_archive(e, &name))?;
    staging.commit().map_err(|source| Error::Write {
        path: target.into(),
        source,
    })?;
    Ok(stats)
}

fn rename_archive(e: Error, name: &str) -> Error {
    match e {
        Error::Read { source, .. } => Error::Read {
            archive: name.to_string(),
            source,
        },
        other => other,
    }
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
    buf: Vec<u8>,
}

impl<'a> Extractor<'a> {
    fn new(target: &'a Path, opts: &'a Options) -> Self {
        Self {
            target,
            opts,
            stats: Stats::default(),
            dirs: Vec::new(),
            buf: vec![0; 256 * 1024],
        }
    }

    fn run<R: Read>(mut self, reader: R) -> Result<Stats> {
        let read_err = |source| Error::Read {
            archive: "stream".into(),
            source,
        };
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(read_err)? {
            let mut entry = entry.map_err(read_err)?;
            self.entry(&mut entry)?;
            self.stats.entries += 1;
        }
        // Deepest first, so a parent's mtime is set after its children changed it.
        for d in std::mem::take(&mut self.dirs).into_iter().rev() {
            self.apply_meta(&d.path, d.mode, d.owner, Some(d.mtime), false)?;
        }
        Ok(self.stats)
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let refuse = |reason: String| Error::Refused {
            entry: name.clone(),
            reason,
        };
        let rel = archive_path(&entry.path_bytes()).map_err(&refuse)?;
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().map_err(|e| refuse(format!("bad mode: {e}")))?;
        let mtime = header.mtime().unwrap_or(0);
        let owner = match self.opts.ownership {
            true => Some((header.uid().unwrap_or(0) as u32, header.gid().unwrap_or(0) as u32)),
            false => None,
        };
        if rel.as_os_str().is_empty() {
            // "./": the target itself, which already exists and keeps its own metadata.
            return Ok(());
        }
        self.ensure_parents(&rel).map_err(&refuse)?;
        let dest = self.target.join(&rel);
        let write_err = |source| Error::Write {
            path: dest.clone(),
            source,
        };
        match kind {
            EntryType::Directory => {
                match fs::symlink_metadata(&dest) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => return Err(refuse("a directory would replace a non-directory".into())),
                    Err(_) => fs::create_dir(&dest).map_err(write_err)?,
                }
                self.xattrs(entry, &dest)?;
                self.dirs.push(DirMeta {
                    path: dest,
                    mode,
                    owner,
                    mtime,
                });
                return Ok(());
            }
            EntryType::Regular | EntryType::Continuous => {
                self.clear(&dest).map_err(&refuse)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&dest)
                    .map_err(write_err)?;
                loop {
                    let n = entry.read(&mut self.buf).map_err(|source| Error::Read {
                        archive: "stream".into(),
                        source,
                    })?;
                    if n == 0 {
                        break;
                    }
                    file.write_all(&self.buf[..n]).map_err(write_err)?;
                    self.stats.bytes += n as u64;
                }
                file.set_times(times(mtime)).map_err(write_err)?;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse("symlink without a target".into()))?;
                check_symlink(&rel, &link, self.opts.absolute_symlinks).map_err(&refuse)?;
                self.clear(&dest).map_err(&refuse)?;
                symlink(bytes_path(&link), &dest).map_err(write_err)?;
                if let Some((uid, gid)) = owner {
                    lchown(&dest, Some(uid), Some(gid)).map_err(write_err)?;
                }
                return self.xattrs(entry, &dest);
            }
            EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse("hardlink without a target".into()))?;
                let link_rel = archive_path(&link).map_err(|r| refuse(format!("hardlink target: {r}")))?;
                self.ensure_parents(&link_rel).map_err(&refuse)?;
                let source = self.target.join(&link_rel);
                match fs::symlink_metadata(&source) {
                    Ok(m) if m.is_file() => {}
                    _ => {
                        return Err(refuse(
                            "hardlink target is not a regular file extracted earlier".into(),
                        ));
                    }
                }
                self.clear(&dest).map_err(&refuse)?;
                return fs::hard_link(&source, &dest).map_err(write_err);
            }
            EntryType::Fifo => {
                self.clear(&dest).map_err(&refuse)?;
                nix::unistd::mkfifo(&dest, nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .map_err(|e| write_err(io::Error::from(e)))?;
            }
            EntryType::Char | EntryType::Block => return Err(refuse("device nodes are not allowed".into())),
            EntryType::XGlobalHeader => return Ok(()),
            EntryType::GNUSparse => return Err(refuse("sparse files are not supported".into())),
            _ => return Err(refuse("unsupported entry type".into())),
        }
        self.apply_meta(&dest, mode, owner, None, true)?;
        self.xattrs(entry, &dest)
    }

    /// Create missing parents of `rel` and refuse a path through a symlink or a file.
    fn ensure_parents(&self, rel: &Path) -> Result<(), String> {
        let mut cur = self.target.to_path_buf();
        let Some(parent) = rel.parent() else { return Ok(()) };
        for c in parent.components() {
            cur.push(c);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(format!(
                        "path passes through the symlink {}",
                        shown(self.target, &cur)
                    ));
                }
                Ok(_) => return Err(format!("parent {} is not a directory", shown(self.target, &cur))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&cur).map_err(|e| format!("creating {}: {e}", cur.display()))?;
                }
                Err(e) => return Err(format!("inspecting {}: {e}", cur.display())),
            }
        }
        Ok(())
    }

    /// Remove what a later entry of the same name replaces; never a directory.
    fn clear(&self, dest: &Path) -> Result<(), String> {
        match fs::symlink_metadata(dest) {
            Ok(m) if m.is_dir() => Err("a non-directory would replace a directory".into()),
            Ok(_) => fs::remove_file(dest).map_err(|e| format!("replacing {}: {e}", dest.display())),
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
        let Ok(Some(exts)) = entry.pax_extensions() else {
            return Ok(());
        };
        for ext in exts.flatten() {
            let Ok(key) = ext.key() else { continue };
            let name = match key.strip_prefix("SCHILY.xattr.") {
                Some(n) => n,
                None if key == "RHT.security.selinux" => "security.selinux",
                None => continue,
            };
            if let Err(e) = xattr::set(dest, name, ext.value_bytes()) {
                tracing::debug!(path = %dest.display(), name, error = %e, "xattr not kept");
                self.stats.xattrs_skipped += 1;
            }
        }
        Ok(())
    }
}

fn times(mtime: u64) -> FileTimes {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime);
    FileTimes::new().set_modified(t).set_accessed(t)
}

fn bytes_path(b: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(b))
}

fn shown(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// The relative path of an archive member, or why it is refused.
pub fn archive_path(raw: &[u8]) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in bytes_path(raw).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err("absolute path".into()),
            Component::ParentDir => return Err("path contains a `..` component".into()),
        }
    }
    Ok(out)
}

/// Refuse a symlink at `rel` whose target leaves the archive root. Relative targets may
/// climb only as a leading run of `..`: a `..` after a name could cross another symlink,
/// which a lexical check cannot see.
fn check_symlink(rel: &Path, link: &[u8], absolute: AbsoluteSymlinks) -> Result<(), String> {
    let target = bytes_path(link);
    if target.is_absolute() {
        return match absolute {
            AbsoluteSymlinks::Rooted => Ok(()),
            AbsoluteSymlinks::Refuse => Err(format!("absolute symlink target {}", target.display())),
        };
    }
    let escape = || format!("symlink target {} escapes the target directory", target.display());
    let mut depth = rel.parent().map(|p| p.components().count()).unwrap_or(0) as i64;
    let mut seen_name = false;
    for c in target.components() {
        match c {
            Component::ParentDir if seen_name => {
                return Err(format!(
                    "symlink target {} has `..` after a name",
                    target.display()
                ));
            }
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => seen_name = true,
            _ => {}
        }
        if depth < 0 {
            return Err(escape());
        }
    }
    Ok(())
}
