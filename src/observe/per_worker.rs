//! Figures kept one copy per worker thread and merged when read, so that recording a request never
//! takes a lock another worker takes on its request path.
//!
//! Each worker records into its own shard (`net::worker::current_index`; threads that are not workers
//! share shard 0). A shard's mutex is then only ever contended by a reader (a scrape or the
//! dashboard, a few times a minute), and each shard sits on its own cache lines so that two workers
//! recording at once do not pass a line back and forth.

use std::sync::{Mutex, MutexGuard};

use crate::net::worker;

/// Aligned to two cache lines (the adjacent-line prefetcher pairs them on x86).
#[repr(align(128))]
struct Padded<T>(T);

pub struct PerWorker<T> {
    shards: Box<[Padded<Mutex<T>>]>,
}

impl<T: Default> PerWorker<T> {
    /// One shard for each of `workers` worker threads (at least one).
    pub fn new(workers: usize) -> Self {
        PerWorker {
            shards: (0..workers.max(1))
                .map(|_| Padded(Mutex::new(T::default())))
                .collect(),
        }
    }
}

impl<T> PerWorker<T> {
    /// The index of the calling thread's shard.
    pub fn mine(&self) -> usize {
        worker::current_index() % self.shards.len()
    }

    /// Runs `f` on shard `index` (a poisoned shard is used as it is: figures, not invariants).
    pub fn with<R>(&self, index: usize, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut lock(&self.shards[index % self.shards.len()].0))
    }

    /// Runs `f` on the calling thread's shard.
    pub fn with_mine<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.with(self.mine(), f)
    }

    /// Calls `f` on every shard in turn, for merging them.
    pub fn for_each(&self, mut f: impl FnMut(&T)) {
        for shard in self.shards.iter() {
            f(&lock(&shard.0));
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_worker_records_into_its_own_shard_and_reads_merge_them() {
        let counts: std::sync::Arc<PerWorker<u64>> = std::sync::Arc::new(PerWorker::new(3));
        let threads: Vec<_> = (0..3)
            .map(|index| {
                let counts = counts.clone();
                std::thread::spawn(move || {
                    worker::set_current_index(index);
                    for _ in 0..=index {
                        counts.with_mine(|n| *n += 1);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let mut seen = Vec::new();
        counts.for_each(|n| seen.push(*n));
        assert_eq!(seen, [1, 2, 3]);
    }

    #[test]
    fn shards_do_not_share_cache_lines() {
        assert_eq!(std::mem::align_of::<Padded<Mutex<u64>>>(), 128);
    }
}
