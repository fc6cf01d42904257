//! TLS with rustls: the gRPC listener's certificate (reloaded when its files change, without a
//! restart) and optional client-certificate requirement (mTLS).
//!
//! The listener accepts TCP connections itself and completes each TLS handshake with the
//! configuration current at that moment; a background task rereads the files every
//! [`RELOAD_INTERVAL`] when their modification time changed, and keeps the old configuration
//! (with a warning) if the new files are unusable. TLS 1.2 and 1.3 only, ALPN `h2`, then
//! `http/1.1` for gRPC-Web clients that speak only HTTP/1.1.

use std::{
    io,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use futures::{future::BoxFuture, stream::FuturesUnordered, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{
    rustls::{
        self,
        pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
        server::WebPkiClientVerifier,
        RootCertStore, ServerConfig,
    },
    server::TlsStream,
    TlsAcceptor,
};

use crate::connections::{Gate, Guarded};

/// How often the certificate files are checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);
/// Longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a listener's certificate, key and (for mTLS) client CA live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key of the leaf.
    pub key: PathBuf,
    /// PEM CA certificates a client certificate must chain to; `None`: no client certificate.
    pub client_ca: Option<PathBuf>,
}

/// Why a TLS configuration could not be built: always names the file or the mismatch.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM item.
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    /// The private key does not belong to the certificate.
    #[error("{} does not match the private key in {}", cert.display(), key.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    /// Anything else rustls refused.
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

fn file_error(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The certificates in the PEM file `path` (at least one).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    std::fs::metadata(path).map_err(|e| file_error(path, e))?;
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// The private key in the PEM file `path`.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    std::fs::metadata(path).map_err(|e| file_error(path, e))?;
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, e))
}

/// The rustls provider of this build (ring), installed once as the process default so that
/// every rustls user in the process agrees.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

impl ServerTls {
    /// Reads the files and builds the server configuration; every failure names its file.
    pub fn load(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let certs = read_certs(&self.cert)?;
        let key = read_key(&self.key)?;
        warn_if_expired(&self.cert, &certs[0]);
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in read_certs(ca)? {
                    roots.add(cert).map_err(|e| file_error(ca, e))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| file_error(ca, e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
                cert: self.cert.clone(),
                key: self.key.clone(),
            },
            other => file_error(&self.key, other),
        })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    fn modified(&self) -> Vec<Option<SystemTime>> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect()
    }
}

/// Logs a warning when the certificate in `path` has expired (or is not valid yet): the
/// service still starts, so an operator can replace the files without a restart.
fn warn_if_expired(path: &Path, cert: &CertificateDer<'_>) {
    if let Some(problem) = validity_problem(cert) {
        tracing::warn!(file = %path.display(), "{problem}: clients will refuse it");
    }
}

