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
}

/// Makes the CA and the server certificate unless they exist.
///
/// # Errors
/// Key generation or file system failures.
pub fn ensure(data_dir: &Path) -> Result<TlsFiles, String> {
    let dir = data_dir.join("tls");
    let files = TlsFiles { ca: dir.join("ca.pem"), cert: dir.join("server.pem"), key: dir.join("server-key.pem") };
    if files.ca.exists() && files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    crate::datadir::prepare_dir(&dir)?;
    let err = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name.push(DnType::CommonName, "enrollgraph local CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca_params.not_after = rcgen::date_time_ymd(2100, 1, 1);
    let ca = ca_params.self_signed(&ca_key).map_err(err)?;
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
    Ok(files)
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
