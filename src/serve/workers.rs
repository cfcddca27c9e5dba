//! Worker threads: one single-threaded Tokio runtime per worker (`--worker-threads`, one per CPU by
//! default). The accept loop deals connections out round-robin; a connection, its requests and the
//! upstream connections they use (each worker has its own pool, `proxy::Forwarder`) stay on one thread.
//!
//! Why not Tokio's work-stealing runtime: with it, a request's tasks (client connection, upstream
//! connection) land on different threads and wake each other through futexes. Pinning a connection to
//! one thread keeps every wake-up local, as nginx's worker processes do, while all cores still serve.
//! On the bench setup (`benches/`, 2 cores, signed GETs at 64 connections) this took the proxy from
//! 40.6 to 36.1 µs of CPU per request and from 26.7k to 32.1k requests per second.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::net::worker::set_current_index;

/// A single-threaded runtime for the calling thread (worker 0).
pub fn main_runtime() -> std::io::Result<Runtime> {
    Builder::new_current_thread().enable_all().build()
}

/// Where new connections go: every worker's runtime, taken in turn.
pub struct WorkerHandles {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

impl WorkerHandles {
    /// The runtime of the worker that takes the next connection.
    pub fn next(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[i]
    }

    pub fn count(&self) -> usize {
        self.handles.len()
    }
}

/// Workers 1..n, each a thread running its own runtime until stopped (worker 0 is the main thread).
pub struct Workers {
    handles: Arc<WorkerHandles>,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts `count - 1` worker threads beside the calling thread's runtime `main`.
    pub fn start(count: usize, main: Handle) -> std::io::Result<Self> {
        let mut handles = vec![main];
        let mut stops = Vec::new();
        let mut threads = Vec::new();
        for index in 1..count.max(1) {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            stops.push(stop);
            let thread = std::thread::Builder::new()
                .name(format!("worker-{index}"))
                .spawn(move || {
                    set_current_index(index);
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                    // Connections still open after the drain are closed here.
                    runtime.shutdown_timeout(Duration::from_secs(1));
                })?;
            threads.push(thread);
        }
        Ok(Workers {
            handles: Arc::new(WorkerHandles {
                handles,
                next: AtomicUsize::new(0),
            }),
            stops,
            threads,
        })
    }

    pub fn handles(&self) -> Arc<WorkerHandles> {
        self.handles.clone()
    }

    /// Stops the worker threads (after the drain) and waits for them.
    pub fn stop(self) {
        for stop in self.stops {
            let _ = stop.send(());
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::worker::current_index;

    #[test]
    fn connections_are_dealt_out_in_turn_and_workers_know_their_number() {
        let main = main_runtime().unwrap();
        let workers = Workers::start(3, main.handle().clone()).unwrap();
        let handles = workers.handles();
        assert_eq!(handles.count(), 3);
        let seen: Vec<usize> = (0..6)
            .map(|_| {
                let handle = handles.next().clone();
                main.block_on(async move { handle.spawn(async { current_index() }).await })
                    .unwrap()
            })
            .collect();
        assert_eq!(seen, [0, 1, 2, 0, 1, 2]);
        workers.stop();
    }
}
