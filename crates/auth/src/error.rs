//! The error type of this crate.

/// Why a token was refused, or why a key, a token or a document could not be made.
///
/// The `Display` messages follow the wording Microsoft Graph puts in its
/// `401 InvalidAuthenticationToken` errors (Microsoft Graph error responses and
/// resource types, "Access token has expired or is not yet valid." etc.), so the server
/// can put them in an error body unchanged. They never contain the token text, a key or a
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No bearer token at all (no `Authorization` header, or an empty one).
    #[error("Access token is empty.")]
    MissingToken,
    /// Not a compact JWS (RFC 7515 §7.1): not three dot-separated parts, bad base64url,
    /// bad JSON, a missing or mistyped claim, or a header scheme other than `Bearer`.
    #[error("Invalid JWT token. The token is malformed.")]
    Malformed,
    /// The JOSE header's `alg` is not `RS256` (RFC 7518 §3.1): `none`, `HS256` (the
    /// key-confusion attack) and everything else are refused.
    #[error("Access token validation failure. The token's signing algorithm is not supported.")]
    UnsupportedAlgorithm,
    /// The RS256 signature does not verify with the key named by `kid`.
    #[error("Access token validation failure. Invalid signature.")]
    BadSignature,
    /// The header has no `kid`, or names a key this server does not (or no longer) have.
    #[error("Access token validation failure. The signing key was not found.")]
    UnknownKey,
    /// The JOSE header has a `crit` member (RFC 7515 §4.1.11): the recipient must refuse a
    /// JWS whose critical extensions it does not understand, and this one understands none.
    #[error("Access token validation failure. The token has critical header parameters that are not supported.")]
    CriticalHeader,
    /// The token was issued in an earlier incarnation of its tenant (deleted and created
    /// again since), or the tenant no longer exists.
    #[error("Access token validation failure. Invalid tenant.")]
    StaleTenant,
    /// `exp` (RFC 7519 §4.1.4) is in the past by more than the allowed clock skew.
    #[error("Access token has expired or is not yet valid.")]
    Expired,
    /// `nbf` (RFC 7519 §4.1.5) is in the future by more than the allowed clock skew.
    #[error("Access token has expired or is not yet valid.")]
    NotYetValid,
    /// `aud` (RFC 7519 §4.1.3) is not one of the audiences the validator accepts.
    #[error("Access token validation failure. Invalid audience.")]
    WrongAudience,
    /// `iss` (RFC 7519 §4.1.1) is not of the form this crate issues.
    #[error("Access token validation failure. Invalid issuer.")]
    WrongIssuer,
    /// The `tid` claim is missing, empty, does not match the tenant in `iss`, or is not
    /// one of the validator's allowed tenants.
    #[error("Access token validation failure. Invalid tenant.")]
    WrongTenant,
    /// A cryptographic operation failed (key generation, key parsing, signing).
    #[error("cryptographic failure: {0}")]
    Crypto(String),
    /// A persisted key set (see [`crate::KeySet::from_json`]) is not valid.
    #[error("invalid key set: {0}")]
    InvalidKeySet(String),
    /// An argument given to the issuer is not usable (e.g. an empty tenant).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl AuthError {
    /// The variant's name: a bounded label for metrics (never a message or a value).
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "MissingToken",
            AuthError::Malformed => "Malformed",
            AuthError::UnsupportedAlgorithm => "UnsupportedAlgorithm",
            AuthError::BadSignature => "BadSignature",
            AuthError::UnknownKey => "UnknownKey",
            AuthError::CriticalHeader => "CriticalHeader",
            AuthError::StaleTenant => "StaleTenant",
            AuthError::Expired => "Expired",
            AuthError::NotYetValid => "NotYetValid",
            AuthError::WrongAudience => "WrongAudience",
            AuthError::WrongIssuer => "WrongIssuer",
            AuthError::WrongTenant => "WrongTenant",
            AuthError::Crypto(_) => "Crypto",
            AuthError::InvalidKeySet(_) => "InvalidKeySet",
            AuthError::InvalidArgument(_) => "InvalidArgument",
        }
    }

    /// True for the errors that mean "this token is not acceptable" (answer `401`),
    /// false for the errors that mean the server itself failed (`Crypto`, `InvalidKeySet`,
    /// `InvalidArgument`: answer `500`).
    pub fn is_token_rejection(&self) -> bool {
        !matches!(self, AuthError::Crypto(_) | AuthError::InvalidKeySet(_) | AuthError::InvalidArgument(_))
    }
}
