//! Certificate credentials: an app's public certificates, and the RFC 7523 client
//! assertion (`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`)
//! an app signs with the private key of one of them, as the Microsoft identity platform
//! checks it ("Microsoft identity platform application authentication certificate
//! credentials": header `alg` RS256 or PS256, `typ` JWT, `x5t` or `x5t#S256` naming the
//! certificate; claims `aud` the token endpoint, `iss` = `sub` = the client id, `exp`,
//! `nbf`, `jti`).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use x509_cert::der::{Decode as _, Encode as _};

use crate::TokenError;

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest client assertion accepted (a certificate-signed assertion with an `x5c`
/// chain is a few KiB); a longer one is refused before it is decoded.
pub const MAX_ASSERTION_BYTES: usize = 16 * 1024;

/// How far an assertion's `exp`/`nbf` may be off the server's clock (Entra allows about
/// five minutes of skew).
const CLOCK_SKEW_SECS: i64 = 300;

/// rsaEncryption (RFC 8017 A.1).
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// A public certificate an app may sign client assertions with (Entra's `keyCredential`).
/// Only the certificate is kept, never a private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientCertificate {
    /// A random id (Entra's `keyId`).
    pub key_id: String,
    /// SHA-1 of the DER certificate, upper-case hex (Entra's `customKeyIdentifier`, the
    /// thumbprint `Connect-MgGraph -CertificateThumbprint` names).
    pub thumbprint: String,
    /// SHA-1 of the DER, base64url (the JWT `x5t` header).
    pub x5t: String,
    /// SHA-256 of the DER, base64url (the JWT `x5t#S256` header).
    pub x5t_s256: String,
    /// The DER certificate, base64.
    pub der: String,
    /// Start of validity, unix seconds.
    pub not_before: i64,
    /// End of validity, unix seconds.
    pub not_after: i64,
}

/// Why a certificate is not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The PEM holds a private key: only the public certificate belongs to the server.
    #[error(
        "The PEM holds a private key ({0}); give the public certificate only. enrollgraph never stores private keys."
    )]
    PrivateKey(String),
    /// No `CERTIFICATE` block, or one that does not decode.
    #[error("Not a PEM X.509 certificate: {0}")]
    Malformed(String),
    /// Not an RSA key (Entra's assertions are RS256/PS256).
    #[error("The certificate's key is not an RSA key; client assertions are signed with RS256 or PS256.")]
    NotRsa,
    /// Its validity ended already.
    #[error("The certificate expired on {0} (unix seconds); upload a valid certificate.")]
    Expired(i64),
}

impl ClientCertificate {
    /// Reads a PEM document holding one X.509 certificate. A document with any private key
    /// block is refused, whatever else it holds.
    ///
    /// # Errors
    /// See [`CertificateError`].
    pub fn from_pem(pem: &str, now: i64) -> Result<ClientCertificate, CertificateError> {
        for line in pem.lines() {
            let line = line.trim();
            if let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----"))
                && label.contains("PRIVATE KEY")
            {
                return Err(CertificateError::PrivateKey(label.to_owned()));
            }
        }
        let der = crate::keys::pem_to_der(pem, "CERTIFICATE")
            .ok_or_else(|| CertificateError::Malformed("no CERTIFICATE block".into()))?;
        ClientCertificate::from_der(&der, now)
    }

    /// Reads a DER certificate.
    ///
    /// # Errors
    /// See [`CertificateError`].
    pub fn from_der(der: &[u8], now: i64) -> Result<ClientCertificate, CertificateError> {
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| CertificateError::Malformed(e.to_string()))?;
        let tbs = &cert.tbs_certificate;
        if tbs.subject_public_key_info.algorithm.oid.to_string() != RSA_ENCRYPTION {
            return Err(CertificateError::NotRsa);
        }
        let secs = |t: x509_cert::time::Time| i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
        let (not_before, not_after) = (secs(tbs.validity.not_before), secs(tbs.validity.not_after));
        if not_after < now {
            return Err(CertificateError::Expired(not_after));
        }
        // Re-encode what was parsed, so trailing bytes after the certificate are not kept.
        let der = cert.to_der().map_err(|e| CertificateError::Malformed(e.to_string()))?;
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
        let sha256 = ring::digest::digest(&ring::digest::SHA256, &der);
        Ok(ClientCertificate {
            key_id: uuid::Uuid::new_v4().to_string(),
            thumbprint: sha1.as_ref().iter().map(|b| format!("{b:02X}")).collect(),
            x5t: URL_SAFE_NO_PAD.encode(sha1),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha256),
            der: STANDARD.encode(&der),
            not_before,
            not_after,
        })
    }

    /// The RSA public key (PKCS#1 `RSAPublicKey`, what ring verifies with).
    fn public_key(&self) -> Option<Vec<u8>> {
        let der = STANDARD.decode(&self.der).ok()?;
        let cert = x509_cert::Certificate::from_der(&der).ok()?;
        cert.tbs_certificate.subject_public_key_info.subject_public_key.as_bytes().map(<[u8]>::to_vec)
    }
}

