//! At most `max_concurrent` hashes at once, on blocking threads, each waiting a bounded
//! time for its turn.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::{PasswordError, Passwords};

// The password the unknown-username verification checks against; any value will do.
const DUMMY_PASSWORD: &str = "portcullis: no such user";

impl Passwords {
    /// [`Passwords::hash_blocking`] on a blocking thread, at most
    /// [`PasswordConfig::max_concurrent`](super::PasswordConfig::max_concurrent) at once.
    ///
    /// ```
    /// use portcullis::password::{PasswordConfig, Passwords};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let passwords = Passwords::new(PasswordConfig::default()).unwrap();
    /// let stored = passwords.hash("a long passphrase".to_owned()).await.unwrap();
    /// assert!(passwords.verify("a long passphrase".to_owned(), Some(stored)).await.unwrap());
    /// # });
    /// ```
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        let password = Zeroizing::new(password);
        let this = self.clone();
        self.run(move || this.hash_blocking(&password)).await
    }

    /// [`Passwords::verify_blocking`] on a blocking thread, at most
    /// [`PasswordConfig::max_concurrent`](super::PasswordConfig::max_concurrent) at once.
    ///
    /// Pass `None` when the username is unknown: an Argon2id verification with the
    /// current parameters runs anyway (against a hash made once, on first need) and the
    /// answer is `Ok(false)`, so the response takes as long as for a known user with a
    /// wrong password and does not reveal which usernames exist.
    ///
    /// ```
    /// use portcullis::password::{PasswordConfig, Passwords};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let passwords = Passwords::new(PasswordConfig::default()).unwrap();
    /// // The user does not exist: as slow as a real check, and false.
    /// assert!(!passwords.verify("guess".to_owned(), None).await.unwrap());
    /// # });
    /// ```
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        let password = Zeroizing::new(password);
        let this = self.clone();
        self.run(move || match stored {
            Some(stored) => this.verify_blocking(&password, &stored),
            None => {
                let dummy = this.dummy_hash()?;
                // The result is discarded: only the time it takes matters.
                let _ = this.verify_blocking(&password, dummy);
                Ok(false)
            }
        })
        .await
    }

    /// Takes every hashing slot until the permit is dropped: a saturated hasher.
    #[cfg(test)]
    pub(crate) async fn take_every_slot(&self) -> tokio::sync::OwnedSemaphorePermit {
        let slots = u32::try_from(self.inner.config.max_concurrent).unwrap_or(u32::MAX);
        Arc::clone(&self.inner.permits)
            .acquire_many_owned(slots)
            .await
            .expect("the semaphore is never closed")
    }

    fn dummy_hash(&self) -> Result<&str, PasswordError> {
        if let Some(hash) = self.inner.dummy.get() {
            return Ok(hash);
        }
        // Two threads may both compute it the first time; one result is kept.
        let hash = self.hash_blocking(DUMMY_PASSWORD)?;
        Ok(self.inner.dummy.get_or_init(|| hash))
    }

    async fn run<T, F>(&self, job: F) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, PasswordError> + Send + 'static,
    {
        let permits = Arc::clone(&self.inner.permits);
        // A free slot is taken without a timer; only a wait is bounded.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                tokio::time::timeout(self.inner.config.permit_timeout, permits.acquire_owned())
                    .await
                    .map_err(|_| {
                        tracing::warn!(
                            target: "portcullis::security",
                            event = "password_hashing_busy",
                            "every password hashing slot stayed busy; the request is refused (503)"
                        );
                        PasswordError::Busy
                    })?
                    .map_err(|_| {
                        PasswordError::Hashing("the password worker pool is closed".to_owned())
                    })?
            }
        };
        tokio::task::spawn_blocking(move || {
            // Held until the computation ends, not until the caller stops waiting: a
            // cancelled request must not free a slot while its hash still runs.
            let _permit = permit;
            job()
        })
        .await
        .map_err(|_| PasswordError::Hashing("the password worker task failed".to_owned()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::hasher::tests::fast;
    use crate::password::PasswordConfig;

    #[tokio::test(start_paused = true)]
    async fn a_saturated_hasher_answers_busy_within_its_bound() {
        let passwords = Passwords::new(
            PasswordConfig::default()
                .memory_kib(256)
                .iterations(1)
                .max_concurrent(1)
                .permit_timeout(std::time::Duration::from_millis(50)),
        )
        .unwrap();
        let stored = passwords.hash("pw".to_owned()).await.unwrap();
        // Every slot taken, as by a flood of logins that keeps them busy.
        let held = Arc::clone(&passwords.inner.permits)
            .acquire_owned()
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(
            passwords
                .verify("pw".to_owned(), Some(stored.clone()))
                .await,
            Err(PasswordError::Busy)
        );
        assert_eq!(
            passwords.hash("pw".to_owned()).await,
            Err(PasswordError::Busy)
        );
        // The paused clock moved by the bounds and nothing else: two waits of 50 ms.
        assert_eq!(started.elapsed(), std::time::Duration::from_millis(100));
        drop(held);
        assert_eq!(
            passwords.verify("pw".to_owned(), Some(stored)).await,
            Ok(true)
        );
    }

    #[tokio::test]
    async fn async_verify_without_a_user_is_false() {
        let passwords = fast();
        assert_eq!(
            passwords.verify("anything".to_owned(), None).await,
            Ok(false)
        );
        assert_eq!(
            passwords.verify(DUMMY_PASSWORD.to_owned(), None).await,
            Ok(false)
        );
        // The dummy hash has the current parameters and is made once.
        let dummy = passwords.inner.dummy.get().unwrap().clone();
        assert!(!passwords.needs_rehash(&dummy));
        passwords.verify("again".to_owned(), None).await.unwrap();
        assert_eq!(passwords.inner.dummy.get().unwrap(), &dummy);
    }

    #[tokio::test]
    async fn async_hash_and_verify_round_trip() {
        let passwords = fast();
        let stored = passwords.hash("pässwörd".to_owned()).await.unwrap();
        assert_eq!(
            passwords
                .verify("pässwörd".to_owned(), Some(stored.clone()))
                .await,
            Ok(true)
        );
        assert_eq!(
            passwords.verify("wrong".to_owned(), Some(stored)).await,
            Ok(false)
        );
        assert_eq!(
            passwords
                .verify("x".to_owned(), Some("junk".to_owned()))
                .await,
            Err(PasswordError::Malformed)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_concurrency_cap_queues_work_and_frees_its_slots() {
        let passwords = Passwords::new(
            PasswordConfig::default()
                .memory_kib(256)
                .iterations(1)
                .max_concurrent(1),
        )
        .unwrap();
        let (a, b, c) = tokio::join!(
            passwords.hash("first".to_owned()),
            passwords.hash("second".to_owned()),
            passwords.verify("third".to_owned(), None),
        );
        assert_eq!(passwords.verify_blocking("first", &a.unwrap()), Ok(true));
        assert_eq!(passwords.verify_blocking("second", &b.unwrap()), Ok(true));
        assert_eq!(c, Ok(false));
        assert_eq!(passwords.inner.permits.available_permits(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_call_keeps_its_slot_until_the_work_ends() {
        let passwords = Passwords::new(
            PasswordConfig::default()
                .memory_kib(8 * 1024)
                .iterations(4)
                .max_concurrent(1),
        )
        .unwrap();
        let task = tokio::spawn({
            let passwords = passwords.clone();
            async move { passwords.hash("slow".to_owned()).await }
        });
        // Wait until the hash holds the only slot, then abandon it.
        while passwords.inner.permits.available_permits() == 1 && !task.is_finished() {
            tokio::task::yield_now().await;
        }
        task.abort();
        // The next call still gets its turn and completes.
        let stored = passwords.hash("next".to_owned()).await.unwrap();
        assert_eq!(passwords.verify_blocking("next", &stored), Ok(true));
        // The abandoned computation releases its slot when it ends.
        for _ in 0..1000 {
            if passwords.inner.permits.available_permits() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(passwords.inner.permits.available_permits(), 1);
    }
}
