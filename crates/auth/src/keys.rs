//! RS256 signing keys: generation, persistence, rotation, and their JWKS document.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SecureRandom as _;
use ring::signature::{RsaKeyPair, RsaPublicKeyComponents};
use serde::{Deserialize, Serialize};

use crate::AuthError;

/// The longest lifetime, in seconds, that [`crate::Issuer`] gives a token: one day, the
/// upper bound of a configurable token lifetime in Microsoft Entra ID ("Configurable token
/// lifetimes in the Microsoft identity platform": access tokens 10 minutes to 1 day).
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 86_400;

/// The largest clock skew, in seconds, that a [`crate::Validator`] allows on `exp` and
/// `nbf` (5 minutes, the default `ClockSkew` of Microsoft.IdentityModel's token validation).
pub const MAX_LEEWAY_SECS: i64 = 300;

/// How long a retired key is kept to verify the tokens it signed: the longest token
/// lifetime plus the largest clock skew. After that every token it signed is expired.
pub const RETIRED_KEY_RETENTION_SECS: i64 = MAX_TOKEN_LIFETIME_SECS + MAX_LEEWAY_SECS;

/// RSA modulus size in bits (RS256 needs at least 2048: RFC 7518 §3.3).
const RSA_BITS: usize = 2048;

/// The parsed key: kept parsed so that signing does not parse PEM/DER.
pub(crate) struct KeyMaterial {
    pub(crate) kid: String,
    pub(crate) pem: String,
    pub(crate) pair: RsaKeyPair,
    /// Public modulus, big-endian, no leading zeros.
    pub(crate) n: Vec<u8>,
    /// Public exponent, big-endian, no leading zeros.
    pub(crate) e: Vec<u8>,
}

#[derive(Clone)]
struct Slot {
    key: Arc<KeyMaterial>,
    created_at: i64,
    retired_at: Option<i64>,
}

/// A set of RS256 signing keys: one current key that signs, and older (retired) keys kept
/// only to verify the tokens they signed until those expire ("Signing key rollover in the
/// Microsoft identity platform": several keys are published in the JWKS at once, and the
/// token header's `kid` says which one signed it).
///
/// Cloning is cheap (the parsed keys are shared). `Debug` shows the key ids only.
#[derive(Clone)]
pub struct KeySet {
    /// `slots[0]` is the current key; the rest are retired, newest first.
    slots: Vec<Slot>,
}

/// The persisted form of a [`KeySet`] (see [`KeySet::to_json`]).
#[derive(Serialize, Deserialize)]
struct StoredKeySet {
    version: u32,
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    /// PKCS#8 PEM (RFC 5208 / RFC 7468 "PRIVATE KEY").
    private_key_pem: String,
    created_at: i64,
    retired_at: Option<i64>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.slots.iter().map(|s| s.key.kid.as_str()).collect();
        f.debug_struct("KeySet").field("kids", &kids).finish()
    }
}

/// A random key id in the style of Entra's (`"KQ2tAcrE7lBaVVGBmc5FobgdJo4"`: 27 base64url
/// characters, 20 bytes).
fn random_kid() -> Result<String, AuthError> {
    let mut bytes = [0u8; 20];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AuthError::Crypto("random number generator failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Extracts the DER bytes from a PEM document with the given label (RFC 7468 §2).
pub(crate) fn pem_to_der(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let body: String = pem[start..stop].chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(body).ok()
}

impl KeyMaterial {
    fn from_pem(kid: String, pem: String) -> Result<KeyMaterial, AuthError> {
        let pair = if let Some(der) = pem_to_der(&pem, "PRIVATE KEY") {
            RsaKeyPair::from_pkcs8(&der)
        } else if let Some(der) = pem_to_der(&pem, "RSA PRIVATE KEY") {
            RsaKeyPair::from_der(&der)
        } else {
            return Err(AuthError::InvalidKeySet(format!("key {kid}: not a PKCS#8 PEM private key")));
        }
        .map_err(|e| AuthError::InvalidKeySet(format!("key {kid}: {e}")))?;
        let public: RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
        Ok(KeyMaterial { kid, pem, pair, n: public.n, e: public.e })
    }

    fn generate() -> Result<KeyMaterial, AuthError> {
        use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
            .map_err(|e| AuthError::Crypto(format!("RSA key generation: {e}")))?;
        let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| AuthError::Crypto(format!("PKCS#8 encoding: {e}")))?;
        KeyMaterial::from_pem(random_kid()?, pem.to_string())
    }

    /// The RFC 7517 §4 / RFC 7518 §6.3.1 public JWK of this key.
    fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&self.n),
            "e": URL_SAFE_NO_PAD.encode(&self.e),
            "alg": "RS256",
        })
    }
}

impl KeySet {
    /// A key set with no key: it signs nothing and verifies nothing. A server on a new
    /// data dir starts with it and answers at once while its first key is made (an
    /// RSA-2048 prime search takes 0.2–0.9 s: docs/performance.md, thirteenth round).
    #[must_use]
    pub fn empty() -> KeySet {
        KeySet { slots: Vec::new() }
    }

    /// Whether the set holds no key ([`KeySet::empty`]).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// A key set with one new RSA-2048 key (RFC 7518 §3.3: RS256 needs ≥ 2048 bits) and a
    /// random `kid`, created at the current system time.
    pub fn generate() -> Result<KeySet, AuthError> {
        KeySet::generate_at(unix_now())
    }