/// What is wrong with `cert`'s validity period now, if anything.
fn validity_problem(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let validity = parsed.validity();
    let now = x509_parser::time::ASN1Time::now();
    if validity.not_after < now {
        Some(format!("TLS certificate expired on {}", validity.not_after))
    } else if validity.not_before > now {
        Some(format!(
            "TLS certificate is not valid before {}",
            validity.not_before
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_valid(from: (i32, u8, u8), to: (i32, u8, u8)) -> CertificateDer<'static> {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").der().clone()
    }

    #[test]
    fn an_expired_certificate_is_reported_with_its_expiry_and_a_valid_one_is_not() {
        let expired = validity_problem(&cert_valid((2020, 1, 1), (2021, 1, 1)));
        assert!(
            expired
                .as_deref()
                .is_some_and(|p| p.contains("expired") && p.contains("2021")),
            "{expired:?}"
        );
        assert_eq!(
            validity_problem(&cert_valid((2020, 1, 1), (2300, 1, 1))),
            None
        );
    }

    #[test]
    fn missing_files_and_mismatched_keys_are_named() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = ServerTls {
            cert: dir.path().join("nope.pem"),
            key: dir.path().join("nope-key.pem"),
            client_ca: None,
        };
        let error = missing.load().expect_err("missing").to_string();
        assert!(error.contains("nope.pem"), "{error}");

        let write = |name: &str| {
            let key = rcgen::KeyPair::generate().expect("key");
            let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
                .expect("params")
                .self_signed(&key)
                .expect("cert");
            let (c, k) = (
                dir.path().join(format!("{name}.pem")),
                dir.path().join(format!("{name}-key.pem")),
            );
            std::fs::write(&c, cert.pem()).expect("cert");
            std::fs::write(&k, key.serialize_pem()).expect("key");
            (c, k)
        };
        let (one, _) = write("one");
        let (_, two_key) = write("two");
        let mismatched = ServerTls {
            cert: one,
            key: two_key,
            client_ca: None,
        };
        let error = mismatched.load().expect_err("mismatch").to_string();
        assert!(error.contains("does not match"), "{error}");
    }
}

/// The TLS side of a listener: the configuration in use, replaced when the files change.
#[derive(Debug, Clone)]
pub struct Acceptor {
    tls: ServerTls,
    current: Arc<RwLock<Arc<ServerConfig>>>,
    /// The files' modification times as they were read for `current` (taken before reading,
    /// so a change made while they were read is reloaded).
    loaded: Vec<Option<SystemTime>>,
}

impl Acceptor {
    /// Loads `tls` now (failing with the file's name), ready to accept.
    pub fn new(tls: ServerTls) -> Result<Self, TlsError> {
        let loaded = tls.modified();
        let config = tls.load()?;
        Ok(Acceptor {
            tls,
            current: Arc::new(RwLock::new(config)),
            loaded,
        })
    }

    /// Rereads the files whenever they change, forever (a task of the application). A reload
    /// that failed (a half-written file, a certificate written before its key) is tried again
    /// at every check until it succeeds, not only after the files change again; its warning
    /// is logged once per change.
    pub async fn reload_on_change(self) {
        let mut loaded = self.loaded.clone();
        let mut warned = None;
        loop {
            tokio::time::sleep(RELOAD_INTERVAL).await;
            let now = self.tls.modified();
            if now == loaded {
                continue;
            }
            match self.tls.load() {
                Ok(config) => {
                    *self.current.write().unwrap_or_else(|p| p.into_inner()) = config;
                    tracing::info!(cert = %self.tls.cert.display(), "TLS certificate reloaded");
                    (loaded, warned) = (now, None);
                }
                Err(e) if warned.as_ref() != Some(&now) => {
                    tracing::warn!(error = %e, "new TLS files are unusable; keeping the previous certificate and trying again");
                    warned = Some(now);
                }
                Err(_) => {}
            }
        }
    }

    /// TLS connections accepted on `listener`, each set up like the plaintext ones (no delay,
    /// TCP keepalive) and handshaken with the configuration current at that moment. Failed
    /// handshakes (a plaintext client, a missing client certificate) are logged and dropped.
    pub fn incoming(
        &self,
        listener: TcpListener,
        keepalive: Duration,
        gate: Gate,
    ) -> impl futures::Stream<Item = io::Result<Guarded<TlsStream<TcpStream>>>> + Send + 'static
    {
        // A stream the server owns (not a task), with the handshakes in flight inside it: when
        // the server stops, or is aborted as `waiting`'s stand-in is, the listener is closed at
        // once and the real server can bind the same address right after.
        type Handshake = BoxFuture<'static, Option<Guarded<TlsStream<TcpStream>>>>;
        let state = (
            listener,
            gate,
            self.current.clone(),
            FuturesUnordered::<Handshake>::new(),
        );
        futures::stream::unfold(
            state,
            move |(listener, gate, current, mut handshakes)| async move {
                loop {
                    tokio::select! {
                        (tcp, peer) = crate::connections::accept(&listener) => {
                            // The place is taken before the handshake: it holds a descriptor too.
                            let Some(place) = gate.place() else {
                                continue; // dropped: closed at once
                            };
                            crate::connections::tune(&tcp, keepalive);
                            let config = current.read().unwrap_or_else(|p| p.into_inner()).clone();
                            handshakes.push(Box::pin(async move {
                                let handshake = TlsAcceptor::from(config).accept(tcp);
                                match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                                    Ok(Ok(stream)) => Some(place.guard(stream)),
                                    Ok(Err(e)) => {
                                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                        None
                                    }
                                    Err(_) => {
                                        tracing::debug!(%peer, "TLS handshake timed out");
                                        None
                                    }
                                }
                            }));
                        }
                        Some(done) = handshakes.next(), if !handshakes.is_empty() => {
                            if let Some(stream) = done {
                                return Some((Ok(stream), (listener, gate, current, handshakes)));
                            }
                        }
                    }
                }
            },
        )
    }
}
