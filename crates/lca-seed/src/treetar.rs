//! Tar writing of node trees, as GNU `tar --xattrs --xattrs-include=* --selinux` would:
//! entries keep mode, numeric owner, mtime, symlinks, hardlinks (stored once) and every
//! extended attribute as a `SCHILY.xattr.*` PAX record, which GNU tar and
//! `lca_hostops::archive` restore. Sockets and device nodes are skipped: a node's `/var`
//! has no meaningful ones, and the extractor refuses device nodes.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tar::{EntryType, Header, HeaderMode};

/// A tar stream being written into `W`.
pub struct TreeTar<W: Write> {
    builder: tar::Builder<W>,
    links: HashMap<(u64, u64), PathBuf>,
    /// Bytes of file content added, for progress.
    pub content_bytes: u64,
}

impl<W: Write> TreeTar<W> {
    pub fn new(out: W) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.mode(HeaderMode::Complete);
        builder.follow_symlinks(false);
        Self {
            builder,
            links: HashMap::new(),
            content_bytes: 0,
        }
    }

    /// Add `dir` recursively under the archive name `name` (sorted, depth first).
    /// `skip(rel)` gets each path relative to `dir` and drops it (and, for a directory,
    /// its contents) when it returns true.
    pub fn add_tree(&mut self, dir: &Path, name: &Path, skip: &dyn Fn(&Path) -> bool) -> io::Result<()> {
        // The root is what `dir` resolves to (a node's /var may be a link to the stateroot's).
        let dir = fs::canonicalize(dir)?;
        self.add_path(&dir, name)?;
        self.walk(&dir, Path::new(""), name, skip)
    }

    fn walk(&mut self, root: &Path, rel: &Path, name: &Path, skip: &dyn Fn(&Path) -> bool) -> io::Result<()> {
        let mut children: Vec<_> = fs::read_dir(root.join(rel))?.collect::<io::Result<_>>()?;
        children.sort_by_key(|e| e.file_name());
        for child in children {
            let child_rel = rel.join(child.file_name());
            if skip(&child_rel) {
                continue;
            }
            let abs = root.join(&child_rel);
            let is_dir = child.file_type()?.is_dir();
            self.add_path(&abs, &name.join(&child_rel))?;
            if is_dir {
                self.walk(root, &child_rel, name, skip)?;
            }
        }
        Ok(())
    }

    /// Add the single filesystem object `abs` (not its children) as `name`.
    pub fn add_path(&mut self, abs: &Path, name: &Path) -> io::Result<()> {
        let meta = fs::symlink_metadata(abs)?;
        let ft = meta.file_type();
        let mut header = Header::new_gnu();
        header.set_metadata_in_mode(&meta, HeaderMode::Complete);
        self.xattrs(abs)?;
        if ft.is_symlink() {
            header.set_entry_type(EntryType::Symlink);
            header.set_size(0);
            let target = fs::read_link(abs)?;
            self.builder.append_link(&mut header, name, target)
        } else if ft.is_dir() {
            header.set_entry_type(EntryType::Directory);
            header.set_size(0);
            // A trailing slash marks the directory for readers that ignore the type flag.
            self.builder.append_data(&mut header, name, io::empty())
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.links.get(&key) {
                    header.set_entry_type(EntryType::Link);
                    header.set_size(0);
                    let first = first.clone();
                    return self.builder.append_link(&mut header, name, first);
                }
                self.links.insert(key, name.to_path_buf());
            }
            header.set_entry_type(EntryType::Regular);
            self.content_bytes += meta.len();
            let file = fs::File::open(abs)?;
            self.builder.append_data(&mut header, name, file)
        } else {
            tracing::debug!(path = %abs.display(), "skipping socket, fifo or device node");
            Ok(())
        }
    }

    fn xattrs(&mut self, abs: &Path) -> io::Result<()> {
        let names = match xattr::list(abs) {
            Ok(n) => n,
            // Filesystems without xattr support simply have none.
            Err(_) => return Ok(()),
        };
        let mut records: Vec<(String, Vec<u8>)> = Vec::new();
        for n in names {
            let n = n.to_string_lossy().into_owned();
            if let Ok(Some(v)) = xattr::get(abs, &n) {
                records.push((format!("SCHILY.xattr.{n}"), v));
            }
        }
        if records.is_empty() {
            return Ok(());
        }
        self.builder
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
    }

    /// The writer under the tar stream (entries are written through, never buffered).
    pub fn get_mut(&mut self) -> &mut W {
        self.builder.get_mut()
    }

    /// Write the end-of-archive marker and return the writer.
    pub fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }
}

/// Write a gzip tarball at `out` from `fill` through the parallel compressor; the tarball
/// is written to `<out>.partial` and renamed, so a crash never leaves a truncated one.
/// Returns (uncompressed, compressed) sizes.
pub fn write_tgz(
    out: &Path,
    level: u32,
    fill: impl FnOnce(
        &mut TreeTar<&mut crate::pgzip::ParallelGzWriter<io::BufWriter<fs::File>>>,
    ) -> io::Result<()>,
) -> io::Result<(u64, u64)> {
    let partial = out.with_extension("partial");
    let file = io::BufWriter::with_capacity(1 << 20, fs::File::create(&partial)?);
    let mut gz = crate::pgzip::ParallelGzWriter::new(file, level);
    let mut tar = TreeTar::new(&mut gz);
    fill(&mut tar)?;
    tar.finish()?;
    let (file, raw, packed) = gz.finish()?;
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs::rename(&partial, out)?;
    Ok((raw, packed))
}
