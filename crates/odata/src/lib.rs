//! OData v4.01 URL conventions for enrollgraph: system query options parsed to a
//! syntax tree, bound against a [`Model`], evaluated in memory or translated to SQL.
//! This crate knows no HTTP, no storage engine and no Intune names.
//!
//! # Pipeline
//!
//! 1. **Parse** (syntax only; OData URL Conventions §5.1, ABNF `commonExpr`):
//!    [`parse_query`]`(raw, &`[`ParseConfig`]`) -> Result<`[`QueryOptions`]`, `[`Error`]`>`
//!    takes the raw, percent-encoded query string after `?`. The syntax tree
//!    ([`Expr`], [`SelectItem`], [`ExpandItem`], [`OrderByItem`]) prints canonical text
//!    with `Display`; [`QueryOptions::to_query_string`] prints an encoded query string
//!    that parses back to an equal value (for `@odata.nextLink`).
//! 2. **Bind** against a [`Model`]: [`bind`]`(&options, &model, entity_type) ->
//!    Result<`[`BoundQuery`]`, Error>` resolves properties, type casts, enum members and
//!    lambda variables and checks operand types.
//! 3. **Evaluate in memory**: [`eval`]`(&`[`BoundFilter`]`, entity_type, &json) -> bool`
//!    and [`compare`]`(&[`[`BoundOrderBy`]`], (type, &json), (type, &json)) -> Ordering`.
//! 4. **Translate to SQL** over rows `(id, type, body)` with `body` a JSON document:
//!    [`filter_to_sql`]`(&filter, &dyn `[`SqlDialect`]`, first_param) -> Option<`[`Sql`]`>`
//!    and [`orderby_to_sql`]`(...) -> Option<`[`SqlOrderBy`]`>`, for [`Sqlite`] and
//!    [`Postgres`]. `None` means "evaluate in memory"; a returned query selects exactly
//!    the rows that [`eval`] accepts.
//!
//! # Semantics shared by evaluation and SQL
//!
//! * Two-valued logic: a comparison other than `eq`/`ne` with a null operand is false;
//!   `x eq null` is true only when `x` is null; `not` negates.
//! * A JSON value of another JSON type than the property's (e.g. a number in a string
//!   property) reads as null; a structured value's runtime type is its `@odata.type`
//!   (a leading `#` is ignored), else its declared type.
//! * Strings compare by code point and string functions are case-sensitive;
//!   `length`/`indexof`/`substring` count Unicode scalar values; `concat` with a null
//!   is null; `trim` removes Unicode white space.
//! * GUIDs compare case-insensitively; enums compare equal by member name and order by
//!   declaration order; DateTimeOffsets compare as instants (any offset, any number of
//!   fractional digits; stored text that is not `YYYY-MM-DDTHH:MM:SS[.f](Z|±HH:MM)`
//!   reads as null).

#![warn(missing_docs)]

pub mod ast;
pub mod bind;
mod datetime;
pub mod error;
pub mod eval;
mod lexer;
pub mod model;
pub mod parser;
pub mod sql;

pub use ast::{
    BinaryOp, ExpandItem, Expr, Function, LambdaKind, Literal, OrderByItem, QueryOptions, Segment, SelectItem,
};
pub use bind::{
    BoundExpand, BoundExpr, BoundFilter, BoundOrderBy, BoundPath, BoundQuery, BoundSelect, CompareOp, Const, Element,
    EnumType, Kind, Root, Step, bind, bind_filter, bind_orderby,
};
pub use error::{Error, ErrorKind};
pub use eval::{compare, eval};
pub use model::{Model, Primitive, PropertyInfo, TypeRef};
pub use parser::{ParseConfig, parse_filter, parse_orderby, parse_query, percent_decode};
pub use sql::{
    JsonBase, JsonKind, JsonNode, OrderTerm, Postgres, Sql, SqlDialect, SqlOrderBy, SqlValue, Sqlite, filter_to_sql,
    orderby_to_sql,
};
