//! Parallel gzip: the input is cut into fixed-size chunks, each compressed on a worker
//! thread into a complete gzip member, and the members are written in order. Concatenated
//! members are one valid gzip stream (RFC 1952 §2.2; GNU gzip, Go's gzip reader used by
//! podman, and our extractor read them whole). Memory stays bounded by the chunks in flight,
//! whatever the input size. Used for `var.tgz`, `etc.tgz`, `ostree.tgz` and the image layer.
//! [`ParallelGzWriter::set_level`] ends the current member early and switches the level of
//! the following ones, so the layer can store the already-compressed `.tgz` members at
//! level 0 (stored deflate blocks: still plain gzip, but no second compression pass).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::Compression;
use flate2::write::GzEncoder;

/// Input bytes per gzip member: large enough that member overhead (18 bytes) and the lost
/// dictionary at each boundary cost well under 0.1 %, small enough to keep RSS low.
pub const CHUNK: usize = 1 << 20;

/// Default level: 1 is ~2.5× faster than 6 for ~10 % larger output (notes §7).
pub const DEFAULT_LEVEL: u32 = 1;

/// (sequence number, level, input or compressed bytes).
type Job = (u64, u32, Vec<u8>);

/// A `Write` that gzips on all cores into `W`.
pub struct ParallelGzWriter<W: Write + Send + 'static> {
    buf: Vec<u8>,
    level: u32,
    seq: u64,
    raw: u64,
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<io::Result<(W, u64)>>>,
}

impl<W: Write + Send + 'static> ParallelGzWriter<W> {
    /// Compress at `level` (0–9) with one worker per core.
    pub fn new(sink: W, level: u32) -> Self {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self::with_threads(sink, level, threads)
    }

    pub fn with_threads(sink: W, level: u32, threads: usize) -> Self {
        let threads = threads.max(1);
        let (jobs_tx, jobs_rx) = sync_channel::<Job>(threads);
        let (done_tx, done_rx) = sync_channel::<Job>(threads * 2);
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let workers = (0..threads)
            .map(|_| {
                let (rx, tx) = (Arc::clone(&jobs_rx), done_tx.clone());
                std::thread::spawn(move || worker(rx, tx))
            })
            .collect();
        drop(done_tx);
        let writer = std::thread::spawn(move || write_in_order(sink, done_rx));
        Self {
            buf: Vec::with_capacity(CHUNK),
            level,
            seq: 0,
            raw: 0,
            jobs: Some(jobs_tx),
            workers,
            writer: Some(writer),
        }
    }

    fn submit(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let sent = self
            .jobs
            .as_ref()
            .map(|j| j.send((self.seq, self.level, chunk)).is_ok())
            .unwrap_or(false);
        self.seq += 1;
        if !sent {
            // The writer stopped on an error; finish() reports it.
            return Err(io::Error::other("gzip output stopped"));
        }
        Ok(())
    }

    /// Compress what follows at `level`. The bytes buffered so far become a (short) member
    /// at the old level first: members are independent, so the split costs only 18 bytes.
    pub fn set_level(&mut self, level: u32) -> io::Result<()> {
        if level != self.level && !self.buf.is_empty() {
            self.submit()?;
        }
        self.level = level;
        Ok(())
    }

    /// Flush the last chunk, wait for the workers, and return the sink with
    /// (uncompressed, compressed) byte counts.
    pub fn finish(mut self) -> io::Result<(W, u64, u64)> {
        if !self.buf.is_empty() || self.seq == 0 {
            // It fails only when the writer stopped on an error, which the join below returns.
            let _ = self.submit();
        }
        self.jobs = None;
        for w in self.workers.drain(..) {
            w.join().map_err(|_| io::Error::other("gzip worker panicked"))?;
        }
        let writer = self
            .writer
            .take()
            .ok_or_else(|| io::Error::other("gzip writer already joined"))?;
        let (sink, out) = writer
            .join()
            .map_err(|_| io::Error::other("gzip writer panicked"))??;
        Ok((sink, self.raw, out))
    }
}

impl<W: Write + Send + 'static> Write for ParallelGzWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.raw += n as u64;
        if self.buf.len() == CHUNK {
            self.submit()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn worker(jobs: Arc<Mutex<Receiver<Job>>>, done: SyncSender<Job>) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((seq, level, data)) = job else { return };
        // Level 0 grows the data by 5 bytes per 64 KiB stored block plus the gzip frame.
        let cap = if level == 0 {
            data.len() + data.len() / 8192 + 64
        } else {
            data.len() / 2 + 64
        };
        let mut enc = GzEncoder::new(Vec::with_capacity(cap), Compression::new(level));
        let member = enc.write_all(&data).and_then(|_| enc.finish());
        let Ok(member) = member else { return };
        if done.send((seq, level, member)).is_err() {
            return;
        }
    }
}

fn write_in_order<W: Write>(mut sink: W, done: Receiver<Job>) -> io::Result<(W, u64)> {
    let mut next = 0u64;
    let mut pending = BTreeMap::new();
    let mut out = 0u64;
    for (seq, _, member) in done {
        pending.insert(seq, member);
        while let Some(member) = pending.remove(&next) {
            sink.write_all(&member)?;
            out += member.len() as u64;
            next += 1;
        }
    }
    if !pending.is_empty() {
        return Err(io::Error::other("a gzip worker failed"));
    }
    sink.flush()?;
    Ok((sink, out))
}

/// A `Write` that sha256-hashes and counts what passes through.
pub struct HashingWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        use sha2::Digest;
        Self {
            inner,
            hasher: sha2::Sha256::new(),
            count: 0,
        }
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The inner writer, `sha256:<hex>` and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        use sha2::Digest;
        (
            self.inner,
            format!("sha256:{:x}", self.hasher.finalize()),
            self.count,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.write(data)?;
        self.hasher.update(&data[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn members_decode_as_one_stream() {
        let data: Vec<u8> = (0..(3 * CHUNK + 1234)).map(|i| (i % 251) as u8).collect();
        let mut w = ParallelGzWriter::with_threads(Vec::new(), 1, 3);
        for part in data.chunks(70_000) {
            w.write_all(part).unwrap();
        }
        let (gz, raw, out) = w.finish().unwrap();
        assert_eq!((raw, out), (data.len() as u64, gz.len() as u64));
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn level_switches_keep_one_stream() {
        let data: Vec<u8> = (0..(2 * CHUNK + 999)).map(|i| (i % 7) as u8).collect();
        let mut w = ParallelGzWriter::with_threads(Vec::new(), 1, 2);
        w.write_all(&data[..1000]).unwrap();
        w.set_level(0).unwrap();
        w.write_all(&data[1000..CHUNK + 5000]).unwrap();
        w.set_level(1).unwrap();
        w.write_all(&data[CHUNK + 5000..]).unwrap();
        let (gz, _, _) = w.finish().unwrap();
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        // The stored middle part is not compressed, the rest is.
        assert!(gz.len() > CHUNK && gz.len() < CHUNK + 200_000, "{}", gz.len());
    }

    #[test]
    fn empty_input_is_a_valid_gzip() {
        let (gz, _, _) = ParallelGzWriter::new(Vec::new(), 6).finish().unwrap();
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }
}
