//! Progress of long transfers (bytes) and of image lists (items): a bar when stderr is a
//! terminal (a person runs `lca-cli`), otherwise a tracing line every few seconds (a systemd
//! unit or a Job log).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LOG_EVERY: Duration = Duration::from_secs(5);

/// Byte progress of one phase (packing, pushing, pulling); clones share the count.
#[derive(Clone)]
pub struct Progress(Arc<Inner>);

struct Inner {
    what: String,
    items: bool,
    total: Option<u64>,
    done: AtomicU64,
    started: Instant,
    last_log: Mutex<Instant>,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// Bytes of a transfer of `total` bytes when known.
    pub fn new(what: impl Into<String>, total: Option<u64>) -> Self {
        Self::with(what.into(), total, false)
    }

    /// `total` items (images) of a list.
    pub fn items(what: impl Into<String>, total: u64) -> Self {
        Self::with(what.into(), Some(total), true)
    }

    fn with(what: String, total: Option<u64>, items: bool) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(t) => indicatif::ProgressBar::new(t),
                None => indicatif::ProgressBar::no_length(),
            };
            let template = if items {
                "{msg:12} [{elapsed_precise}] {bar:30} {pos}/{len}"
            } else {
                "{msg:12} [{elapsed_precise}] {bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}"
            };
            let style = indicatif::ProgressStyle::with_template(template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_message(what.clone());
            bar
        });
        let now = Instant::now();
        Self(Arc::new(Inner {
            what,
            items,
            total,
            done: AtomicU64::new(0),
            started: now,
            last_log: Mutex::new(now),
            bar,
        }))
    }

    /// A progress that reports nothing (library callers that have their own).
    pub fn hidden() -> Self {
        let now = Instant::now();
        Self(Arc::new(Inner {
            what: String::new(),
            items: false,
            total: None,
            done: AtomicU64::new(0),
            started: now,
            last_log: Mutex::new(now),
            bar: Some(indicatif::ProgressBar::hidden()),
        }))
    }

    pub fn inc(&self, n: u64) {
        let s = &self.0;
        let done = s.done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(bar) = &s.bar {
            bar.inc(n);
            return;
        }
        if let Ok(mut last) = s.last_log.try_lock()
            && last.elapsed() >= LOG_EVERY
        {
            *last = Instant::now();
            if s.items {
                tracing::info!(phase = %s.what, done, total = ?s.total, "progress");
            } else {
                tracing::info!(phase = %s.what, bytes = done, total = ?s.total, mb_per_s = self.rate(done), "progress");
            }
        }
    }

    fn rate(&self, done: u64) -> u64 {
        let secs = self.0.started.elapsed().as_secs_f64().max(0.001);
        (done as f64 / secs / 1e6) as u64
    }

    /// Close the bar and log the phase's total and throughput.
    pub fn finish(&self) {
        let s = &self.0;
        let done = s.done.load(Ordering::Relaxed);
        if let Some(bar) = &s.bar {
            bar.finish_and_clear();
        }
        if s.items {
            tracing::info!(phase = %s.what, done, secs = s.started.elapsed().as_secs_f64(), "done");
        } else if !s.what.is_empty() {
            tracing::info!(phase = %s.what, bytes = done, secs = s.started.elapsed().as_secs_f64(), mb_per_s = self.rate(done), "done");
        }
    }
}
