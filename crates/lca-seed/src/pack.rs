//! Building the seed layer blob from the directory of seed files (`/var/tmp/backup`):
//! tar → sha256 (diff_id) → parallel gzip → sha256 (digest) → file, in one streaming pass.
//! The blob lands in a file so the push can stream it and resume; it is never in memory.
//! Members that are gzip already (`var.tgz`, `etc.tgz`, `ostree.tgz`: nearly all the bytes)
//! go into stored deflate blocks (level 0): recompressing them cost as much time as
//! packing them and gained under 1 %. The layer stays an ordinary `tar+gzip` blob.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::pgzip::{HashingWriter, ParallelGzWriter};
use crate::progress::Progress;
use crate::treetar::TreeTar;
use crate::{Error, Result};

/// A blob written to disk with its digests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerBlob {
    pub path: PathBuf,
    /// `sha256:` of the compressed bytes (the blob digest).
    pub digest: String,
    pub size: u64,
    /// `sha256:` of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    pub uncompressed_size: u64,
}

/// Pack every file of `src` (flat, sorted by name, as `COPY . /` does) into a gzip layer
/// `<blob_dir>/layer.tar.gz`, compressed at `level` on all cores; gzip members are stored.
pub fn build_layer(src: &Path, blob_dir: &Path, level: u32, progress: &Progress) -> Result<LayerBlob> {
    fs::create_dir_all(blob_dir).map_err(Error::io("creating the blob dir", blob_dir))?;
    let out = blob_dir.join("layer.tar.gz");
    let partial = blob_dir.join("layer.tar.gz.partial");
    let io_err = Error::io("packing the seed layer", &partial);
    let result = (|| -> io::Result<LayerBlob> {
        let file = BufWriter::with_capacity(1 << 20, fs::File::create(&partial)?);
        let gz = ParallelGzWriter::new(HashingWriter::new(file), level);
        let mut raw = HashingWriter::new(Counting { inner: gz, progress });
        {
            let mut tar = TreeTar::new(&mut raw);
            let mut names: Vec<_> = fs::read_dir(src)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<_>>()?;
            names.sort();
            for name in names {
                let abs = src.join(&name);
                let meta = fs::symlink_metadata(&abs)?;
                let member_level = if meta.is_file() && is_gzip(&abs)? {
                    0
                } else {
                    level
                };
                tar.get_mut().get_mut().inner.set_level(member_level)?;
                if meta.is_dir() {
                    tar.add_tree(&abs, Path::new(&name), &|_| false)?;
                } else {
                    tar.add_path(&abs, Path::new(&name))?;
                }
            }
            tar.finish()?;
        }
        let (counting, diff_id, uncompressed_size) = raw.finish();
        let (hashing, _, _) = counting.inner.finish()?;
        let (file, digest, size) = hashing.finish();
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        fs::rename(&partial, &out)?;
        Ok(LayerBlob {
            path: out.clone(),
            digest,
            size,
            diff_id,
            uncompressed_size,
        })
    })();
    if result.is_err() {
        // Best effort: the packing error is reported; a partial blob is never used.
        let _ = fs::remove_file(&partial);
    }
    progress.finish();
    result.map_err(io_err)
}

/// True when `path` starts with the gzip magic.
fn is_gzip(path: &Path) -> io::Result<bool> {
    use std::io::Read;
    let mut magic = [0u8; 2];
    let n = fs::File::open(path)?.read(&mut magic)?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

struct Counting<'a, W> {
    inner: W,
    progress: &'a Progress,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        self.progress.inc(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