/// A client assertion that passed every check: what the replay cache must remember.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The `jti`.
    pub jti: String,
    /// The `exp`: the `jti` need not be remembered past it.
    pub expires: i64,
    /// The certificate that signed it.
    pub thumbprint: String,
    /// What the replay cache keys on: SHA-256 of the client id and the `jti`, hex (a
    /// fixed-size key whatever the client sent).
    pub replay_key: String,
}

/// AADSTS50027, Entra's answer to a token that is not a well-formed JWT.
fn malformed(why: &str) -> TokenError {
    TokenError::new("invalid_request", 50_027, format!("JWT token is invalid or malformed: {why}."))
}

/// AADSTS700027, Entra's answer to an assertion whose certificate is not the app's, or
/// whose signature does not verify with it.
fn signature_failed(reason: &str, presented: &str, client_id: &str) -> TokenError {
    TokenError::new(
        "invalid_client",
        700_027,
        format!(
            "Client assertion failed signature validation. [Reason - {reason}, Thumbprint of key used by client: '{presented}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"
        ),
    )
}

/// Checks a client assertion for `client_id` against the app's certificates: structure
/// and size, header (`alg` RS256/PS256 only: never `none` or an HMAC keyed with public
/// material; `x5t` or `x5t#S256` naming one of `certs`), signature, `iss` = `sub` =
/// `client_id`, `aud` one of `audiences`, `exp`/`nbf` around `now`, the certificate's own
/// validity, and a `jti`. Whether the `jti` was seen before is the caller's (the replay
/// cache spans replicas).
///
/// Codes (Entra's): 50027 malformed, 700027 certificate or signature, 700021 `iss`/`sub`,
/// 700023 audience, 700024 time range.
///
/// # Errors
/// The token endpoint's answer.
pub fn verify_client_assertion(
    assertion: &str,
    client_id: &str,
    certs: &[ClientCertificate],
    audiences: &[String],
    now: i64,
) -> Result<VerifiedAssertion, TokenError> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(malformed(&format!("the assertion is longer than {MAX_ASSERTION_BYTES} bytes")));
    }
    let mut parts = assertion.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed("a JWS compact serialization has three parts"));
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok();
    let header: Value = decode(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(Value::is_object)
        .ok_or_else(|| malformed("the header is not base64url JSON"))?;
    let claims: Value = decode(p)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(Value::is_object)
        .ok_or_else(|| malformed("the payload is not base64url JSON"))?;
    let signature = decode(s).ok_or_else(|| malformed("the signature is not base64url"))?;
    // MSAL Python and azure-identity pad their thumbprints (`…=`), which Entra accepts:
    // compared without the padding.
    let hs = |k: &str| header.get(k).and_then(Value::as_str);
    let thumb = |k: &str| hs(k).map(|t| t.trim_end_matches('='));
    let presented = hs("x5t#S256").or_else(|| hs("x5t")).unwrap_or("");
    let cert = certs
        .iter()
        .find(|c| thumb("x5t#S256").is_some_and(|t| t == c.x5t_s256) || thumb("x5t").is_some_and(|t| t == c.x5t))
        .ok_or_else(|| signature_failed("The key was not found.", presented, client_id))?;
    let alg: &'static dyn ring::signature::VerificationAlgorithm = match hs("alg") {
        Some("RS256") => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        Some("PS256") => &ring::signature::RSA_PSS_2048_8192_SHA256,
        // `none`, HS256 keyed with the certificate, anything else: never verified.
        _ => return Err(signature_failed("The signing algorithm is not supported.", presented, client_id)),
    };
    let public = cert.public_key().ok_or_else(|| signature_failed("The key was not found.", presented, client_id))?;
    let signed = &assertion[..h.len() + 1 + p.len()];
    ring::signature::UnparsedPublicKey::new(alg, public)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| signature_failed("The signature does not match the key.", presented, client_id))?;
    let cs = |k: &str| claims.get(k).and_then(Value::as_str);
    if cs("iss") != Some(client_id) || cs("sub") != Some(client_id) {
        return Err(TokenError::new(
            "invalid_client",
            700_021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .",
        ));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => audiences.iter().any(|x| x.eq_ignore_ascii_case(a)),
        Some(Value::Array(list)) => {
            list.iter().filter_map(Value::as_str).any(|a| audiences.iter().any(|x| x.eq_ignore_ascii_case(a)))
        }
        _ => false,
    };
    if !aud_ok {
        return Err(TokenError::new(
            "invalid_client",
            700_023,
            "Client assertion audience claim does not match Realm issuer. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .",
        ));
    }
    // MSAL Python writes `exp`/`nbf` as fractional seconds (`time.time() + 600`).
    #[allow(clippy::cast_possible_truncation)]
    let num = |k: &str| claims.get(k).and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)));
    let exp = num("exp").ok_or_else(|| malformed("the claim 'exp' is missing"))?;
    let nbf = num("nbf").unwrap_or(i64::MIN);
    // Saturating: both numbers are the client's (an `exp` near `i64::MAX`, no `nbf`).
    if exp.saturating_add(CLOCK_SKEW_SECS) < now || nbf.saturating_sub(CLOCK_SKEW_SECS) > now {
        return Err(TokenError::new(
            "invalid_client",
            700_024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .",
                crate::oauth::format_timestamp(now),
                if nbf == i64::MIN { "-".to_owned() } else { crate::oauth::format_timestamp(nbf) },
                crate::oauth::format_timestamp(exp)
            ),
        ));
    }
    if cert.not_after < now || cert.not_before > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(signature_failed(
            &format!(
                "The key used is expired or not yet valid (valid {} to {})",
                crate::oauth::format_timestamp(cert.not_before),
                crate::oauth::format_timestamp(cert.not_after)
            ),
            presented,
            client_id,
        ));
    }
    let jti = cs("jti").filter(|j| !j.is_empty()).ok_or_else(|| malformed("the claim 'jti' is missing"))?;
    let digest =
        ring::digest::digest(&ring::digest::SHA256, format!("{}\n{jti}", client_id.to_ascii_lowercase()).as_bytes());
    Ok(VerifiedAssertion {
        jti: jti.to_owned(),
        expires: exp.saturating_add(CLOCK_SKEW_SECS),
        thumbprint: cert.thumbprint.clone(),
        replay_key: digest.as_ref().iter().map(|b| format!("{b:02x}")).collect(),
    })
}

