//! Token verification cost: a full Ed25519 verify versus a hit in the interceptor's
//! verified-token cache. Run with `cargo bench --bench token` (figures in BENCHMARKS.md).

use std::{
    hint::black_box,
    sync::{Arc, RwLock},
    time::Instant,
};

use bookstore_contract::token::{self, Claims, Expectations, KeySet, Signer};
use bookstore_kit::{auth::Authenticator, clock::Clock, revocation::Revocations};
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

    let authenticator = Authenticator::new(
        Arc::new(RwLock::new(keys)),
        expect,
        "bench",
        Revocations::default(),
    );
    let mut metadata = MetadataMap::new();
    metadata.insert(
        "authorization",
        format!("Bearer {jwt}").parse().expect("metadata"),
    );
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
}
