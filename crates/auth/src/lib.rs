//! Authentication for enrollgraph, following Microsoft Entra ID (the Microsoft identity
//! platform) closely enough that real clients (MSAL, azure-identity
//! `ClientSecretCredential`, IntuneCD) work against it unchanged:
//!
//! - [`KeySet`]: RS256 signing keys (RFC 7518 §3.3) with rotation, persistence and the
//!   JWKS document (RFC 7517).
//! - [`Issuer`]: v1.0 access tokens for Microsoft Graph ([`AccessClaims`], "Microsoft
//!   identity platform access token claims reference"), `iss` =
//!   `https://sts.windows.net/{tid}/`.
//! - [`Validator`]: checks bearer tokens on every request, with a bounded cache of verified
//!   tokens, and yields a [`Principal`].
//! - [`openid_configuration`], [`instance_discovery`]: the discovery documents MSAL reads.
//! - [`TokenError`], [`token_error`], [`token_response`], [`client_credentials_resource`]:
//!   the token endpoint's answers, with Entra's AADSTS codes.
//! - [`hash_secret`], [`verify_secret`], [`generate_secret`]: client secrets.
//!
//! No HTTP framework, no storage, no network calls.

mod certificate;
mod discovery;
mod error;
mod issuer;
mod keys;
mod oauth;
pub mod permissions;
mod secret;
mod validator;

pub use certificate::{
    CertificateError, ClientCertificate, JWT_BEARER_ASSERTION, MAX_ASSERTION_BYTES, VerifiedAssertion,
    replayed_assertion, verify_client_assertion,
};
pub use discovery::{PUBLIC_CLOUD_LOGIN_HOSTS, instance_discovery, openid_configuration};
pub use error::AuthError;
pub use issuer::{
    AccessClaims, GRAPH_APP_ID, GRAPH_RESOURCE, Issuer, MSA_TENANT_ID, PERSONAL_ACCOUNT_IDP, graph_audiences,
    service_principal_object_id,
};
pub use keys::{KeySet, MAX_LEEWAY_SECS, MAX_TOKEN_LIFETIME_SECS, RETIRED_KEY_RETENTION_SECS};
pub use oauth::{TokenError, client_credentials_resource, token_error, token_error_status, token_response};
pub use secret::{
    GENERATED_SECRET_ITERATIONS, MAX_ITERATIONS, PBKDF2_ITERATIONS, dummy_hash, generate_secret, hash_generated_secret,
    hash_iterations, hash_secret, verify_secret,
};
pub use validator::{DEFAULT_CACHE_CAPACITY, Principal, PrincipalKind, Validator, bearer_token};
