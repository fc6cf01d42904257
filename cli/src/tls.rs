//! `bookstore up --tls`: a local certificate authority and a certificate for localhost and
//! 127.0.0.1, made with rcgen under `DATA_DIR/tls/` on first use and kept across runs.
//!
//! Nothing is ever overwritten: when some of the files exist but not all, `up --tls` stops and
//! says which are missing, so a CA that clients already trust is never silently replaced.

use std::{
    fs,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// The files of the local TLS setup.
#[derive(Debug, Clone)]
pub struct LocalCerts {
    /// The CA certificate clients trust (`grpcurl -cacert`, `--ca-cert`).
    pub ca: PathBuf,
    /// The CA's private key (kept to allow issuing again; mode 0600).
    pub ca_key: PathBuf,
    /// The services' certificate (localhost, 127.0.0.1), signed by the CA.
    pub cert: PathBuf,
    /// Its private key (mode 0600).
    pub key: PathBuf,
}

impl LocalCerts {
    fn in_dir(dir: &Path) -> Self {
        LocalCerts {
            ca: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server-key.pem"),
        }
    }

    fn files(&self) -> [&PathBuf; 4] {
        [&self.ca, &self.ca_key, &self.cert, &self.key]
    }
}

/// The certificates under `data_dir/tls/`, made now if none exist.
pub fn ensure(data_dir: &Path) -> anyhow::Result<LocalCerts> {
    let dir = data_dir.join("tls");
    let certs = LocalCerts::in_dir(&dir);
    let present: Vec<_> = certs.files().into_iter().filter(|f| f.exists()).collect();
    if present.len() == 4 {
        return Ok(certs);
    }
    if !present.is_empty() {
        let missing: Vec<String> = certs
            .files()
            .into_iter()
            .filter(|f| !f.exists())
            .map(|f| f.display().to_string())
            .collect();
        bail!(
            "{} is incomplete (missing {}); not replacing the certificates that are there: \
             remove the directory to make new ones",
            dir.display(),
            missing.join(", ")
        );
    }
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;

    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Bookstore local CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca = ca_params.self_signed(&ca_key)?;

    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "Bookstore (localhost)");
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca, &ca_key)?;

    write_new(&certs.ca, &ca.pem(), 0o644)?;
    write_new(&certs.ca_key, &ca_key.serialize_pem(), 0o600)?;
    write_new(&certs.cert, &cert.pem(), 0o644)?;
    write_new(&certs.key, &key.serialize_pem(), 0o600)?;
    Ok(certs)
}

/// Writes `text` to a file that must not exist yet.
fn write_new(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
