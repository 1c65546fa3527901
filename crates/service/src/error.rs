//! The service's one error type. The server maps each variant to a status and a Graph
//! error code in one place (server/src/error.rs).

use enrollgraph_csdl::ValidationError;
use enrollgraph_store::StoreError;

/// What went wrong, in Graph's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// 400 `BadRequest` from the Intune workload (body validation, rules).
    #[error("{0}")]
    BadRequest(String),
    /// 400 `BadRequest` from the Graph gateway (query options, malformed URL).
    #[error("{0}")]
    BadQuery(String),
    /// 400 `BadRequest` "Resource not found for the segment 'x'." (rulings.md 8).
    #[error("Resource not found for the segment '{0}'.")]
    SegmentNotFound(String),
    /// 404 `ResourceNotFound`: an id that does not exist (in this tenant).
    #[error("{0}")]
    ResourceNotFound(String),
    /// 405 `MethodNotAllowed`, with the methods the resource has.
    #[error("The HTTP method '{method}' is not allowed on this resource.")]
    MethodNotAllowed {
        /// The method the client used.
        method: String,
        /// The methods that would work, for the `Allow` header.
        allow: Vec<&'static str>,
    },
    /// 409 `Conflict`.
    #[error("{0}")]
    Conflict(String),
    /// 501 `NotImplemented`: the schema has the operation, enrollgraph does not yet.
    #[error("The operation '{0}' is not implemented by enrollgraph.")]
    NotImplemented(String),
    /// 503 `ServiceUnavailable` with `Retry-After`: the database is briefly out of reach
    /// (issue 18 item 16); the detail is logged, not sent.
    #[error("{0}")]
    Unavailable(String),
    /// 501 `NotImplemented`: a path of the full Graph schema that enrollgraph does not
    /// serve (`schema/graph-paths.txt`), told apart from a name Graph does not have (400).
    #[error(
        "The resource '{0}' exists in Microsoft Graph but is not served by enrollgraph; see the README's \"What is served\"."
    )]
    Unserved(String),
    /// 500: a defect or a storage failure; the detail is logged, not sent.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    /// The answer to a query whose answer would be larger than `max_bytes`: a `400`, since
    /// the client can ask for less (`$top`, `$select`, fewer expansions; issue 18 item 1).
    #[must_use]
    pub fn answer_too_large(max_bytes: usize) -> ServiceError {
        ServiceError::BadQuery(format!(
            "The response would be larger than the {max_bytes} bytes this service answers at once; request fewer items with $top, fewer properties with $select, or fewer $expand navigations."
        ))
    }
}

impl From<ValidationError> for ServiceError {
    fn from(e: ValidationError) -> Self {
        ServiceError::BadRequest(e.0)
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(id) => ServiceError::Conflict(format!("An entity with id '{id}' already exists.")),
            StoreError::Unavailable(detail) => ServiceError::Unavailable(detail),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

/// Shorthand for service results.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
