//! The first difference between two record shapes, named by field.

use core::fmt;

use super::{FieldShape, Shape};

/// Where a field lies and what it is, on one side.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FieldAt {
    /// Its type's name (module paths stripped).
    pub ty: String,
    /// Its offset in the record, in bytes (from the start of the struct that holds it).
    pub offset: u32,
    /// Its size in bytes.
    pub size: u32,
}

/// The first difference between the record layout one side expects and the one a channel
/// carries ([`OpenError::type_difference`](crate::OpenError::type_difference)). Field names of
/// nested structs are joined with dots: `leg.px`.
///
/// ```
/// use shmchan::schema::Difference;
/// # use shmchan::schema::Shape;
/// #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
/// #[bytemuck(crate = "shmchan::bytemuck")]
/// #[repr(C)]
/// struct Tick { seq: u64, price: f64 }
/// mod old {
///     #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
///     #[bytemuck(crate = "shmchan::bytemuck")]
///     #[repr(C)]
///     pub struct Tick { pub seq: u64, pub price: u64 }
/// }
/// let d = Shape::of::<Tick>().diff(&Shape::of::<old::Tick>()).unwrap();
/// assert_eq!(d.field(), Some("price"));
/// assert_eq!(d.to_string(), "field `price`: expected f64 at offset 8, found u64 at offset 8");
/// assert!(matches!(d, Difference::Changed { .. }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Difference {
    /// The field is on both sides, with another type or at another offset.
    Changed {
        /// The field's name (dotted inside nested structs).
        field: String,
        /// This side's field.
        expected: FieldAt,
        /// The channel's field.
        found: FieldAt,
    },
    /// This side's record has the field; the channel's does not.
    Missing {
        /// The field's name.
        field: String,
        /// This side's field.
        expected: FieldAt,
        /// The channel's field at the same offset, if one starts there (a renamed field).
        found_there: Option<String>,
    },
    /// The channel's record has a field this side's does not.
    Unexpected {
        /// The field's name.
        field: String,
        /// The channel's field.
        found: FieldAt,
    },
    /// The record (or the nested type at `path`; empty for the record itself) has another
    /// name, size or alignment, and no field of it differs first (or one side declares no
    /// fields to compare).
    Type {
        /// The nested struct's field name, or empty for the record.
        path: String,
        /// This side's type: `name (size bytes, align a)`.
        expected: String,
        /// The channel's type.
        found: String,
    },
}

impl Difference {
    /// The field the difference is in (`None`: the record as a whole).
    ///
    /// ```
    /// # use shmchan::schema::Shape;
    /// let d = Shape::of::<u64>().diff(&Shape::of::<u32>()).unwrap();
    /// assert_eq!(d.field(), None);
    /// ```
    pub fn field(&self) -> Option<&str> {
        match self {
            Difference::Changed { field, .. }
            | Difference::Missing { field, .. }
            | Difference::Unexpected { field, .. } => Some(field),
            Difference::Type { path, .. } if !path.is_empty() => Some(path),
            Difference::Type { .. } => None,
        }
    }
}

impl fmt::Display for FieldAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.ty, self.offset)
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Changed {
                field,
                expected,
                found,
            } => write!(f, "field `{field}`: expected {expected}, found {found}"),
            Difference::Missing {
                field,
                expected,
                found_there,
            } => {
                write!(f, "field `{field}` missing (expected {expected}")?;
                match found_there {
                    Some(other) => write!(f, "; the channel has `{other}` there)"),
                    None => f.write_str(")"),
                }
            }
            Difference::Unexpected { field, found } => {
                write!(f, "field `{field}` unexpected (the channel has {found})")
            }
            Difference::Type {
                path,
                expected,
                found,
            } => {
                if path.is_empty() {
                    write!(f, "record: expected {expected}, found {found}")
                } else {
                    write!(f, "field `{path}`: expected {expected}, found {found}")
                }
            }
        }
    }
}

