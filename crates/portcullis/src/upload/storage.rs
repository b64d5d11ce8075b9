//! Where uploaded bytes live: random names, staging, and a local folder.

use std::path::{Path, PathBuf};

use crate::keys::fill_random;

/// A random 128-bit id (hex): for stored file names and public file ids, so neither
/// can be guessed or enumerated.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `id` has the shape [`random_id`] makes; anything else is not looked up.
pub fn is_valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Where uploaded bytes live. A trait, so that an object store can slot in.
pub trait UploadStorage: Send + Sync + std::fmt::Debug + 'static {
    /// Stores `bytes` under a new random name without making it visible yet; returns a
    /// handle to [`commit`](UploadStorage::commit) or [`discard`](UploadStorage::discard).
    fn stage(&self, bytes: &[u8]) -> std::io::Result<Staged>;
    /// Makes a staged file visible under its name.
    fn commit(&self, staged: &Staged) -> std::io::Result<()>;
    /// Removes a staged or committed file.
    fn discard(&self, name: &str) -> std::io::Result<()>;
    /// Reads a committed file.
    fn read(&self, name: &str) -> std::io::Result<Vec<u8>>;
}

/// A file written but not yet visible.
#[derive(Debug)]
pub struct Staged {
    /// The final storage name (random, 128 bits).
    pub name: String,
    temp: PathBuf,
}

/// Files in a local folder, which must not be one the app serves. Each file is
/// written to a staging folder of this instance's own (`folder/.staging/<random id>/`)
/// and renamed into place, so an aborted upload never leaves a partial file under a
/// real name.
///
/// Several instances (processes behind one load balancer, or one restarted while the
/// old one drains) may share `folder`: each stages in its own folder, so none ever
/// removes another's file in flight. At start, staging folders untouched for
/// [`LocalStorage::STALE_STAGING`] (left by instances that crashed) are removed.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    folder: PathBuf,
    staging: PathBuf,
}

impl LocalStorage {
    /// How long a staging folder (or a file staged by an older version directly in
    /// `.staging`) must have been untouched before a starting instance removes it.
    /// Staging a file touches its folder, and an upload is staged and committed within
    /// one request, so only the leftovers of a crash are this old.
    pub const STALE_STAGING: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

    /// Storage in `folder` (created if needed).
    pub fn new(folder: impl Into<PathBuf>) -> std::io::Result<Self> {
        let folder = folder.into();
        let shared = folder.join(".staging");
        std::fs::create_dir_all(&shared)?;
        // Leftovers of a crash are never referenced by a row: drop them once stale.
        let now = std::time::SystemTime::now();
        for entry in std::fs::read_dir(&shared)?.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .is_some_and(|age| age >= Self::STALE_STAGING);
            if stale {
                let path = entry.path();
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(path)
                } else {
                    std::fs::remove_file(path)
                };
            }
        }
        let staging = shared.join(random_id());
        std::fs::create_dir_all(&staging)?;
        Ok(Self { folder, staging })
    }

    /// This instance's staging folder.
    pub fn staging_folder(&self) -> &Path {
        &self.staging
    }

    fn path_of(&self, name: &str) -> std::io::Result<PathBuf> {
        // Names are ours (random hex), but never let one walk out of the folder.
        if !is_valid_id(name) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a storage name",
            ));
        }
        Ok(self.folder.join(name))
    }

    /// The folder.
    pub fn folder(&self) -> &Path {
        &self.folder
    }
}

impl UploadStorage for LocalStorage {
    fn stage(&self, bytes: &[u8]) -> std::io::Result<Staged> {
        use std::io::Write;
        let name = random_id();
        let temp = self.staging.join(&name);
        let result = (|| {
            let open = || {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&temp)
            };
            let mut file = match open() {
                // Idle for a day, this instance's folder may have been taken for a
                // crashed one's by another starting instance: make it again.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(&self.staging)?;
                    open()?
                }
                other => other?,
            };
            file.write_all(bytes)?;
            file.sync_all()
        })();
        if let Err(error) = result {
            let _ = std::fs::remove_file(&temp);
            return Err(error);
        }
        Ok(Staged { name, temp })
    }

    fn commit(&self, staged: &Staged) -> std::io::Result<()> {
        std::fs::rename(&staged.temp, self.path_of(&staged.name)?)
    }

    fn discard(&self, name: &str) -> std::io::Result<()> {
        let staged = self.staging.join(name);
        if is_valid_id(name) && staged.exists() {
            std::fs::remove_file(staged)?;
        }
        match std::fs::remove_file(self.path_of(name)?) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path_of(name)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_names_cannot_walk_out_of_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path().join("uploads")).unwrap();
        for name in ["../../etc/passwd", "/etc/passwd", "..", "", "ABCDEF"] {
            assert!(storage.read(name).is_err(), "{name}");
            assert!(storage.discard(name).is_err() || name.is_empty(), "{name}");
        }
        let staged = storage.stage(b"data").unwrap();
        assert!(
            storage.read(&staged.name).is_err(),
            "staged files are not visible"
        );
        storage.commit(&staged).unwrap();
        assert_eq!(storage.read(&staged.name).unwrap(), b"data");
        storage.discard(&staged.name).unwrap();
        assert!(storage.read(&staged.name).is_err());
    }

    #[test]
    fn a_starting_storage_keeps_another_instances_staged_file() {
        let dir = tempfile::tempdir().unwrap();
        let first = LocalStorage::new(dir.path()).unwrap();
        let staged = first.stage(b"in flight").unwrap();
        // Another instance starts on the same folder while the upload is in flight.
        let second = LocalStorage::new(dir.path()).unwrap();
        assert_ne!(first.staging_folder(), second.staging_folder());
        first.commit(&staged).unwrap();
        assert_eq!(second.read(&staged.name).unwrap(), b"in flight");
        let theirs = second.stage(b"second").unwrap();
        second.commit(&theirs).unwrap();
        assert_eq!(first.read(&theirs.name).unwrap(), b"second");

        // A crashed instance's folder, untouched for two days, is removed at start;
        // so is a file an older version left directly in `.staging`.
        let stale = dir.path().join(".staging").join(random_id());
        std::fs::create_dir_all(&stale).unwrap();
        std::fs::write(stale.join(random_id()), b"partial").unwrap();
        let legacy = dir.path().join(".staging").join(random_id());
        std::fs::write(&legacy, b"partial").unwrap();
        let two_days_ago = std::time::SystemTime::now() - 2 * LocalStorage::STALE_STAGING;
        for path in [&stale, &legacy] {
            std::fs::File::open(path)
                .unwrap()
                .set_modified(two_days_ago)
                .unwrap();
        }
        let in_flight = first.stage(b"again").unwrap();
        let third = LocalStorage::new(dir.path()).unwrap();
        assert!(
            !stale.exists() && !legacy.exists(),
            "stale leftovers are removed"
        );
        assert!(first.staging_folder().exists() && second.staging_folder().exists());
        first.commit(&in_flight).unwrap();
        assert_eq!(third.read(&in_flight.name).unwrap(), b"again");

        // An instance whose folder was taken for a stale one makes it again.
        std::fs::remove_dir_all(second.staging_folder()).unwrap();
        let after = second.stage(b"after").unwrap();
        second.commit(&after).unwrap();
        assert_eq!(first.read(&after.name).unwrap(), b"after");
    }
}
