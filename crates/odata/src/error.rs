//! The one error type of the crate (OData URL Conventions §5, OData JSON Format §21
//! error messages, worded like OData.net / Microsoft Graph).

/// What went wrong, for callers that map errors to HTTP status codes or error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The text does not follow the OData ABNF (URL Conventions §5.1).
    Syntax,
    /// A `$`-prefixed query option that this crate does not know (URL Conventions §5).
    UnknownQueryOption,
    /// A system query option given twice (URL Conventions §5: "at most once").
    DuplicateQueryOption,
    /// An invalid value of `$top`, `$skip` or `$count` (URL Conventions §5.1.6-§5.1.8).
    InvalidOptionValue,
    /// A property that the type does not declare (URL Conventions §5.1.1.15).
    UnknownProperty,
    /// A type name that the model does not define (URL Conventions §5.1.1.12).
    UnknownType,
    /// A function name that is not a canonical function (URL Conventions §5.1.1.4).
    UnknownFunction,
    /// A canonical function called with the wrong arguments (URL Conventions §5.1.1.4).
    FunctionSignature,
    /// Operands or arguments of incompatible types (URL Conventions §5.1.1.1).
    TypeMismatch,
    /// A string that is not a member of the enumeration type (CSDL §10).
    InvalidEnumValue,
    /// A type cast to a type that is not related (URL Conventions §5.1.1.12).
    InvalidTypeCast,
    /// Valid OData that this crate does not implement.
    NotSupported,
    /// The expression nests deeper than the configured limit.
    TooDeep,
}

/// An error of parsing or binding, with an OData.net-like message and, for syntax
/// errors, the 0-based character position inside the query option value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// The category of the error.
    pub kind: ErrorKind,
    /// The human-readable message (already includes the position, if any).
    pub message: String,
    /// 0-based character position in the option value, when known.
    pub position: Option<usize>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), position: None }
    }

    pub(crate) fn at(kind: ErrorKind, position: usize, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), position: Some(position) }
    }

    pub(crate) fn syntax(position: usize, text: &str) -> Self {
        Self::at(ErrorKind::Syntax, position, format!("Syntax error at position {position} in '{text}'."))
    }
}
