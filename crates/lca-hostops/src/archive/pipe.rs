//! Plumbing of [`super`]: gzip decompression on its own thread (so inflating and writing
//! files use two cores, like `tar xzf`), and the staging directory that makes an
//! extraction all or nothing ([`extract_file_atomically`]).

use std::fs;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use flate2::bufread::MultiGzDecoder;

use super::{Error, Options, Result, Stats, extract_tar, extract_tar_gz};

const CHUNK: usize = 1 << 20;

/// A reader of the decompressed bytes of `reader`, inflated on a separate thread.
/// Concatenated gzip members (parallel gzip output) read as one stream.
pub(super) fn gunzip_on_thread<R: Read + Send + 'static>(reader: R) -> ChannelReader {
    // Four chunks in flight bound memory to a few MiB whatever the archive size.
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(4);
    std::thread::spawn(move || inflate(reader, tx));
    ChannelReader {
        rx,
        cur: Vec::new(),
        pos: 0,
    }
}

fn inflate<R: Read>(reader: R, tx: SyncSender<io::Result<Vec<u8>>>) {
    let mut gz = MultiGzDecoder::new(BufReader::with_capacity(CHUNK, reader));
    loop {
        let mut buf = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            match gz.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let msg = format!("corrupt or truncated gzip data: {e}");
                    // A closed channel means the reader already stopped with its own error.
                    let _ = tx.send(Err(io::Error::new(e.kind(), msg)));
                    return;
                }
            }
        }
        if filled == 0 {
            return;
        }
        buf.truncate(filled);
        // The reader hung up (an entry was refused): stop inflating.
        if tx.send(Ok(buf)).is_err() {
            return;
        }
    }
}

/// The receiving end of [`gunzip_on_thread`].
pub(super) struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.cur = chunk?;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Extract the archive file `archive` (tar or tar.gz, told apart by the gzip magic) into
/// `target` all or nothing: into a temp dir next to `target`, renamed over it on success.
pub fn extract_file_atomically(archive: &Path, target: &Path, opts: &Options) -> Result<Stats> {
    extract_file_atomically_counted(archive, target, opts, |_| {})
}

/// As `extract_file_atomically`, telling `read` how many bytes of the archive file each read
/// took (a progress display).
pub fn extract_file_atomically_counted(
    archive: &Path,
    target: &Path,
    opts: &Options,
    read: impl FnMut(u64) + Send + 'static,
) -> Result<Stats> {
    let name = archive.display().to_string();
    let read_err = |source| Error::Read {
        archive: name.clone(),
        source,
    };
    let mut file = File::open(archive).map_err(read_err)?;
    let mut magic = [0u8; 2];
    let gz = file.read(&mut magic).map_err(read_err)? == 2 && magic == [0x1f, 0x8b];
    drop(file);
    let file = Counted {
        inner: File::open(archive).map_err(read_err)?,
        read,
    };
    let staging = Staging::new(target).map_err(|source| Error::Write {
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

struct Counted<R, F> {
    inner: R,
    read: F,
}

impl<R: Read, F: FnMut(u64)> Read for Counted<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.read)(n as u64);
        Ok(n)
    }
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

/// A directory next to `target` that becomes `target` on [`Staging::commit`] and is removed
/// when dropped uncommitted.
pub struct Staging {
    dir: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl Staging {
    /// Create the staging dir (the parent of `target` must exist, on the same filesystem).
    pub fn new(target: &Path) -> io::Result<Self> {
        let dir = sibling(target, "partial")?;
        fs::create_dir(&dir)?;
        Ok(Self {
            dir,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Move the staged tree to `target`, replacing what was there.
    pub fn commit(mut self) -> io::Result<()> {
        let old = match fs::symlink_metadata(&self.target) {
            Ok(_) => {
                let old = sibling(&self.target, "old")?;
                fs::rename(&self.target, &old)?;
                Some(old)
            }
            Err(_) => None,
        };
        fs::rename(&self.dir, &self.target)?;
        self.committed = true;
        if let Some(old) = old {
            fs::remove_dir_all(&old)?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            // Drop cannot report; the extraction's own error is what the caller sees.
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn sibling(target: &Path, tag: &str) -> io::Result<PathBuf> {
    let name = target.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no file name", target.display()),
        )
    })?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let unique = format!(".{}.{tag}-{}-{nanos}", name.to_string_lossy(), std::process::id());
    Ok(target.with_file_name(unique))
}
