//! Password policy and hashing: argon2id with OWASP parameters (m = 19456 KiB, t = 2, p = 1), a
//! PHC string with a per-user random salt.
//!
//! Hashing is CPU-bound (tens of milliseconds), so it runs on the blocking pool behind a
//! semaphore with one permit per core: a login storm queues here instead of starving the async
//! workers that serve every other RPC.

use std::sync::{Arc, OnceLock};

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// Shortest accepted password, in Unicode code points (NIST 800-63B, OWASP ASVS).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password, in Unicode code points. Never truncated.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Well-known passwords long enough to pass the length rule; refused case-insensitively.
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// Why `password` is not acceptable as a new password, if it is not.
pub fn policy_violation(password: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Some(format!("must be at least {MIN_PASSWORD_CHARS} characters"));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Some(format!("must be at most {MAX_PASSWORD_CHARS} characters"));
    }
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS
        .lines()
        .map(str::trim)
        .any(|common| !common.is_empty() && !common.starts_with('#') && common == lower)
    {
        return Some("is a commonly used password; choose another".into());
    }
    None
}

fn argon2() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19_456, 2, 1, None).expect("OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hash of a random password, verified against when the user does not exist, so an unknown
/// user costs exactly what a wrong password costs.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(uuid::Uuid::new_v4().as_bytes(), &salt)
            .expect("hashing a random password with valid parameters succeeds")
            .to_string()
    })
}

/// Hashes and verifies passwords on the blocking pool, at most one per core at a time.
#[derive(Debug, Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
}

impl Default for Hasher {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Build the dummy hash now, not on the first unknown-user login (which would then be
        // slower than a wrong-password login).
        let _ = dummy_hash();
        Hasher {
            permits: Arc::new(Semaphore::new(cores)),
        }
    }
}

impl Hasher {
    /// PHC string of `password` with a fresh random salt.
    pub async fn hash(&self, password: String) -> Result<String> {
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::Internal(format!("argon2 hash: {e}")))
        })
        .await
    }

    /// Whether `password` matches `phc`. `None` (unknown user) verifies against the dummy hash
    /// and answers false, in the same time.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool> {
        self.run(move || {
            let known = phc.is_some();
            let phc = phc.unwrap_or_else(|| dummy_hash().to_owned());
            let parsed = PasswordHash::new(&phc)
                .map_err(|e| Error::Internal(format!("stored hash unreadable: {e}")))?;
            let matches = argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            Ok(known && matches)
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Internal("hasher semaphore closed".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Error::Internal(format!("hashing task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_counts_code_points_not_bytes() {
        assert!(policy_violation("ééééééééééé").is_some(), "11 code points");
        assert!(policy_violation("éééééééééééé").is_none(), "12 code points");
        assert!(policy_violation(&"x".repeat(129)).is_some());
        assert!(policy_violation(&"x".repeat(128)).is_none());
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        assert!(policy_violation("Password1234").is_some());
        assert!(policy_violation("correct horse battery staple").is_some());
    }
}
