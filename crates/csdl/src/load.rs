//! Reading a CSDL XML document (OData CSDL XML v4.01) into a [`Schema`].

use roxmltree::{Document, Node};

use crate::{
    Action, ApiVersion, CsdlError, EnumType, Flat, HashMap, Navigation, Parameter, Primitive, Property, Schema,
    StructuredType, TypeKind, TypeRef, WireMemo, qualify,
};

/// Splits `Collection(T)` into (T, true).
fn element_type(raw: &str) -> (&str, bool) {
    match raw.strip_prefix("Collection(").and_then(|r| r.strip_suffix(')')) {
        Some(inner) => (inner, true),
        None => (raw, false),
    }
}

/// CSDL §4.4 primitive type names.
fn primitive(name: &str) -> Option<Primitive> {
    Some(match name {
        "Edm.String" => Primitive::String,
        "Edm.Boolean" => Primitive::Boolean,
        "Edm.Int32" | "Edm.Int16" | "Edm.Byte" | "Edm.SByte" => Primitive::Int32,
        "Edm.Int64" => Primitive::Int64,
        "Edm.Double" | "Edm.Single" | "Edm.Decimal" => Primitive::Double,
        "Edm.Guid" => Primitive::Guid,
        "Edm.DateTimeOffset" => Primitive::DateTimeOffset,
        "Edm.Date" => Primitive::Date,
        "Edm.Duration" => Primitive::Duration,
        n if n.starts_with("Edm.") => Primitive::Other,
        _ => return None,
    })
}

fn bool_attr(node: Node, name: &str, default: bool) -> bool {
    node.attribute(name).map_or(default, |v| v == "true")
}

