//! Password policy and hashing: argon2id with OWASP parameters (m = 19456 KiB, t = 2, p = 1), a
//! PHC string with a per-user random salt.
//!
//! Hashing is CPU-bound (tens of milliseconds), so it runs on threads of its own (one per core,
//! at a lower scheduling priority) behind a gate with one permit per core: a login storm queues
//! here instead of starving the async workers that serve every other RPC. The gate is fair
//! between client addresses ([`crate::fair`]), so one address's flood of Register or Login calls
//! cannot starve another address's Login.

use std::{
    collections::HashSet,
    io::Read,
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc, Arc, Mutex, OnceLock,
    },
};

use tokio::sync::oneshot;

use crate::{
    error::{Error, Result},
    fair::FairGate,
};
use argon2::{
    password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, Salt, SaltString},
    Algorithm, Argon2, Block, Params, Version, ARGON2ID_IDENT,
};

/// Shortest accepted password, in Unicode code points (NIST 800-63B, OWASP ASVS).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password, in Unicode code points. Never truncated.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// The 20,000 most common passwords of Django's `CommonPasswordValidator` (BSD licence; from
/// Royce Williams' list of leaked passwords), gzipped as Django ships it.
const COMMON_PASSWORDS_GZ: &[u8] = include_bytes!("common-passwords.txt.gz");
/// Our own additions: well-known phrases of 12 or more characters that the list lacks.
const MORE_COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// Every refused password, lower-case: built once, on first use (the hasher builds it at start).
fn common_passwords() -> &'static HashSet<String> {
    static COMMON: OnceLock<HashSet<String>> = OnceLock::new();
    COMMON.get_or_init(|| {
        let mut text = String::new();
        // The list is compiled in; failing to inflate it is a build bug.
        flate2::read::GzDecoder::new(COMMON_PASSWORDS_GZ)
            .read_to_string(&mut text)
            .expect("the embedded common-password list inflates");
        text.lines()
            .chain(MORE_COMMON_PASSWORDS.lines())
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_lowercase)
            .collect()
    })
}

/// Why `password` is not acceptable as a new password, if it is not.
pub fn policy_violation(password: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Some(format!("must be at least {MIN_PASSWORD_CHARS} characters"));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Some(format!("must be at most {MAX_PASSWORD_CHARS} characters"));
    }
    if common_passwords().contains(&password.trim().to_lowercase()) {
        return Some("is a commonly used password; choose another".into());
    }
    None
}

/// OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, 2 iterations, 1 lane.
pub fn params() -> Params {
    Params::new(19_456, 2, 1, None).expect("OWASP argon2 parameters are valid")
}

fn internal(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("argon2 {what}: {e}"))
}

