//! Where log lines wait for stdout: one shared buffer that request threads append whole lines to,
//! and a writer thread that takes all of it at once, some milliseconds after the first line came,
//! and writes it in one `write(2)`. A line costs its caller a lock and a copy: no allocation, no
//! channel message, no wake-up of the writer (only the first line of a batch wakes it). When the
//! buffer is full (stdout blocked), lines are dropped and counted rather than stalling requests.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// Bytes of lines held for the writer before new lines are dropped (about 30,000 access-log
/// lines; the writer thread's tracing-appender predecessor held 64 Ki lines).
const LIMIT: usize = 8 << 20;

/// How long the writer waits after the first line of a batch for more to join it: at most this
/// late on stdout, and at most 1/LINGER writes a second however busy the edge.
const LINGER: Duration = Duration::from_millis(2);

/// The buffer above a batch's capacity is given back after it is written (a burst's memory).
const KEEP: usize = 1 << 20;

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    closed: bool,
}

/// The shared buffer and its writer thread's wake-up.
pub struct Sink {
    pending: Mutex<Pending>,
    wake: Condvar,
    dropped: AtomicU64,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Whether the lines written to the sink are JSON: the access log then formats its own.
static JSON: AtomicBool = AtomicBool::new(false);

/// Says whether the lines written to the sink are JSON (telemetry's choice of format).
pub fn set_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

/// The sink, when the lines written to it are JSON (the access log's own line is JSON only).
pub fn json_sink() -> Option<&'static Sink> {
    if JSON.load(Ordering::Relaxed) {
        SINK.get()
    } else {
        None
    }
}

/// Installs the sink and starts its writer thread (once; later calls return the same sink).
pub fn install() -> std::io::Result<&'static Sink> {
    let sink = SINK.get_or_init(|| Sink {
        pending: Mutex::new(Pending::default()),
        wake: Condvar::new(),
        dropped: AtomicU64::new(0),
        writer: Mutex::new(None),
    });
    let mut writer = sink.writer.lock().unwrap_or_else(PoisonError::into_inner);
    if writer.is_none() && !sink.lock().closed {
        *writer = Some(
            std::thread::Builder::new()
                .name("edge-log".into())
                .spawn(|| write_batches(sink, &mut std::io::stdout()))?,
        );
    }
    drop(writer);
    Ok(sink)
}

/// The installed sink, if any (unit tests and tools log through tracing alone).
pub fn get() -> Option<&'static Sink> {
    SINK.get()
}

impl Sink {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one line that `write` puts at the end of the buffer it is given (the line's end,
    /// `\n`, included). Dropped (and counted) when the buffer is full or the sink closed.
    pub fn line(&self, write: impl FnOnce(&mut Vec<u8>)) {
        let mut p = self.lock();
        if p.closed || p.lines.len() >= LIMIT {
            drop(p);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let first = p.lines.is_empty();
        write(&mut p.lines);
        drop(p);
        if first {
            self.wake.notify_one();
        }
    }

    /// Lines dropped because the writer could not keep up (or came after the close).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes out what is buffered and stops the writer: later lines are dropped.
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// The writer thread: waits for a first line, lingers for more, takes the whole buffer and writes
/// it; until the sink is closed and empty.
fn write_batches(sink: &Sink, out: &mut impl std::io::Write) {
    let mut batch = Vec::new();
    loop {
        let mut p = sink.lock();
        while p.lines.is_empty() && !p.closed {
            p = sink.wake.wait(p).unwrap_or_else(PoisonError::into_inner);
        }
        if p.lines.is_empty() {
            return;
        }
        if !p.closed {
            drop(p);
            std::thread::sleep(LINGER);
            p = sink.lock();
        }
        std::mem::swap(&mut p.lines, &mut batch);
        drop(p);
        // A closed stdout loses the lines, as the terminal would.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        batch.shrink_to(KEEP);
    }
}

/// The sink as tracing-subscriber's writer: the fmt layer writes each formatted event with one
/// `write_all`, so each write is one whole line.
#[derive(Clone, Copy)]
pub struct Lines(pub &'static Sink);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.line(|out| out.extend_from_slice(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
    type Writer = Lines;
    fn make_writer(&'a self) -> Lines {
        *self
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::io::Write as _;

    fn sink() -> &'static Sink {
        Box::leak(Box::new(Sink {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            dropped: AtomicU64::new(0),
            writer: Mutex::new(None),
        }))
    }

    #[test]
    fn lines_come_out_whole_in_order_and_the_close_writes_the_rest() {
        let s = sink();
        let out = std::sync::Arc::new(Mutex::new(Vec::new()));
        struct Shared(std::sync::Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Shared {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut w = Shared(out.clone());
        let handle = std::thread::spawn(move || write_batches(s, &mut w));
        *s.writer.lock().unwrap() = Some(handle);
        for i in 0..1000 {
            s.line(|b| b.extend_from_slice(format!("line {i}\n").as_bytes()));
        }
        let mut lines = Lines(s);
        lines.write_all(b"last\n").unwrap();
        s.close();
        s.line(|b| b.extend_from_slice(b"after the close\n"));
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let want: String = (0..1000)
            .map(|i| format!("line {i}\n"))
            .chain(["last\n".to_owned()])
            .collect();
        assert_eq!(text, want);
        assert_eq!(s.dropped(), 1);
    }

    #[test]
    fn a_full_buffer_drops_and_counts_lines() {
        let s = sink();
        // No writer thread: nothing drains the buffer.
        let line = vec![b'x'; 4096];
        for _ in 0..(LIMIT / line.len() + 10) {
            s.line(|b| b.extend_from_slice(&line));
        }
        assert_eq!(s.dropped(), 10);
        assert_eq!(s.lock().lines.len(), LIMIT);
    }
}
