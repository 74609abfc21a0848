//! Record identity across programs: a record type's [`Shape`] (its name, size and alignment,
//! and for a type with `#[derive(Schema)]` each field's name, offset and shape), the names
//! that identify a type without module paths, and the comparison that names the first field
//! that differs ([`Difference`]).
//!
//! # How two programs' records meet
//!
//! A channel stores its creator's record identity; an opener compares its own with it.
//!
//! - **Name, size, alignment, schema version** are always compared. The name is the type's
//!   name with module paths stripped at every level (`my_app::feed::Tick` is `Tick`,
//!   `[other::Leg; 4]` is `[Leg; 4]`), or what [`Builder::type_name`](crate::Builder::type_name)
//!   set; so two separately built programs that both declare `struct Tick` agree on it.
//! - **Fields** are compared too when *both* sides' record types derive [`Schema`](derive@crate::Schema):
//!   names, offsets, sizes and types, nested derived structs field by field, arrays and other
//!   types by name and size. A field retyped, moved, renamed, added or removed is refused with
//!   [`OpenError::TypeMismatch`](crate::OpenError::TypeMismatch), and
//!   [`OpenError::type_difference`](crate::OpenError::type_difference) names the first one.
//! - **A side without the derive** falls back to name, size and alignment: it has no field
//!   list to compare, and refusing it would make adding the derive to one program a flag day
//!   for every program it talks to. The check is then exactly as strong as it is between two
//!   programs without the derive (a reordering of same-sized fields is not seen), so derive it
//!   on both sides.
//!
//! ```
//! use shmchan::schema::Shape;
//!
//! #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
//! #[bytemuck(crate = "shmchan::bytemuck")]
//! #[repr(C)]
//! struct Tick {
//!     seq: u64,
//!     price: f64,
//! }
//!
//! let shape = Shape::of::<Tick>();
//! assert_eq!(shape.to_string(), "Tick { seq: u64 at 0, price: f64 at 8 }");
//! assert_eq!(Shape::of::<[Tick; 2]>().to_string(), "[Tick; 2]"); // arrays: by name and size
//! ```

use core::fmt;

mod diff;
pub(crate) mod registry;
mod wire;

pub use diff::{Difference, FieldAt};
pub use wire::SchemaError;
pub(crate) use wire::MAX_DEPTH;

/// The longest schema a segment stores, in bytes (a record whose [`Shape`] encodes to more is
/// refused at creation: a few hundred fields).
pub const MAX_SCHEMA: usize = 16384;

/// What a record type looks like to another program: its name (module paths stripped), size
/// and alignment, and — for a struct with `#[derive(Schema)]` — its fields.
///
/// ```
/// use shmchan::schema::Shape;
/// let s = Shape::of::<[u32; 3]>();
/// assert_eq!((s.name.as_str(), s.size, s.align), ("[u32; 3]", 12, 4));
/// assert!(s.fields.is_none()); // not a derived struct: compared by name and size
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Shape {
    /// The type's name without module paths (or the name the builder set, for a record).
    pub name: String,
    /// `size_of` the type.
    pub size: u32,
    /// `align_of` the type.
    pub align: u32,
    /// The fields, in declaration order, for a struct that derives `Schema`; `None` for any
    /// other type (primitives, arrays, structs without the derive).
    pub fields: Option<Vec<FieldShape>>,
}

/// One field of a derived struct.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct FieldShape {
    /// The field's name (`0`, `1`, … in a tuple struct).
    pub name: String,
    /// Its offset in the struct, in bytes.
    pub offset: u32,
    /// Its type.
    pub shape: Shape,
}

