//! Parallel file writing for [`super`]: creating a file costs far more than writing a small
//! one (an `openat(O_CREAT)` took ~0.6 ms here under load, the same for `tar xzf`), and
//! the tar stream is read in order, so small regular files are handed to a few threads
//! that create, fill and stamp them while the reader moves on. Everything that decides
//! *where* bytes may go (path checks, parents, symlinks, hardlinks, replacing an existing
//! name) stays on the reader thread; [`Writers::barrier`] lets it wait for the writes in
//! flight before it touches a name a job may still be creating.

use std::fs::{self, FileTimes, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, fchown};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::Error;

/// Files up to this size go to the writers (bigger ones are written inline: their cost is
/// the bytes, not the create). With the queue bound this caps memory at ~16 MiB.
pub(super) const SMALL: u64 = 512 * 1024;
const QUEUE: usize = 24;

/// One small regular file to write.
pub(super) struct Job {
    /// The archive member's name, for a refusal message.
    pub name: String,
    pub dest: PathBuf,
    pub data: Vec<u8>,
    pub mode: u32,
    pub owner: Option<(u32, u32)>,
    pub mtime: u64,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

#[derive(Default)]
struct State {
    done: u64,
    error: Option<Error>,
    xattrs_skipped: u64,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

/// The writer threads and what they report.
pub(super) struct Writers {
    jobs: Option<SyncSender<Job>>,
    threads: Vec<JoinHandle<()>>,
    shared: Shared,
    abort: Arc<AtomicBool>,
    sent: u64,
}

impl Writers {
    pub fn new() -> Self {
        // Creates wait on the filesystem, not the CPU: a few more than the cores pays.
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(2, 4);
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let shared: Shared = Arc::default();
        let abort = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let (rx, shared, abort) = (Arc::clone(&rx), Arc::clone(&shared), Arc::clone(&abort));
                std::thread::spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        // After a failure the staging dir is thrown away: skip, but count.
                        let result = if abort.load(Ordering::Relaxed) {
                            Ok(0)
                        } else {
                            write(&job)
                        };
                        let (lock, cvar) = &*shared;
                        let Ok(mut st) = lock.lock() else { return };
                        match result {
                            Ok(skipped) => st.xattrs_skipped += skipped,
                            Err(e) => {
                                abort.store(true, Ordering::Relaxed);
                                st.error.get_or_insert(e);
                            }
                        }
                        st.done += 1;
                        cvar.notify_all();
                    }
                })
            })
            .collect();
        Self {
            jobs: Some(tx),
            threads,
            shared,
            abort,
            sent: 0,
        }
    }

    /// Queue `job`; fails with the first error a writer hit so far.
    pub fn send(&mut self, job: Job) -> Result<(), Error> {
        self.check()?;
        let sent = self.jobs.as_ref().map(|j| j.send(job).is_ok()).unwrap_or(false);
        if !sent {
            return Err(io_error("file writer threads stopped"));
        }
        self.sent += 1;
        Ok(())
    }

    fn check(&self) -> Result<(), Error> {
        let mut st = self
            .shared
            .0
            .lock()
            .map_err(|_| io_error("file writer panicked"))?;
        match st.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Wait until every queued file is on disk; the first writer error, if any.
    /// Returns the xattrs the filesystem refused so far (and resets the count).
    pub fn barrier(&mut self) -> Result<u64, Error> {
        let (lock, cvar) = &*self.shared;
        let mut st = lock.lock().map_err(|_| io_error("file writer panicked"))?;
        while st.done < self.sent && st.error.is_none() {
            st = cvar.wait(st).map_err(|_| io_error("file writer panicked"))?;
        }
        if let Some(e) = st.error.take() {
            return Err(e);
        }
        Ok(std::mem::take(&mut st.xattrs_skipped))
    }
}

