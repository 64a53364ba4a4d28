//! Network peers of the lca-seed timeout tests, in front of (or instead of) the real
//! loopback registry: a silent peer that accepts TCP connections and never answers (what a
//! wedged registry or a black-holing middlebox looks like), a slow link that forwards bytes
//! in small, delayed chunks and can stop forwarding for good after some bytes, and
//! SIGSTOP/SIGCONT of the real registry process.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Accepts connections on 127.0.0.1 and holds them open without ever writing a byte.
pub struct SilentPeer {
    addr: String,
}

impl SilentPeer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            // Keeping the streams keeps the connections open: a closed one would be an answer.
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        Self { addr }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }
}

/// How one direction of a [`SlowLink`] forwards.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Bytes per write.
    pub chunk: usize,
    /// Pause after each write.
    pub delay: Duration,
    /// Stop forwarding (but keep the connection) once this many bytes went through.
    pub stall_after: Option<u64>,
}

impl Shape {
    pub const FAST: Shape = Shape {
        chunk: 64 * 1024,
        delay: Duration::ZERO,
        stall_after: None,
    };

    pub fn drip(chunk: usize, delay: Duration) -> Self {
        Self {
            chunk,
            delay,
            stall_after: None,
        }
    }

    pub fn stall_after(bytes: u64) -> Self {
        Self {
            stall_after: Some(bytes),
            ..Self::FAST
        }
    }
}

/// A TCP forwarder on 127.0.0.1 to `upstream`, shaping requests (`up`) and responses
/// (`down`) per connection. Dropping it releases stalled connections (they close).
pub struct SlowLink {
    addr: String,
    _release: mpsc::Sender<()>,
}

impl SlowLink {
    pub fn start(upstream: &str, up: Shape, down: Shape) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (release, released) = mpsc::channel::<()>();
        let released = std::sync::Arc::new(std::sync::Mutex::new(released));
        let upstream = upstream.to_string();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (r1, r2) = (released.clone(), released.clone());
                std::thread::spawn(move || pump(client, server, up, &r1));
                std::thread::spawn(move || pump(s2, c2, down, &r2));
            }
        });
        Self {
            addr,
            _release: release,
        }
    }

    /// `127.0.0.1:<port>`: use it as the registry part of references.
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    shape: Shape,
    released: &std::sync::Mutex<mpsc::Receiver<()>>,
) {
    let mut buf = vec![0u8; shape.chunk];
    let mut sent = 0u64;
    loop {
        let limit = match shape.stall_after {
            Some(max) if sent >= max => {
                // Blocks until the link is dropped (recv then fails): a stall, not a close.
                let _ = released.lock().map(|r| r.recv());
                break;
            }
            Some(max) => buf.len().min((max - sent) as usize),
            None => buf.len(),
        };
        match from.read(&mut buf[..limit]) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                sent += n as u64;
                if !shape.delay.is_zero() {
                    std::thread::sleep(shape.delay);
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Freeze (`SIGSTOP`) the process `pid`: its listening socket still completes TCP
/// handshakes (the kernel does that), but nothing is ever read or answered.
pub fn freeze(pid: i32) {
    kill(Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
}

pub fn thaw(pid: i32) {
    kill(Pid::from_raw(pid), Signal::SIGCONT).unwrap();
}

/// `n` bytes that gzip cannot shrink (xorshift), so a layer's size is what is sent.
pub fn incompressible(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
