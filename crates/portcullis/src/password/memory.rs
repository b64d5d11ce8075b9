//! Argon2's working memory, kept between computations.

use std::sync::Mutex;

use argon2::password_hash;
use argon2::{Argon2, Block};

/// Argon2's working memory (19 MiB with the defaults), kept between computations.
///
/// `Argon2::hash_password` allocates it afresh for every computation, on whichever
/// blocking thread runs it. The allocator then serves the next one from that thread's
/// arena and keeps the freed block resident there, so a server whose logins land on
/// many blocking threads ends up holding one such block per arena: hundreds of MiB
/// for a few MiB of live data. Keeping at most `max_concurrent` buffers here, and
/// handing one to each computation, bounds the memory hashing ever takes to
/// `max_concurrent × m` and stops it from growing with the number of threads.
pub(super) struct WorkingMemory {
    // Each buffer holds exactly `blocks` blocks: the current parameters' need.
    idle: Mutex<Vec<Vec<Block>>>,
    blocks: usize,
    keep: usize,
}

impl WorkingMemory {
    /// A pool of at most `keep` buffers of `blocks` blocks each, filled as needed.
    pub(super) fn new(blocks: usize, keep: usize) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            blocks,
            keep,
        }
    }

    /// `argon2`'s output of `len` bytes for `password` and `salt`, computed in memory
    /// from the pool: what `Argon2::hash_password` computes, without allocating.
    pub(super) fn derive(
        &self,
        argon2: &Argon2<'_>,
        password: &[u8],
        salt: &[u8],
        len: usize,
    ) -> password_hash::Result<password_hash::Output> {
        self.with(argon2.params().block_count(), |blocks| {
            password_hash::Output::init_with(len, |out| {
                Ok(argon2.hash_password_into_with_memory(password, salt, out, blocks)?)
            })
        })
    }

    /// Runs `compute` with at least `needed` blocks: a kept buffer when one is idle and
    /// large enough, else a new one, kept afterwards if the pool has room. A stored hash
    /// asking for more than the current parameters gets a buffer of its own, freed
    /// after use, so one rare strong hash does not pin its size for good.
    fn with<T>(&self, needed: usize, compute: impl FnOnce(&mut [Block]) -> T) -> T {
        if needed > self.blocks {
            let mut own = vec![Block::default(); needed];
            return compute(&mut own);
        }
        // A poisoned lock only means another computation panicked; the buffers are
        // plain memory, overwritten by the next computation, so they stay usable.
        let taken = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut buffer = taken.unwrap_or_else(|| vec![Block::default(); self.blocks]);
        let result = compute(&mut buffer[..needed]);
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.keep {
            idle.push(buffer);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use crate::password::{PasswordConfig, Passwords};

    #[test]
    fn working_memory_stays_bounded_whatever_the_threads() {
        let passwords = Passwords::new(
            PasswordConfig::default()
                .memory_kib(256)
                .iterations(1)
                .max_concurrent(2),
        )
        .unwrap();
        let stored = passwords.hash_blocking("bounded").unwrap();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..4 {
                        assert_eq!(passwords.verify_blocking("bounded", &stored), Ok(true));
                    }
                });
            }
        });
        let memory = &passwords.inner.memory;
        let idle = memory.idle.lock().unwrap();
        assert!(
            !idle.is_empty() && idle.len() <= 2,
            "{} buffers kept",
            idle.len()
        );
        assert!(idle.iter().all(|buffer| buffer.len() == memory.blocks));
    }
}