impl Shape {
    /// The shape of `T`: its declared fields if it derives `Schema`, otherwise its name,
    /// size and alignment.
    ///
    /// ```
    /// let s = shmchan::schema::Shape::of::<u64>();
    /// assert_eq!(s.to_string(), "u64");
    /// ```
    pub fn of<T: 'static>() -> Shape {
        Shape::declared::<T>().unwrap_or_else(|| Shape {
            name: type_name_of::<T>(),
            size: core::mem::size_of::<T>() as u32,
            align: core::mem::align_of::<T>() as u32,
            fields: None,
        })
    }

    /// The shape `#[derive(Schema)]` declared for `T`, or `None` if `T` does not derive it.
    ///
    /// ```
    /// assert!(shmchan::schema::Shape::declared::<u64>().is_none());
    /// ```
    pub fn declared<T: 'static>() -> Option<Shape> {
        registry::lookup(core::any::TypeId::of::<T>()).map(|shape| shape())
    }

    /// The first difference between this shape (what one side expects) and `found` (what the
    /// channel carries), or `None` if they are equal.
    ///
    /// ```
    /// use shmchan::schema::Shape;
    /// assert!(Shape::of::<u64>().diff(&Shape::of::<u64>()).is_none());
    /// let d = Shape::of::<u64>().diff(&Shape::of::<f64>()).unwrap();
    /// assert_eq!(d.to_string(), "record: expected u64, found f64");
    /// ```
    pub fn diff(&self, found: &Shape) -> Option<Difference> {
        diff::first(self, found)
    }

    /// The shape of a derived struct (called by the code `#[derive(Schema)]` generates).
    #[doc(hidden)]
    pub fn __record<T>(name: &str, fields: Vec<FieldShape>) -> Shape {
        Shape {
            name: name.to_owned(),
            size: core::mem::size_of::<T>() as u32,
            align: core::mem::align_of::<T>() as u32,
            fields: Some(fields),
        }
    }

    /// How deep the shape nests (1 for a type without fields).
    pub(crate) fn depth(&self) -> usize {
        1 + self
            .fields
            .iter()
            .flatten()
            .map(|f| f.shape.depth())
            .max()
            .unwrap_or(0)
    }
}

impl FieldShape {
    /// A field of type `T` at `offset` (called by the code `#[derive(Schema)]` generates).
    #[doc(hidden)]
    pub fn __of<T: 'static>(name: &str, offset: usize) -> FieldShape {
        FieldShape {
            name: name.to_owned(),
            offset: offset as u32,
            shape: Shape::of::<T>(),
        }
    }
}

impl fmt::Display for Shape {
    /// `Tick { seq: u64 at 0, leg: Leg { px: f64 at 0 } at 8 }`; a type without fields shows
    /// its name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        let Some(fields) = &self.fields else {
            return Ok(());
        };
        f.write_str(" {")?;
        for (i, field) in fields.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(
                f,
                "{sep}{}: {} at {}",
                field.name, field.shape, field.offset
            )?;
        }
        f.write_str(if fields.is_empty() { "}" } else { " }" })
    }
}

/// `T`'s name as records are identified across programs: [`core::any::type_name`] with the
/// module path stripped at every level.
///
/// ```
/// mod feed {
///     #[derive(Clone, Copy)]
///     pub struct Tick;
/// }
/// assert_eq!(shmchan::schema::type_name_of::<feed::Tick>(), "Tick");
/// assert_eq!(shmchan::schema::type_name_of::<[feed::Tick; 4]>(), "[Tick; 4]");
/// assert_eq!(shmchan::schema::type_name_of::<core::num::Wrapping<u32>>(), "Wrapping<u32>");
/// ```
pub fn type_name_of<T: ?Sized>() -> String {
    strip_paths(core::any::type_name::<T>())
}

/// Drops every `path::` prefix: `a::B<c::D>` → `B<D>`, `[x::T; 4]` → `[T; 4]`. A `::` after a
/// generic group (`a::B<C>::D`) drops the group and its type too.
pub(crate) fn strip_paths(name: &str) -> String {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("::") {
            if out.ends_with('>') {
                // Drop the balanced `<...>` group, then the identifier before it.
                let mut depth = 0usize;
                while let Some(c) = out.pop() {
                    match c {
                        '>' => depth += 1,
                        '<' => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                    if depth == 0 {
                        break;
                    }
                }
            }
            while out.ends_with(ident) {
                out.pop();
            }
            rest = after;
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_paths_at_every_level() {
        for (from, to) in [
            ("u64", "u64"),
            ("my_crate::Tick", "Tick"),
            ("other::deep::mod_2::Tick", "Tick"),
            ("[other::Tick; 4]", "[Tick; 4]"),
            ("[[a::B; 2]; 3]", "[[B; 2]; 3]"),
            ("core::num::wrapping::Wrapping<u32>", "Wrapping<u32>"),
            ("a::P<b::Q, c::R<d::S>>", "P<Q, R<S>>"),
            ("a::B<c::D>::E", "E"),
            ("(a::X, b::Y)", "(X, Y)"),
            ("é::Ü", "Ü"),
            ("::", ""),
            ("a::", ""),
        ] {
            assert_eq!(strip_paths(from), to, "{from}");
        }
    }

    #[test]
    fn shape_of_undeclared_types_is_their_name() {
        let s = Shape::of::<[u16; 5]>();
        assert_eq!((s.name.as_str(), s.size, s.align), ("[u16; 5]", 10, 2));
        assert_eq!(s.fields, None);
        assert_eq!(s.depth(), 1);
    }
}