/// The first difference, walking `expected`'s fields in declaration order, then the fields
/// only `found` has, then the types themselves.
pub(super) fn first(expected: &Shape, found: &Shape) -> Option<Difference> {
    walk("", expected, found)
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn at(f: &FieldShape) -> FieldAt {
    FieldAt {
        ty: f.shape.name.clone(),
        offset: f.offset,
        size: f.shape.size,
    }
}

/// A type's name, with its size and alignment when those differ between the sides.
fn label(s: &Shape, layout: bool) -> String {
    if layout {
        format!("{} ({} bytes, align {})", s.name, s.size, s.align)
    } else {
        s.name.clone()
    }
}

fn walk(path: &str, e: &Shape, f: &Shape) -> Option<Difference> {
    if let (Some(ef), Some(ff)) = (&e.fields, &f.fields) {
        for x in ef {
            let name = join(path, &x.name);
            let Some(y) = ff.iter().find(|y| y.name == x.name) else {
                return Some(Difference::Missing {
                    field: name,
                    expected: at(x),
                    found_there: ff
                        .iter()
                        .find(|y| y.offset == x.offset)
                        .map(|y| y.name.clone()),
                });
            };
            if x.offset == y.offset && x.shape.name == y.shape.name {
                // Same place, same type name: look inside (a nested struct), or compare sizes.
                if let Some(d) = walk(&name, &x.shape, &y.shape) {
                    return Some(d);
                }
            } else {
                return Some(Difference::Changed {
                    field: name,
                    expected: at(x),
                    found: at(y),
                });
            }
        }
        if let Some(y) = ff.iter().find(|y| !ef.iter().any(|x| x.name == y.name)) {
            return Some(Difference::Unexpected {
                field: join(path, &y.name),
                found: at(y),
            });
        }
    }
    // Fields are compared only where both sides declare them; otherwise (and after them) the
    // name, size and alignment decide.
    if e.name == f.name && e.size == f.size && e.align == f.align {
        return None;
    }
    let layout = (e.size, e.align) != (f.size, f.align);
    Some(Difference::Type {
        path: path.to_owned(),
        expected: label(e, layout),
        found: label(f, layout),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, size: u32) -> Shape {
        Shape {
            name: name.into(),
            size,
            align: size.min(8),
            fields: None,
        }
    }

    fn strukt(name: &str, fields: &[(&str, u32, Shape)]) -> Shape {
        let size = fields.iter().map(|(_, o, s)| o + s.size).max().unwrap_or(0);
        Shape {
            name: name.into(),
            size,
            align: 8,
            fields: Some(
                fields
                    .iter()
                    .map(|(n, o, s)| FieldShape {
                        name: (*n).into(),
                        offset: *o,
                        shape: s.clone(),
                    })
                    .collect(),
            ),
        }
    }

    fn tick() -> Shape {
        strukt(
            "Tick",
            &[("seq", 0, named("u64", 8)), ("price", 8, named("f64", 8))],
        )
    }

    fn msg(e: &Shape, f: &Shape) -> String {
        first(e, f).map(|d| d.to_string()).unwrap_or_default()
    }

    #[test]
    fn names_the_first_differing_field() {
        let t = tick();
        assert_eq!(first(&t, &t), None);
        let retyped = strukt(
            "Tick",
            &[("seq", 0, named("u64", 8)), ("price", 8, named("u64", 8))],
        );
        assert_eq!(
            msg(&t, &retyped),
            "field `price`: expected f64 at offset 8, found u64 at offset 8"
        );
        let reordered = strukt(
            "Tick",
            &[("price", 0, named("f64", 8)), ("seq", 8, named("u64", 8))],
        );
        assert_eq!(
            msg(&t, &reordered),
            "field `seq`: expected u64 at offset 0, found u64 at offset 8"
        );
        let renamed = strukt(
            "Tick",
            &[("seq", 0, named("u64", 8)), ("px", 8, named("f64", 8))],
        );
        assert_eq!(
            msg(&t, &renamed),
            "field `price` missing (expected f64 at offset 8; the channel has `px` there)"
        );
        let added = strukt(
            "Tick",
            &[
                ("seq", 0, named("u64", 8)),
                ("price", 8, named("f64", 8)),
                ("qty", 16, named("u32", 4)),
            ],
        );
        assert_eq!(
            msg(&added, &t),
            "field `qty` missing (expected u32 at offset 16)"
        );
        assert_eq!(
            msg(&t, &added),
            "field `qty` unexpected (the channel has u32 at offset 16)"
        );
        let d = first(&t, &added).unwrap();
        assert_eq!(d.field(), Some("qty"));
    }

    #[test]
    fn nested_structs_compare_field_by_field_and_undeclared_types_by_name_and_size() {
        let leg = |px: Shape| strukt("Leg", &[("px", 0, px), ("qty", 8, named("u64", 8))]);
        let a = strukt(
            "Order",
            &[("id", 0, named("u64", 8)), ("leg", 8, leg(named("f64", 8)))],
        );
        let b = strukt(
            "Order",
            &[("id", 0, named("u64", 8)), ("leg", 8, leg(named("i64", 8)))],
        );
        assert_eq!(
            msg(&a, &b),
            "field `leg.px`: expected f64 at offset 0, found i64 at offset 0"
        );
        // One side declares Leg's fields, the other does not: name, size and alignment decide.
        let undeclared = strukt(
            "Order",
            &[("id", 0, named("u64", 8)), ("leg", 8, named("Leg", 16))],
        );
        assert_eq!(first(&a, &undeclared), None);
        // Two undeclared types of one name and different sizes.
        let small = strukt(
            "Order",
            &[("id", 0, named("u64", 8)), ("leg", 8, named("Leg", 8))],
        );
        assert_eq!(
            msg(&undeclared, &small),
            "field `leg`: expected Leg (16 bytes, align 8), found Leg (8 bytes, align 8)"
        );
    }

    #[test]
    fn the_record_itself() {
        let t = tick();
        let mut q = tick();
        q.name = "Quote".into();
        assert_eq!(msg(&t, &q), "record: expected Tick, found Quote");
        assert_eq!(first(&t, &q).unwrap().field(), None);
        let mut aligned = tick();
        aligned.align = 16;
        assert_eq!(
            msg(&t, &aligned),
            "record: expected Tick (16 bytes, align 8), found Tick (16 bytes, align 16)"
        );
    }
}