/// The `len`-byte argon2 output of `password` with `salt`, computed in `memory` (which must
/// hold `argon`'s block count): the one place both hashing and verifying run argon2.
fn compute(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: Salt<'_>,
    len: usize,
    memory: &mut [Block],
) -> Result<Output> {
    let mut salt_bytes = [0u8; 64];
    let salt = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| internal("salt", e))?;
    Output::init_with(len, |out| {
        argon
            .hash_password_into_with_memory(password, salt, out, &mut *memory)
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(|e| internal("hash", e))
}

/// PHC string of `password` with a fresh random salt, computed in `memory`.
fn hash_in(password: &[u8], memory: &mut [Block]) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let params = params();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let output = compute(
        &argon,
        password,
        salt.as_salt(),
        Params::DEFAULT_OUTPUT_LEN,
        memory,
    )?;
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| internal("params", e))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc`, computed in `memory` when the stored
/// parameters fit it (hashes made with other parameters still verify, in fresh memory).
fn verify_in(password: &[u8], phc: &str, memory: &mut [Block]) -> Result<bool> {
    let parsed = PasswordHash::new(phc).map_err(|e| internal("stored hash", e))?;
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return Err(internal("stored hash", "no hash or salt"));
    };
    let params = Params::try_from(&parsed).map_err(|e| internal("stored params", e))?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| internal("algorithm", e))?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| internal("version", e))?
        .unwrap_or_default();
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut fresh = Vec::new();
    let memory = if memory.len() == params.block_count() {
        memory
    } else {
        fresh.resize(params.block_count(), Block::default());
        &mut fresh[..]
    };
    let computed = compute(&argon, password, salt, expected.len(), memory)?;
    // `Output` compares in constant time.
    Ok(computed == expected)
}

/// Hash of a random password, verified against when the user does not exist, so an unknown
/// user costs exactly what a wrong password costs.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut memory = vec![Block::default(); params().block_count()];
        hash_in(uuid::Uuid::new_v4().as_bytes(), &mut memory)
            .expect("hashing a random password with valid parameters succeeds")
    })
}

/// Hashes and verifies passwords on threads of its own, one per core, shared fairly between
/// clients.
///
/// Each thread owns the 19 MiB of working memory its hashes need (allocated on its first
/// hash): allocating it per call let glibc keep the freed blocks in a different arena for every
/// thread that had run one (hundreds of MiB after a login burst), so the hasher's footprint is
/// cores × 19 MiB, whatever the load. The threads run at a lower scheduling priority
/// ([`HASHING_NICE`]): hashing takes every core nobody else wants, and yields to the RPCs
/// (and, on a shared machine, to book-service) when they want one, so a login storm costs
/// other calls little latency.
#[derive(Debug, Clone)]
pub struct Hasher {
    permits: FairGate,
    /// To the hashing threads (at most one job per permit is waiting or running).
    jobs: mpsc::Sender<Job>,
    /// argon2 computations so far (hashes and verifications).
    computed: Arc<AtomicU64>,
}

/// Work for a hashing thread, given that thread's working memory.
type Job = Box<dyn FnOnce(&mut [Block]) + Send>;

/// The nice value of the hashing threads: the lowest priority an ordinary thread can have.
///
/// On a core shared with book-service (started side by side, in one CPU cgroup), a thread at
/// nice 10 still took the core for whole scheduler ticks (4 ms at 250 Hz) while book calls
/// waited, and a 32-way login storm doubled GetBook's p99; at 19 its weight is 15 against a busy
/// thread's 1,024, and the storm kept GetBook's p99 within 2× its unloaded p99. The price, in
/// BENCHMARKS.md: while another process keeps the core busy, logins get about 1.5 % of it
/// (about 1/s instead of 5/s at nice 10), and a queue of logins waiting past 10 s is refused
/// `LOGIN_THROTTLED`. With a core to spare, hashing runs at full speed whatever its nice value.
/// (Nice ranks threads within one CPU cgroup; between containers their CPU weights decide.)
pub const HASHING_NICE: i32 = 19;

impl Default for Hasher {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Build the dummy hash now, not on the first unknown-user login (which would then be
        // slower than a wrong-password login).
        let _ = dummy_hash();
        let _ = common_passwords();
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..cores {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || hashing_thread(&queue));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-hashing thread");
            }
        }
        Hasher {
            permits: FairGate::new(cores),
            jobs,
            computed: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// Runs the jobs of `queue` until every [`Hasher`] handle is gone.
fn hashing_thread(queue: &Mutex<mpsc::Receiver<Job>>) {
    lower_priority();
    let mut memory = Vec::new();
    loop {
        // One thread at a time waits on the queue; the lock is released before the job runs.
        let job = lock(queue).recv();
        let Ok(job) = job else { return };
        if memory.is_empty() {
            memory = vec![Block::default(); params().block_count()];
        }
        // A panicking job drops its answer (its caller gets an internal error); the thread
        // and its memory stay.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut memory)));
    }
}

/// Sets this thread's nice value to [`HASHING_NICE`] (Linux: a per-thread attribute).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), HASHING_NICE)
    {
        tracing::warn!(error = %e, "password hashing keeps the default priority");
    }
}

impl Hasher {
    /// How many argon2 computations (hashes and verifications) this hasher has run.
    pub fn computed(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }

    /// PHC string of `password` with a fresh random salt, computed in `client`'s turn.
    pub async fn hash(&self, client: &str, password: String) -> Result<String> {
        self.run(client, move |memory| hash_in(password.as_bytes(), memory))
            .await
    }

    /// Whether `password` matches `phc`, computed in `client`'s turn. `None` (unknown user)
    /// verifies against the dummy hash and answers false, in the same time.
    pub async fn verify(
        &self,
        client: &str,
        password: String,
        phc: Option<String>,
    ) -> Result<bool> {
        self.run(client, move |memory| {
            let known = phc.is_some();
            let phc = phc.as_deref().unwrap_or_else(|| dummy_hash());
            Ok(verify_in(password.as_bytes(), phc, memory)? && known)
        })
        .await
    }

    /// Runs `work` on a hashing thread once `client` holds a permit.
    async fn run<T: Send + 'static>(
        &self,
        client: &str,
        work: impl FnOnce(&mut [Block]) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self.permits.acquire(client).await;
        self.computed.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            // The caller may have gone (a cancelled call): nobody to tell.
            let _ = reply.send(work(memory));
        });
        let gone = || Error::Internal("no password-hashing thread".into());
        self.jobs.send(job).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
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
    fn hashes_are_argon2id_phc_strings_that_verify_only_their_password() {
        let mut memory = vec![Block::default(); params().block_count()];
        let phc = hash_in(b"correct horse battery", &mut memory).expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_in(b"correct horse battery", &phc, &mut memory).expect("verify"));
        assert!(!verify_in(b"correct horse batterY", &phc, &mut memory).expect("verify"));
        let other = hash_in(b"correct horse battery", &mut memory).expect("hash");
        assert_ne!(phc, other, "a fresh salt per hash");
    }

    #[test]
    fn hashes_made_by_the_argon2_crate_with_other_parameters_still_verify() {
        use argon2::PasswordHasher;
        let salt = SaltString::generate(&mut OsRng);
        let weaker = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 1, 1, None).expect("params"),
        );
        let phc = weaker
            .hash_password(b"an older password", &salt)
            .expect("hash")
            .to_string();
        let mut memory = vec![Block::default(); params().block_count()];
        assert!(verify_in(b"an older password", &phc, &mut memory).expect("verify"));
    }

    #[tokio::test]
    async fn hashing_threads_run_at_a_lower_priority_and_outlive_a_panicking_job() {
        let hasher = Hasher::default();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        for _ in 0..cores {
            let panicked = hasher
                .run("test", |_| -> Result<()> { panic!("a bug in a job") })
                .await;
            assert!(matches!(panicked, Err(Error::Internal(_))), "{panicked:?}");
        }
        // Every thread is still there: as many jobs as threads, each waiting until all of them
        // run at once.
        let running = Arc::new(AtomicU64::new(0));
        let answers = futures::future::join_all((0..cores).map(|_| {
            let running = running.clone();
            hasher.run("test", move |memory| {
                running.fetch_add(1, Ordering::SeqCst);
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while running.load(Ordering::SeqCst) < cores as u64
                    && std::time::Instant::now() < deadline
                {
                    std::thread::yield_now();
                }
                let together = running.load(Ordering::SeqCst) == cores as u64;
                let tid = rustix::thread::gettid();
                let nice = rustix::process::getpriority_process(Some(tid));
                Ok((together, memory.len(), nice))
            })
        }))
        .await;
        for answer in answers {
            let (together, blocks, nice) = answer.expect("a hashing thread answers");
            assert!(together, "a hashing thread is missing");
            assert_eq!(blocks, params().block_count());
            assert_eq!(nice.expect("getpriority"), HASHING_NICE);
        }
        assert_eq!(hasher.computed(), 2 * cores as u64);
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        assert!(policy_violation("Password1234").is_some());
        assert!(policy_violation("correct horse battery staple").is_some());
        // From Django's list (20,000 entries), with at least 12 characters.
        assert!(policy_violation("1qaz2wsx3edc").is_some());
        assert!(
            common_passwords().len() > 19_000,
            "{}",
            common_passwords().len()
        );
    }
}