/// The answer to a `jti` seen before. Entra's certificate-credentials page says the `jti`
/// must not be reused and documents no code of its own for it; this is Entra's generic
/// invalid-assertion code, AADSTS50013.
#[must_use]
pub fn replayed_assertion() -> TokenError {
    TokenError::new(
        "invalid_client",
        50_013,
        "Assertion is invalid: the client assertion's 'jti' was already used. Sign a new assertion with a fresh 'jti' for every request.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pem_with_a_private_key_is_refused_whatever_else_it_holds() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(ClientCertificate::from_pem(pem, 0), Err(CertificateError::PrivateKey("PRIVATE KEY".into())));
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert!(matches!(ClientCertificate::from_pem(pem, 0), Err(CertificateError::PrivateKey(_))));
    }

    #[test]
    fn a_huge_or_malformed_assertion_is_refused_before_any_work() {
        let huge = "a".repeat(MAX_ASSERTION_BYTES + 1);
        assert_eq!(verify_client_assertion(&huge, "c", &[], &[], 0).map_err(|e| e.code), Err(50_027));
        assert_eq!(verify_client_assertion("a.b", "c", &[], &[], 0).map_err(|e| e.code), Err(50_027));
        assert_eq!(verify_client_assertion("a.b.c.d", "c", &[], &[], 0).map_err(|e| e.code), Err(50_027));
    }
}
