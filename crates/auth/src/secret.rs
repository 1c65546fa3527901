//! Client secrets: generation, hashing, verification.

use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ring::rand::SecureRandom as _;

/// PBKDF2 iteration count used by [`hash_secret`]. Client secrets made by
/// [`generate_secret`] carry about 200 bits of entropy, so the KDF only has to slow down
/// guessing of weak, human-chosen secrets; 100,000 rounds of HMAC-SHA256 (≈ 30–50 ms)
/// keeps the token endpoint cheap. [`verify_secret`] reads the count from the hash, so it
/// can be raised later without invalidating stored hashes.
pub const PBKDF2_ITERATIONS: u32 = 100_000;

/// Largest iteration count [`verify_secret`] accepts from a stored hash, and the most a
/// restored snapshot may carry (issue 18 item 9): twice the most this crate ever writes.
/// A hash of 10,000,000 rounds costs seconds of CPU per sign-in attempt, which an
/// unauthenticated caller could then ask for at will.
pub const MAX_ITERATIONS: u32 = 2 * PBKDF2_ITERATIONS;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
const PHC_ID: &str = "pbkdf2-sha256";

/// Hashes a client secret with PBKDF2-HMAC-SHA256 (RFC 8018 §5.2, NIST SP 800-132), a
/// random 16-byte salt and [`PBKDF2_ITERATIONS`], as a self-describing PHC string
/// (PHC string format, as the RustCrypto `pbkdf2`/`password-hash` crates write it):
/// `$pbkdf2-sha256$i=100000,l=32$<salt>$<hash>`, salt and hash in unpadded standard
/// base64. Two hashes of the same secret differ (different salts).
pub fn hash_secret(secret: &str) -> String {
    let mut salt = [0u8; SALT_LEN];
    fill_random(&mut salt);
    hash_with(secret, &salt, PBKDF2_ITERATIONS)
}

fn hash_with(secret: &str, salt: &[u8], iterations: u32) -> String {
    let mut out = [0u8; HASH_LEN];
    let rounds = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA256, rounds, salt, secret.as_bytes(), &mut out);
    format!("${PHC_ID}$i={iterations},l={HASH_LEN}${}${}", STANDARD_NO_PAD.encode(salt), STANDARD_NO_PAD.encode(out))
}

/// The iteration count of a hash made by [`hash_secret`] (`None` when it is not one).
#[must_use]
pub fn hash_iterations(hash: &str) -> Option<u32> {
    let mut fields = hash.split('$');
    let (Some(""), Some(PHC_ID), Some(params)) = (fields.next(), fields.next(), fields.next()) else {
        return None;
    };
    params.split(',').find_map(|p| p.strip_prefix("i=")).and_then(|v| v.parse().ok())
}

/// A hash of no one's password with [`PBKDF2_ITERATIONS`] (made once per process), to
/// verify against when the user a password grant names does not exist: both answers then
/// cost one full verification, so timing does not tell which users exist (issue 18 item 11).
#[must_use]
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_secret("no user has this password"))
}

/// True when `secret` matches a hash made by [`hash_secret`]. The comparison is
/// constant-time (`ring::pbkdf2::verify`); a malformed hash is simply `false`.
pub fn verify_secret(secret: &str, hash: &str) -> bool {
    let mut fields = hash.split('$');
    let (Some(""), Some(PHC_ID), Some(params), Some(salt), Some(expected), None) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return false;
    };
    let mut iterations = None;
    let mut length = None;
    for param in params.split(',') {
        match param.split_once('=') {
            Some(("i", v)) => iterations = v.parse::<u32>().ok(),
            Some(("l", v)) => length = v.parse::<usize>().ok(),
            _ => return false,
        }
    }
    let Some(iterations) = iterations.filter(|i| (1..=MAX_ITERATIONS).contains(i)).and_then(NonZeroU32::new) else {
        return false;
    };
    let (Ok(salt), Ok(expected)) = (STANDARD_NO_PAD.decode(salt), STANDARD_NO_PAD.decode(expected)) else {
        return false;
    };
    if expected.is_empty() || length.is_some_and(|l| l != expected.len()) {
        return false;
    }
    ring::pbkdf2::verify(ring::pbkdf2::PBKDF2_HMAC_SHA256, iterations, &salt, secret.as_bytes(), &expected).is_ok()
}

/// PBKDF2 iteration count for secrets made by [`generate_secret`] (issue 9: tenants made
/// on demand per test must take milliseconds). Stretching protects guessable secrets; a
/// generated one carries about 200 bits of entropy, which no iteration count improves.
pub const GENERATED_SECRET_ITERATIONS: u32 = 1_000;

/// [`hash_secret`] for a secret made by [`generate_secret`] (never a chosen one), with
/// [`GENERATED_SECRET_ITERATIONS`]; [`verify_secret`] reads the count from the hash.
#[must_use]
pub fn hash_generated_secret(secret: &str) -> String {
    let mut salt = [0u8; SALT_LEN];
    fill_random(&mut salt);
    hash_with(secret, &salt, GENERATED_SECRET_ITERATIONS)
}

/// Fills `buf` from the OS random generator. It fails only when the OS has no randomness
/// at all; going on with predictable salts or secrets would be worse than stopping.
#[allow(clippy::expect_used)]
fn fill_random(buf: &mut [u8]) {
    ring::rand::SystemRandom::new().fill(buf).expect("the operating system's random number generator failed");
}

/// A new client secret shaped like Entra's (40 characters: 3 random letters or digits,
/// the version marker `8Q~`, then 34 characters from `A–Z a–z 0–9 . _ ~ -`; e.g.
/// `Xk28Q~…`), from the OS random generator: about 200 bits of entropy. Like Entra,
/// the value is shown once; only [`hash_secret`] of it should be stored.
pub fn generate_secret() -> String {
    const HINT: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const BODY: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-";
    let mut out = String::with_capacity(40);
    let pick = |alphabet: &[u8], count: usize, out: &mut String| {
        let mut n = 0;
        while n < count {
            let mut buf = [0u8; 64];
            fill_random(&mut buf);
            // Rejection sampling keeps the choice uniform.
            let limit = 256 - 256 % alphabet.len();
            for b in buf {
                if n == count {
                    break;
                }
                if usize::from(b) < limit {
                    out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
                    n += 1;
                }
            }
        }
    };
    pick(HINT, 3, &mut out);
    out.push_str("8Q~");
    pick(BODY, 34, &mut out);
    out
}