    /// Like [`KeySet::generate`], with the creation time given (unix seconds).
    pub fn generate_at(now: i64) -> Result<KeySet, AuthError> {
        Ok(KeySet { slots: vec![Slot { key: Arc::new(KeyMaterial::generate()?), created_at: now, retired_at: None }] })
    }

    /// The persisted form: `{"version":1,"keys":[{"kid","private_key_pem","created_at",
    /// "retired_at"}]}`, current key first, times in unix seconds, private keys as PKCS#8
    /// PEM (RFC 5208, RFC 7468 §10). It holds private keys: store it with owner-only
    /// permissions.
    pub fn to_json(&self) -> String {
        let stored = StoredKeySet {
            version: 1,
            keys: self
                .slots
                .iter()
                .map(|s| StoredKey {
                    kid: s.key.kid.clone(),
                    private_key_pem: s.key.pem.clone(),
                    created_at: s.created_at,
                    retired_at: s.retired_at,
                })
                .collect(),
        };
        // Serialising plain strings and integers cannot fail.
        serde_json::to_string_pretty(&stored).unwrap_or_default()
    }

    /// Reads the form written by [`KeySet::to_json`]. Exactly one key must be current
    /// (`retired_at: null`); key ids must be unique. PKCS#1 PEM (`RSA PRIVATE KEY`) is also
    /// accepted.
    pub fn from_json(s: &str) -> Result<KeySet, AuthError> {
        let stored: StoredKeySet = serde_json::from_str(s).map_err(|e| AuthError::InvalidKeySet(e.to_string()))?;
        if stored.version != 1 {
            return Err(AuthError::InvalidKeySet(format!("unsupported version {}", stored.version)));
        }
        let mut current = Vec::new();
        let mut retired = Vec::new();
        for k in stored.keys {
            if k.kid.is_empty() {
                return Err(AuthError::InvalidKeySet("empty kid".into()));
            }
            let slot = Slot {
                key: Arc::new(KeyMaterial::from_pem(k.kid, k.private_key_pem)?),
                created_at: k.created_at,
                retired_at: k.retired_at,
            };
            if slot.retired_at.is_none() {
                current.push(slot);
            } else {
                retired.push(slot);
            }
        }
        if current.len() != 1 {
            return Err(AuthError::InvalidKeySet(format!("expected exactly one current key, found {}", current.len())));
        }
        retired.sort_by_key(|s| std::cmp::Reverse(s.retired_at));
        current.extend(retired);
        let set = KeySet { slots: current };
        let mut kids: Vec<&str> = set.slots.iter().map(|s| s.key.kid.as_str()).collect();
        kids.sort_unstable();
        if kids.windows(2).any(|w| w[0] == w[1]) {
            return Err(AuthError::InvalidKeySet("duplicate kid".into()));
        }
        Ok(set)
    }

    /// Makes a new current key (created at `now`); the previous current key is retired at
    /// `now` and kept for verification for [`RETIRED_KEY_RETENTION_SECS`], then dropped
    /// (this call also prunes, see [`KeySet::prune`]). Only key generation can fail.
    pub fn rotate(&mut self, now: i64) -> Result<(), AuthError> {
        let key = Arc::new(KeyMaterial::generate()?);
        if let Some(old) = self.slots.first_mut() {
            old.retired_at = Some(now);
        }
        self.slots.insert(0, Slot { key, created_at: now, retired_at: None });
        self.prune(now);
        Ok(())
    }

    /// Drops retired keys whose retirement is more than [`RETIRED_KEY_RETENTION_SECS`]
    /// before `now`: no token they signed can still be valid. Returns how many were dropped.
    pub fn prune(&mut self, now: i64) -> usize {
        let before = self.slots.len();
        self.slots.retain(|s| match s.retired_at {
            None => true,
            Some(at) => now <= at.saturating_add(RETIRED_KEY_RETENTION_SECS),
        });
        before - self.slots.len()
    }

    /// The JSON Web Key Set (RFC 7517 §5) of every key that verifies tokens, current first:
    /// `{"keys":[{"kty":"RSA","use":"sig","kid","n","e","alg":"RS256"}]}` (RFC 7518 §6.3.1),
    /// as Entra serves at `/{tenant}/discovery/v2.0/keys`. Public parts only.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": self.slots.iter().map(|s| s.key.jwk()).collect::<Vec<_>>()
        })
    }

    /// The `kid` (RFC 7515 §4.1.4) of the key that signs new tokens.
    pub fn current_kid(&self) -> &str {
        self.slots.first().map(|s| s.key.kid.as_str()).unwrap_or("")
    }

    /// The `kid`s of all keys that verify tokens, current first.
    pub fn kids(&self) -> Vec<&str> {
        self.slots.iter().map(|s| s.key.kid.as_str()).collect()
    }

    /// When the current key was created (unix seconds); lets a caller rotate on a schedule.
    pub fn current_created_at(&self) -> i64 {
        self.slots.first().map(|s| s.created_at).unwrap_or(0)
    }

    pub(crate) fn current(&self) -> Option<&Arc<KeyMaterial>> {
        self.slots.first().map(|s| &s.key)
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<KeyMaterial>> {
        self.slots.iter().map(|s| &s.key)
    }
}

/// The current system time in unix seconds.
pub(crate) fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