impl Schema {
    /// Parses one CSDL document.
    ///
    /// # Errors
    /// When the XML is malformed or refers to an undefined type.
    pub fn parse(version: ApiVersion, xml: &'static str) -> Result<Schema, CsdlError> {
        let label = version.as_str();
        let doc = Document::parse(xml).map_err(|e| CsdlError::Xml(label, e.to_string()))?;
        let mut enums = HashMap::default();
        let mut raw_types = Vec::new();
        let mut actions_raw = Vec::new();
        let mut singletons = Vec::new();
        let mut entity_sets = Vec::new();
        for schema in doc.descendants().filter(|n| n.has_tag_name("Schema")) {
            let ns = schema.attribute("Namespace").unwrap_or("microsoft.graph");
            for node in schema.children().filter(Node::is_element) {
                let name = node.attribute("Name").unwrap_or_default();
                match node.tag_name().name() {
                    "EnumType" => {
                        let members = node
                            .children()
                            .filter(|m| m.has_tag_name("Member"))
                            .filter_map(|m| m.attribute("Name").map(str::to_owned))
                            .collect();
                        let qualified = format!("{ns}.{name}");
                        enums.insert(
                            qualified.clone(),
                            EnumType { name: qualified, members, is_flags: bool_attr(node, "IsFlags", false) },
                        );
                    }
                    "EntityType" | "ComplexType" => raw_types.push((ns, node)),
                    "Action" => actions_raw.push(node),
                    "EntityContainer" => {
                        for s in node.children().filter(|c| c.has_tag_name("Singleton")) {
                            if let (Some(n), Some(t)) = (s.attribute("Name"), s.attribute("Type")) {
                                singletons.push((n.to_owned(), qualify(t)));
                            }
                        }
                        // A top-level entity set (`groups`) is, for addressing, a contained
                        // collection of the service root: its rows live under the root row.
                        for s in node.children().filter(|c| c.has_tag_name("EntitySet")) {
                            if let (Some(n), Some(t)) = (s.attribute("Name"), s.attribute("EntityType")) {
                                entity_sets.push(Navigation {
                                    name: n.to_owned(),
                                    target: qualify(t),
                                    collection: true,
                                    contains_target: true,
                                });
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        let struct_names: Vec<String> =
            raw_types.iter().map(|(ns, n)| format!("{ns}.{}", n.attribute("Name").unwrap_or_default())).collect();
        let resolve = |raw: &str| -> Result<(TypeRef, bool), CsdlError> {
            let (inner, collection) = element_type(raw);
            if let Some(p) = primitive(inner) {
                return Ok((TypeRef::Primitive(p), collection));
            }
            let q = qualify(inner);
            if enums.contains_key(&q) {
                return Ok((TypeRef::Enum(q), collection));
            }
            if let Some(i) = struct_names.iter().position(|n| *n == q) {
                let kind = raw_types[i].1.tag_name().name();
                return Ok((if kind == "EntityType" { TypeRef::Entity(q) } else { TypeRef::Complex(q) }, collection));
            }
            Err(CsdlError::Model(label, format!("undefined type {raw}")))
        };
        let mut types = HashMap::default();
        for (qualified, (_, node)) in struct_names.iter().zip(&raw_types) {
            let mut properties = Vec::new();
            let mut navigations = Vec::new();
            for child in node.children().filter(Node::is_element) {
                let name = child.attribute("Name").unwrap_or_default().to_owned();
                let ty = child.attribute("Type").unwrap_or_default();
                match child.tag_name().name() {
                    "Property" => {
                        let (type_ref, collection) = resolve(ty)?;
                        properties.push(Property {
                            name,
                            type_ref,
                            collection,
                            nullable: bool_attr(child, "Nullable", true),
                        });
                    }
                    "NavigationProperty" => {
                        let (inner, collection) = element_type(ty);
                        navigations.push(Navigation {
                            name,
                            target: qualify(inner),
                            collection,
                            contains_target: bool_attr(child, "ContainsTarget", false),
                        });
                    }
                    _ => {}
                }
            }
            types.insert(
                qualified.clone(),
                StructuredType {
                    name: qualified.clone(),
                    kind: if node.tag_name().name() == "EntityType" { TypeKind::Entity } else { TypeKind::Complex },
                    base: node.attribute("BaseType").map(qualify),
                    is_abstract: bool_attr(*node, "Abstract", false),
                    properties,
                    navigations,
                },
            );
        }
        let mut actions = Vec::new();
        for node in actions_raw {
            let mut params = node.children().filter(|c| c.has_tag_name("Parameter"));
            let Some(binding) = params.next() else { continue };
            let (binding_type, binding_collection) = element_type(binding.attribute("Type").unwrap_or_default());
            let mut parameters = Vec::new();
            for p in params {
                let (type_ref, collection) = resolve(p.attribute("Type").unwrap_or_default())?;
                parameters.push(Parameter {
                    name: p.attribute("Name").unwrap_or_default().to_owned(),
                    type_ref,
                    collection,
                    nullable: bool_attr(p, "Nullable", true),
                });
            }
            actions.push(Action {
                name: node.attribute("Name").unwrap_or_default().to_owned(),
                binding_type: qualify(binding_type),
                binding_collection,
                parameters,
            });
        }
        let mut derived: HashMap<String, Vec<String>> = HashMap::default();
        let mut names: Vec<&String> = types.keys().collect();
        names.sort();
        for name in names {
            let t = &types[name];
            if let Some(base) = &t.base {
                if !types.contains_key(base) {
                    return Err(CsdlError::Model(label, format!("{name}: undefined base type {base}")));
                }
                derived.entry(base.clone()).or_default().push(name.clone());
            }
            for n in &t.navigations {
                if !types.contains_key(&n.target) {
                    return Err(CsdlError::Model(label, format!("{name}/{}: undefined target {}", n.name, n.target)));
                }
            }
        }
        for set in &entity_sets {
            if !types.contains_key(&set.target) {
                return Err(CsdlError::Model(label, format!("entity set {}: undefined type {}", set.name, set.target)));
            }
        }
        let mut schema = Schema {
            version,
            xml,
            types,
            enums,
            actions,
            singletons,
            entity_sets,
            derived,
            flat: HashMap::default(),
            memo: WireMemo::default(),
        };
        let flat = schema
            .types
            .keys()
            .map(|name| {
                let lineage: Vec<&StructuredType> = schema.lineage(name);
                let flat = Flat {
                    lineage: lineage.iter().map(|t| t.name.clone()).collect(),
                    properties: lineage.iter().flat_map(|t| t.properties.iter().cloned()).collect(),
                    navigations: lineage.iter().flat_map(|t| t.navigations.iter().cloned()).collect(),
                };
                (name.clone(), flat)
            })
            .collect();
        schema.flat = flat;
        Ok(schema)
    }
}
