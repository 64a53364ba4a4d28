//! The kinds of archive entry, each written by its own `Extractor` method: directories,
//! small files (handed to the writer threads), large files (streamed here), symlinks and
//! hardlinks. The name checks they rely on are in `names`; the dispatch, the parent-directory
//! checks and the refusal of everything else are in the parent module.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, fchown, lchown, symlink};
use std::path::PathBuf;

use super::names::{Refusal, archive_path, bytes_path, check_symlink};
use super::writer::{self, pax_xattrs, times};
use super::{DirMeta, Error, Extractor, Result};

/// One archive entry on its way to disk: its name in the archive, where it goes and the
/// metadata it gets.
pub(super) struct Item {
    pub(super) name: String,
    pub(super) rel: PathBuf,
    pub(super) dest: PathBuf,
    pub(super) mode: u32,
    pub(super) mtime: u64,
    pub(super) owner: Option<(u32, u32)>,
}

impl Item {
    pub(super) fn refuse(&self, reason: Refusal) -> Error {
        Error::Refused {
            entry: self.name.clone(),
            reason: reason.0,
        }
    }

    pub(super) fn write_err(&self, source: io::Error) -> Error {
        Error::Write {
            path: self.dest.clone(),
            source,
        }
    }
}

pub(super) fn read_err(source: io::Error) -> Error {
    Error::Read {
        archive: "stream".into(),
        source,
    }
}

impl Extractor<'_> {
    pub(super) fn directory<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, e: Item) -> Result<()> {
        if !self.known_dirs.contains(&e.rel) {
            match fs::symlink_metadata(&e.dest) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(e.refuse("a directory would replace a non-directory".into())),
                Err(_) => fs::create_dir(&e.dest).map_err(|err| e.write_err(err))?,
            }
            self.known_dirs.insert(e.rel.clone());
        }
        self.xattrs(entry, &e.dest)?;
        self.dirs.push(DirMeta {
            path: e.dest,
            mode: e.mode,
            owner: e.owner,
            mtime: e.mtime,
        });
        Ok(())
    }

    /// A small file: read whole here, written by the writer threads.
    pub(super) fn small_file<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, e: Item) -> Result<()> {
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut data).map_err(read_err)?;
        self.stats.bytes += data.len() as u64;
        let xattrs = if self.opts.xattrs {
            pax_xattrs(entry)
        } else {
            Vec::new()
        };
        self.pending.insert(e.rel);
        self.writers.send(writer::Job {
            name: e.name,
            dest: e.dest,
            data,
            mode: e.mode,
            owner: e.owner,
            mtime: e.mtime,
            xattrs,
        })
    }

    /// A large file: streamed to disk from this thread.
    pub(super) fn large_file<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, e: Item) -> Result<()> {
        let create = || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&e.dest)
        };
        // Try first, clear only on a name clash: saves an lstat per file.
        let mut file = match create() {
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                self.clear(&e.dest).map_err(|r| e.refuse(r))?;
                create().map_err(|err| e.write_err(err))?
            }
            other => other.map_err(|err| e.write_err(err))?,
        };
        loop {
            let n = entry.read(&mut self.buf).map_err(read_err)?;
            if n == 0 {
                break;
            }
            file.write_all(&self.buf[..n]).map_err(|err| e.write_err(err))?;
            self.stats.bytes += n as u64;
        }
        // Through the descriptor, chown first: it clears set-id bits chmod restores.
        if let Some((uid, gid)) = e.owner {
            fchown(&file, Some(uid), Some(gid)).map_err(|err| e.write_err(err))?;
        }
        file.set_permissions(fs::Permissions::from_mode(e.mode & 0o7777))
            .map_err(|err| e.write_err(err))?;
        file.set_times(times(e.mtime)).map_err(|err| e.write_err(err))?;
        drop(file);
        self.xattrs(entry, &e.dest)
    }

    pub(super) fn symlink<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, e: Item) -> Result<()> {
        let link = entry
            .link_name_bytes()
            .ok_or_else(|| e.refuse("symlink without a target".into()))?;
        check_symlink(&e.rel, &link, self.opts.absolute_symlinks).map_err(|r| e.refuse(r))?;
        self.clear(&e.dest).map_err(|r| e.refuse(r))?;
        symlink(bytes_path(&link), &e.dest).map_err(|err| e.write_err(err))?;
        if let Some((uid, gid)) = e.owner {
            lchown(&e.dest, Some(uid), Some(gid)).map_err(|err| e.write_err(err))?;
        }
        self.xattrs(entry, &e.dest)
    }

    /// A hardlink, only to a regular file extracted earlier from this archive.
    pub(super) fn hardlink<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, e: Item) -> Result<()> {
        let link = entry
            .link_name_bytes()
            .ok_or_else(|| e.refuse("hardlink without a target".into()))?;
        let link_rel = archive_path(&link).map_err(|r| e.refuse(format!("hardlink target: {r}").into()))?;
        self.ensure_parents(&link_rel).map_err(|r| e.refuse(r))?;
        let source = self.target.join(&link_rel);
        match fs::symlink_metadata(&source) {
            Ok(m) if m.is_file() => {}
            _ => return Err(e.refuse("hardlink target is not a regular file extracted earlier".into())),
        }
        self.clear(&e.dest).map_err(|r| e.refuse(r))?;
        fs::hard_link(&source, &e.dest).map_err(|err| e.write_err(err))
    }
}