impl Drop for Writers {
    /// Never return while a writer may still create files in a dir the caller removes.
    fn drop(&mut self) {
        self.abort.store(true, Ordering::Relaxed);
        self.jobs = None;
        for t in self.threads.drain(..) {
            // Only waiting matters here; a writer's error or panic was already reported.
            let _ = t.join();
        }
    }
}

fn io_error(msg: &str) -> Error {
    Error::Write {
        path: PathBuf::new(),
        source: io::Error::other(msg.to_string()),
    }
}

/// Create, fill and stamp one file; the reader thread made sure the name is free and the
/// parents are real directories. Returns the number of refused xattrs.
fn write(job: &Job) -> Result<u64, Error> {
    let err = |source| Error::Write {
        path: job.dest.clone(),
        source,
    };
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&job.dest)
    };
    let mut file = match create() {
        // A name already in the target before the extraction (names this archive wrote
        // are settled by the reader first): replace it, never a directory.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if fs::symlink_metadata(&job.dest)
                .map(|m| m.is_dir())
                .unwrap_or(false)
            {
                return Err(Error::Refused {
                    entry: job.name.clone(),
                    reason: "a non-directory would replace a directory".into(),
                });
            }
            fs::remove_file(&job.dest).map_err(err)?;
            create().map_err(err)?
        }
        other => other.map_err(err)?,
    };
    file.write_all(&job.data).map_err(err)?;
    // chown first: it clears set-id bits that chmod then restores.
    if let Some((uid, gid)) = job.owner {
        fchown(&file, Some(uid), Some(gid)).map_err(err)?;
    }
    file.set_permissions(fs::Permissions::from_mode(job.mode & 0o7777))
        .map_err(err)?;
    file.set_times(times(job.mtime)).map_err(err)?;
    let mut skipped = 0;
    for (name, value) in &job.xattrs {
        if let Err(e) = xattr::set(&job.dest, name, value) {
            tracing::debug!(path = %job.dest.display(), name, error = %e, "xattr not kept");
            skipped += 1;
        }
    }
    Ok(skipped)
}

/// The extended attributes of `entry` (GNU tar's `SCHILY.xattr.*`, star's SELinux record).
pub(super) fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Vec<(String, Vec<u8>)> {
    let Ok(Some(exts)) = entry.pax_extensions() else {
        return Vec::new();
    };
    exts.flatten()
        .filter_map(|ext| {
            let key = ext.key().ok()?;
            let name = match key.strip_prefix("SCHILY.xattr.") {
                Some(n) => n,
                None if key == "RHT.security.selinux" => "security.selinux",
                None => return None,
            };
            Some((name.to_string(), ext.value_bytes().to_vec()))
        })
        .collect()
}

/// A header's mtime as file times. A base-256 number field holds up to 2^64 - 1, beyond
/// what `SystemTime` can add (it panicked, killing a writer thread and hanging the
/// extraction at the next barrier); such a time is clamped, as the filesystem clamps any
/// time past its own range.
pub(super) fn times(mtime: u64) -> FileTimes {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime.min(i64::MAX as u64));
    FileTimes::new().set_modified(t).set_accessed(t)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tar::{EntryType, Header};

    use crate::archive::{Options, extract_tar};

    /// fuzz/regressions/tar_extract/huge-mtime: a file (written by a writer thread) and a
    /// directory (stamped by the reader) with the largest mtime a header can hold.
    #[test]
    fn an_mtime_past_system_time_is_clamped_not_a_panic() {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in [
            ("future", EntryType::Regular, &b"x"[..]),
            ("dir", EntryType::Directory, &b""[..]),
        ] {
            let mut h = Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_mtime(u64::MAX);
            h.set_cksum();
            b.append_data(&mut h, name, data).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let stats = extract_tar(&tar[..], dir.path(), &Options::default()).unwrap();
        assert_eq!(stats.entries, 2);
        assert_eq!(std::fs::read(dir.path().join("future")).unwrap(), b"x");
        assert!(dir.path().join("dir").is_dir());
    }
}
