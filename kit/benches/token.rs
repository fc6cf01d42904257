//! Token verification cost: a full Ed25519 verify versus a hit in the interceptor's
//! verified-token cache. Run with `cargo bench --bench token` (figures in BENCHMARKS.md).

use std::{
    hint::black_box,
    sync::{Arc, RwLock},
    time::Instant,
};

use bookstore_contract::token::{self, Claims, Expectations, KeySet, Signer};
use bookstore_kit::{auth::Authenticator, clock::Clock, metrics::Metrics, revoked::Revocations};
use ed25519_dalek::SigningKey;
use tonic::metadata::MetadataMap;

fn per_op(label: &str, iterations: u32, mut op: impl FnMut()) {
    for _ in 0..iterations / 10 {
        op(); // warm up
    }
    let start = Instant::now();
    for _ in 0..iterations {
        op();
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(iterations);
    println!("{label:<48} {:>10.2} µs/op", ns / 1000.0);
}

fn main() {
    let key = SigningKey::from_bytes(&[7; 32]);
    let mut keys = KeySet::default();
    keys.insert("k1", key.verifying_key());
    let expect = Expectations {
        issuer: "bookstore-auth".into(),
        audience: "bookstore".into(),
    };
    let now = Clock::system().unix_seconds();
    let claims = Claims {
        iss: expect.issuer.clone(),
        aud: expect.audience.clone(),
        sub: "0190b5f8-0000-7000-8000-000000000000".into(),
        username: "alice".into(),
        admin: false,
        iat: now,
        nbf: now,
        exp: now + 900,
        jti: "bench".into(),
        sid: "session".into(),
        scope: String::new(),
        client_id: None,
    };
    let signer = Signer::new("k1", &key);
    let jwt = signer.sign(&claims);

    per_op("sign (jsonwebtoken, Ed25519)", 20_000, || {
        black_box(signer.sign(black_box(&claims)));
    });
    per_op(
        "verify, uncached (jsonwebtoken + our checks)",
        20_000,
        || {
            black_box(token::verify(black_box(&jwt), &keys, &expect, now).expect("valid"));
        },
    );

    let metadata = {
        let mut metadata = MetadataMap::new();
        metadata.insert(
            "authorization",
            format!("Bearer {jwt}").parse().expect("metadata"),
        );
        metadata
    };
    let keys = Arc::new(RwLock::new(keys));
    let authenticator_with = |revocations: Revocations| {
        let authenticator = Authenticator::new(
            keys.clone(),
            expect.clone(),
            "bench",
            revocations,
            &Metrics::new(),
        );
        (authenticator, metadata.clone())
    };
    let (authenticator, metadata) = authenticator_with(Revocations::default());
    per_op(
        "interceptor, cached token (SHA-256 + map hit)",
        200_000,
        || {
            black_box(
                authenticator
                    .authenticate(black_box(&metadata))
                    .expect("valid"),
            );
        },
    );
    revocations_held(authenticator_with);
}

/// Resident memory of this process now, in MiB (Linux).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// What 100,000 revocations cost a verifier: memory, and the interceptor's cached path.
fn revocations_held(authenticator_with: impl Fn(Revocations) -> (Authenticator, MetadataMap)) {
    use bookstore_contract::proto::auth::Revocation;
    use prost_types::Timestamp;
    let revocations = Revocations::default();
    let before = rss_mib();
    let batch: Vec<Revocation> = (0..100_000)
        .map(|i| Revocation {
            cursor: i + 1,
            // The shape of a real session id: a UUID.
            session_id: format!("{:08x}-0000-4000-8000-{:012x}", i, i * 7919),
            expire_time: Some(Timestamp {
                seconds: i64::MAX / 2,
                nanos: 0,
            }),
            ..Default::default()
        })
        .collect();
    revocations.apply(&batch);
    drop(batch);
    println!(
        "{:<48} {:>10.1} MiB",
        "100,000 revoked sessions held (RSS growth)",
        rss_mib() - before
    );
    let (authenticator, metadata) = authenticator_with(revocations);
    per_op(
        "interceptor, cached token, 100,000 revocations held",
        200_000,
        || {
            black_box(
                authenticator
                    .authenticate(black_box(&metadata))
                    .expect("valid"),
            );
        },
    );
}
