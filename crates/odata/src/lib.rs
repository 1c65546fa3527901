//! OData v4.01 URL conventions for enrollgraph: system query options parsed to a
//! syntax tree, bound against a [`Model`], evaluated in memory or translated to SQL.
//! This crate knows no HTTP, no storage engine and no Intune names.

pub mod model;

pub use model::{Model, Primitive, PropertyInfo, TypeRef};
