//! The view of an entity data model that binding needs (OData CSDL §5-§10).
//!
//! `enrollgraph-csdl` implements this trait from the CSDL documents in `schema/`;
//! tests implement it by hand. Type names are fully qualified without a leading `#`
//! (`microsoft.graph.groupAssignmentTarget`).

/// The primitive types of OData CSDL §4.4 that this project meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Primitive {
    /// `Edm.String`
    String,
    /// `Edm.Boolean`
    Boolean,
    /// `Edm.Int32`
    Int32,
    /// `Edm.Int64`
    Int64,
    /// `Edm.Double` (and `Edm.Single`, `Edm.Decimal`)
    Double,
    /// `Edm.Guid`
    Guid,
    /// `Edm.DateTimeOffset`
    DateTimeOffset,
    /// `Edm.Date`
    Date,
    /// `Edm.Duration`
    Duration,
    /// `Edm.Binary` and anything else: comparable only as a string.
    Other,
}

/// What a property holds (CSDL §6.1.1 `Type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeRef {
    /// A primitive.
    Primitive(Primitive),
    /// An enumeration type, by qualified name.
    Enum(String),
    /// A complex type, by qualified name (its values may be of a derived type).
    Complex(String),
    /// An entity type, by qualified name (navigation properties).
    Entity(String),
}

/// A structural or navigation property as binding sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyInfo {
    /// The element type.
    pub type_ref: TypeRef,
    /// `Collection(...)`.
    pub is_collection: bool,
    /// A navigation property (CSDL §7) rather than a structural one.
    pub is_navigation: bool,
    /// CSDL `Nullable` (true when absent).
    pub nullable: bool,
}

/// A model that binding resolves names against.
pub trait Model {
    /// The property `name` declared on `type_name` or on one of its base types.
    fn property(&self, type_name: &str, name: &str) -> Option<PropertyInfo>;
    /// True when `type_name` is an entity or complex type of the model.
    fn is_structured_type(&self, type_name: &str) -> bool;
    /// True when `derived` is `base` or derives from it, directly or not.
    fn derives_from(&self, derived: &str, base: &str) -> bool;
    /// `type_name` and every type derived from it (any depth).
    fn self_and_derived(&self, type_name: &str) -> Vec<String>;
    /// The member names of an enumeration type, in declaration order.
    fn enum_members(&self, enum_type: &str) -> Option<Vec<String>>;
}
