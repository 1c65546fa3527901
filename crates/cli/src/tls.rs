//! `serve --tls`: a local certificate authority and a server certificate for `localhost`,
//! `127.0.0.1` and `::1`, made once and kept in the data dir, so that clients which insist
//! on HTTPS (MSAL, azure-identity, the JS Graph client: clients.md §2b, §3) can trust the
//! CA file once and keep it.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};

/// The files of the local CA and the server certificate.
pub struct TlsFiles {
    /// The CA certificate to trust (`REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE`, `NODE_EXTRA_CA_CERTS`).
    pub ca: PathBuf,
    /// The server certificate chain (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// The CA's private key (PEM, mode 0600): `serve --proxy` signs its leaf certificates
    /// for the intercepted hosts with it (proxy.rs), so one CA is trusted for both.
    pub ca_key: PathBuf,
}

/// Makes the CA and the server certificate unless they exist.
///
/// # Errors
/// Key generation or file system failures.
pub fn ensure(data_dir: &Path) -> Result<TlsFiles, String> {
    let dir = data_dir.join("tls");
    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
        ca_key: dir.join("ca-key.pem"),
    };
    // A data dir from before the proxy has no CA key: the CA is made anew (clients trust
    // the new `ca.pem` once more), as a CA whose key is lost cannot sign leaves.
    if files.ca.exists() && files.cert.exists() && files.key.exists() && files.ca_key.exists() {
        return Ok(files);
    }
    crate::datadir::prepare_dir(&dir)?;
    let err = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca = ca_params().self_signed(&ca_key).map_err(err)?;
    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).map_err(err)?;
    params.subject_alt_names.push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    params.subject_alt_names.push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.not_after = rcgen::date_time_ymd(2100, 1, 1);
    let cert = params.signed_by(&key, &ca, &ca_key).map_err(err)?;
    // Private like the rest of the data dir (issue 18 item 4): the key above all.
    let write = |p: &Path, text: String| crate::datadir::write_private(p, &text);
    write(&files.key, key.serialize_pem())?;
    write(&files.cert, format!("{}{}", cert.pem(), ca.pem()))?;
    write(&files.ca, ca.pem())?;
    write(&files.ca_key, ca_key.serialize_pem())?;
    Ok(files)
}

/// The local CA's certificate parameters. Made again from the same key they give the same
/// subject and key identifier, so leaves signed later chain to the `ca.pem` clients trust.
fn ca_params() -> CertificateParams {
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name.push(DnType::CommonName, "enrollgraph local CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca_params.not_after = rcgen::date_time_ymd(2100, 1, 1);
    ca_params
}

/// The local CA, able to sign leaf certificates.
pub struct Authority {
    cert: rcgen::Certificate,
    key: KeyPair,
    /// The CA certificate as clients received it (`ca.pem`), sent after each leaf.
    der: rustls::pki_types::CertificateDer<'static>,
}

impl Authority {
    /// Loads the CA of `files`.
    ///
    /// # Errors
    /// Unreadable or unusable files.
    pub fn load(files: &TlsFiles) -> Result<Authority, String> {
        use rustls::pki_types::pem::PemObject;
        let bad = |p: &Path, e: &dyn std::fmt::Display| format!("cannot load the local CA {}: {e}", p.display());
        let pem = std::fs::read_to_string(&files.ca_key).map_err(|e| bad(&files.ca_key, &e))?;
        let key = KeyPair::from_pem(&pem).map_err(|e| bad(&files.ca_key, &e))?;
        let cert = ca_params().self_signed(&key).map_err(|e| bad(&files.ca_key, &e))?;
        let der = rustls::pki_types::CertificateDer::from_pem_file(&files.ca).map_err(|e| bad(&files.ca, &e))?;
        Ok(Authority { cert, key, der })
    }

    /// A new leaf certificate for `host`, valid from a day ago for a year (clients that
    /// bound a leaf's lifetime, such as Apple's, accept at most 398 days), with a new key.
    ///
    /// # Errors
    /// Key generation or signing failed, or `host` is no DNS name.
    pub fn leaf(&self, host: &str) -> Result<rustls::sign::CertifiedKey, String> {
        let err = |e: rcgen::Error| e.to_string();
        let key = KeyPair::generate().map_err(err)?;
        let mut params = CertificateParams::new(vec![host.to_owned()]).map_err(err)?;
        params.distinguished_name.push(DnType::CommonName, host);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(365);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.cert, &self.key).map_err(err)?;
        let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let signer = rustls::crypto::ring::sign::any_supported_type(&private).map_err(|e| e.to_string())?;
        Ok(rustls::sign::CertifiedKey::new(vec![cert.der().clone(), self.der.clone()], signer))
    }
}

/// The rustls configuration of `files`, offering HTTP/2 and HTTP/1.1 (ALPN).
///
/// # Errors
/// Unreadable or unusable certificate or key files.
pub fn server_config(files: &TlsFiles) -> Result<std::sync::Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bad = |p: &Path, e: &dyn std::fmt::Display| format!("cannot load the TLS certificate {}: {e}", p.display());
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| bad(&files.cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&files.cert, &e))?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| bad(&files.key, &e))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad(&files.cert, &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(std::sync::Arc::new(config))
}
