//! The forgery table: access tokens that must all be refused with UNAUTHENTICATED, built for
//! one server's real signing key so that each case differs from a valid token in exactly the
//! way its name says. Both services' tests run it.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use bookstore_contract::token::{encode_segment, Expectations};

/// What a forger knows: the server's key (to show that only the named flaw is refused), its
/// kid, the expected issuer and audience, and a real user id.
#[derive(Debug)]
pub struct Target<'a> {
    /// The server's real signing key.
    pub key: &'a SigningKey,
    /// Its kid.
    pub kid: &'a str,
    /// Issuer and audience the server expects.
    pub expect: &'a Expectations,
    /// A real user's id.
    pub sub: &'a str,
    /// Unix seconds now.
    pub now: i64,
}

impl Target<'_> {
    /// A header that the server accepts.
    pub fn header(&self) -> Value {
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": self.kid})
    }

    /// Claims that the server accepts.
    pub fn claims(&self) -> Value {
        json!({
            "iss": self.expect.issuer, "aud": self.expect.audience, "sub": self.sub,
            "username": "forger", "admin": true, "iat": self.now, "nbf": self.now,
            "exp": self.now + 600, "jti": "forged", "sid": "forged-session",
        })
    }

    /// `header.claims` signed with `key`.
    pub fn sign_with(&self, header: &Value, claims: &Value, key: &SigningKey) -> String {
        let input = format!("{}.{}", encode_segment(header), encode_segment(claims));
        let signature = key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    /// `header.claims` signed with the real key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_with(header, claims, self.key)
    }

    /// A token the server must accept: the control that proves the table tests something.
    pub fn valid(&self) -> String {
        self.sign(&self.header(), &self.claims())
    }

    /// `(case, authorization metadata value)` pairs; every one must be UNAUTHENTICATED.
    pub fn table(&self, valid_issued_token: &str, refresh_token: &str) -> Vec<(String, String)> {
        let mut cases: Vec<(String, String)> = Vec::new();
        let mut bearer = |name: &str, token: String| {
            cases.push((name.to_string(), format!("Bearer {token}")));
        };
        let claims = self.claims();
        let with_header = |f: &dyn Fn(&mut Value)| {
            let mut h = self.header();
            f(&mut h);
            h
        };
        let with_claims = |f: &dyn Fn(&mut Value)| {
            let mut c = self.claims();
            f(&mut c);
            c
        };

        for alg in ["none", "None", "NONE", "nOnE"] {
            let h = with_header(&|h| h["alg"] = json!(alg));
            let unsigned = format!("{}.{}.", encode_segment(&h), encode_segment(&claims));
            bearer(&format!("alg {alg} without signature"), unsigned.clone());
            bearer(
                &format!("alg {alg} with a signature"),
                self.sign(&h, &claims),
            );
        }

        // HS256 keyed with the public key, in raw and in JWK (base64url) form.
        let public = self.key.verifying_key();
        let h = with_header(&|h| h["alg"] = json!("HS256"));
        let input = format!("{}.{}", encode_segment(&h), encode_segment(&claims));
        let x = URL_SAFE_NO_PAD.encode(public.as_bytes());
        for (label, secret) in [
            ("raw", public.as_bytes().to_vec()),
            ("x", x.clone().into_bytes()),
        ] {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret).expect("any key length");
            mac.update(input.as_bytes());
            let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
            bearer(
                &format!("HS256 keyed with the public key ({label})"),
                format!("{input}.{sig}"),
            );
        }

        // A real token whose payload was changed after signing.
        let mut parts: Vec<&str> = valid_issued_token.split('.').collect();
        let tampered_claims = encode_segment(&with_claims(&|c| c["admin"] = json!(true)));
        if parts.len() == 3 {
            parts[1] = &tampered_claims;
        }
        bearer("tampered payload", parts.join("."));

        bearer(
            "typ JWT",
            self.sign(&with_header(&|h| h["typ"] = json!("JWT")), &claims),
        );
        bearer(
            "typ missing",
            self.sign(
                &with_header(&|h| {
                    h.as_object_mut().map(|o| o.remove("typ"));
                }),
                &claims,
            ),
        );
        bearer(
            "crit header",
            self.sign(&with_header(&|h| h["crit"] = json!(["exp"])), &claims),
        );
        bearer(
            "crit header null",
            self.sign(&with_header(&|h| h["crit"] = Value::Null), &claims),
        );
        bearer(
            "crit header empty",
            self.sign(&with_header(&|h| h["crit"] = json!([])), &claims),
        );
        bearer(
            "unknown kid",
            self.sign(&with_header(&|h| h["kid"] = json!("no-such-key")), &claims),
        );
        bearer(
            "kid with SQL injection",
            self.sign(
                &with_header(&|h| h["kid"] = json!("' OR '1'='1' --")),
                &claims,
            ),
        );
        bearer(
            "kid with path traversal",
            self.sign(
                &with_header(&|h| h["kid"] = json!("../../../../etc/passwd")),
                &claims,
            ),
        );
        bearer(
            "kid missing",
            self.sign(
                &with_header(&|h| {
                    h.as_object_mut().map(|o| o.remove("kid"));
                }),
                &claims,
            ),
        );

        let attacker = SigningKey::from_bytes(&[42; 32]);
        let ax = URL_SAFE_NO_PAD.encode(attacker.verifying_key().as_bytes());
        let embedded = with_header(&|h| {
            h["jwk"] = json!({"kty": "OKP", "crv": "Ed25519", "x": ax, "alg": "EdDSA"});
        });
        bearer(
            "embedded jwk of the attacker's key",
            self.sign_with(&embedded, &claims, &attacker),
        );
        bearer(
            "signed by another key under the real kid",
            self.sign_with(&self.header(), &claims, &attacker),
        );

        let header = self.header();
        bearer(
            "wrong iss",
            self.sign(&header, &with_claims(&|c| c["iss"] = json!("evil"))),
        );
        bearer(
            "wrong aud",
            self.sign(&header, &with_claims(&|c| c["aud"] = json!("evil"))),
        );
        bearer(
            "exp missing",
            self.sign(
                &header,
                &with_claims(&|c| {
                    c.as_object_mut().map(|o| o.remove("exp"));
                }),
            ),
        );
        bearer(
            "nbf missing",
            self.sign(
                &header,
                &with_claims(&|c| {
                    c.as_object_mut().map(|o| o.remove("nbf"));
                }),
            ),
        );
        let now = self.now;
        bearer(
            "expired",
            self.sign(&header, &with_claims(&|c| c["exp"] = json!(now - 120))),
        );
        bearer(
            "nbf in the future",
            self.sign(&header, &with_claims(&|c| c["nbf"] = json!(now + 120))),
        );
        bearer(
            "over 8 KiB (validly signed)",
            self.sign(
                &header,
                &with_claims(&|c| c["pad"] = json!("x".repeat(9000))),
            ),
        );
        bearer("refresh token as bearer", refresh_token.to_string());
        bearer("empty token", String::new());
        bearer("two segments", "abc.def".to_string());

        cases.push(("Basic scheme".into(), format!("Basic {}", self.valid())));
        cases.push(("Token scheme".into(), format!("Token {}", self.valid())));
        cases.push(("no scheme".into(), self.valid()));
        cases
    }
}
