//! Property tests of the access-token decoder, the first thing every protected call meets:
//! any string is refused without a panic, a signed token verifies to exactly its claims, and a
//! token changed anywhere never verifies to other claims. `PROPTEST_CASES` sets the number of
//! cases (256 by default, as CI runs them; `PROPTEST_CASES=100000 cargo test --test properties`
//! runs them longer).

use bookstore_contract::token::{verify, Claims, Expectations, KeySet, Signer};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;

const NOW: i64 = 1_800_000_000;

fn keys() -> (Signer, KeySet) {
    let key = SigningKey::from_bytes(&[7; 32]);
    let mut set = KeySet::default();
    set.insert("k1", key.verifying_key());
    (Signer::new("k1", &key), set)
}

fn expect() -> Expectations {
    Expectations {
        issuer: "iss".into(),
        audience: "aud".into(),
    }
}

fn claims(sub: String, username: String, sid: String, scope: String, admin: bool) -> Claims {
    Claims {
        iss: "iss".into(),
        aud: "aud".into(),
        sub,
        username,
        admin,
        iat: NOW - 10,
        nbf: NOW - 10,
        exp: NOW + 600,
        jti: "jti".into(),
        sid,
        scope,
        client_id: None,
    }
}

proptest! {
    #[test]
    fn any_string_is_refused_without_a_panic(token in ".{0,600}") {
        let (_, set) = keys();
        prop_assert!(verify(&token, &set, &expect(), NOW).is_err());
    }

    #[test]
    fn three_base64_segments_are_refused_without_a_panic(
        a in "[A-Za-z0-9_-]{0,200}", b in "[A-Za-z0-9_-]{0,400}", c in "[A-Za-z0-9_-]{0,100}",
    ) {
        let (_, set) = keys();
        let token = [a, b, c].join(".");
        prop_assert!(verify(&token, &set, &expect(), NOW).is_err());
    }

    #[test]
    fn a_signed_token_verifies_to_exactly_its_claims(
        sub in ".{0,60}", username in ".{0,40}", sid in ".{0,40}", scope in "[a-z: ]{0,60}",
        admin in any::<bool>(),
    ) {
        let (signer, set) = keys();
        let original = claims(sub, username, sid, scope, admin);
        let token = signer.sign(&original);
        let (verified, kid) = verify(&token, &set, &expect(), NOW).expect("verifies");
        prop_assert_eq!(verified, original);
        prop_assert_eq!(kid, "k1");
    }

    #[test]
    fn a_changed_token_never_verifies_to_other_claims(
        sub in "[a-z0-9-]{1,40}", at in any::<prop::sample::Index>(), with in "[A-Za-z0-9_.=-]",
    ) {
        let (signer, set) = keys();
        let original = claims(sub, "u".into(), "s".into(), "books:read".into(), false);
        let token = signer.sign(&original);
        let mut bytes = token.into_bytes();
        let i = at.index(bytes.len());
        bytes[i] = with.as_bytes()[0];
        let changed = String::from_utf8(bytes).expect("ascii");
        if let Ok((verified, _)) = verify(&changed, &set, &expect(), NOW) {
            // Only a change base64 decodes to the same bytes (a padding bit) can pass.
            prop_assert_eq!(verified, original);
        }
    }
}
