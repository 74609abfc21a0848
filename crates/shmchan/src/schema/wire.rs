//! A [`Shape`]'s stored form, and its parser: the bytes come from a segment another process
//! may have written, so every length is checked, nesting is bounded, and nothing panics.
//!
//! ```text
//! schema := 0x01 (format) node
//! node   := kind: u8 (0 = name only, 1 = struct) name size: u32 align: u32
//!           [kind 1: count: u32, then count × (field-name offset: u32 node)]
//! name   := len: u16, then len bytes of UTF-8
//! ```
//! All integers little-endian; nothing may follow the root node.

use core::fmt;

use super::{FieldShape, Shape, MAX_SCHEMA};

const FORMAT: u8 = 1;
/// The longest name stored (longer ones are cut at a character boundary, the same way on
/// every side).
const MAX_NAME: usize = 1024;
/// The deepest nesting read (and written).
pub(crate) const MAX_DEPTH: usize = 32;
/// The fewest bytes a field takes: its name's length, offset, and an unnamed node.
const MIN_FIELD: usize = 2 + 4 + 1 + 2 + 4 + 4;

/// Stored schema bytes that do not describe a record.
///
/// ```
/// let e = shmchan::schema::Shape::from_bytes(&[1, 7]).unwrap_err();
/// assert_eq!(e.to_string(), "malformed record schema: unknown node kind 7 at byte 1");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaError {
    reason: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed record schema: {}", self.reason)
    }
}

impl std::error::Error for SchemaError {}

impl Shape {
    /// The stored form (the format described in this module's source).
    ///
    /// ```
    /// use shmchan::schema::Shape;
    /// let s = Shape::of::<[u8; 3]>();
    /// assert_eq!(Shape::from_bytes(&s.to_bytes()), Ok(s));
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![FORMAT];
        put_node(&mut out, self);
        out
    }

    /// Parses a stored schema: every length checked, nesting at most 32 deep, every field
    /// inside its struct; any bytes give a value or an error, never a panic.
    ///
    /// ```
    /// use shmchan::schema::Shape;
    /// assert!(Shape::from_bytes(&[]).is_err());
    /// assert!(Shape::from_bytes(&[1, 0, 255, 255]).is_err()); // a name longer than the input
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Shape, SchemaError> {
        let mut r = Reader { bytes, at: 0 };
        if bytes.len() > MAX_SCHEMA {
            return Err(r.error(format!(
                "{} bytes, more than the {MAX_SCHEMA} a schema may take",
                bytes.len()
            )));
        }
        let format = r.u8()?;
        if format != FORMAT {
            return Err(r.error(format!("unknown format {format}")));
        }
        let shape = r.node(1)?;
        if r.at != bytes.len() {
            return Err(r.error(format!("{} bytes after the schema", bytes.len() - r.at)));
        }
        Ok(shape)
    }
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    let mut end = name.len().min(MAX_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&name.as_bytes()[..end]);
}

fn put_node(out: &mut Vec<u8>, s: &Shape) {
    out.push(u8::from(s.fields.is_some()));
    put_name(out, &s.name);
    out.extend_from_slice(&s.size.to_le_bytes());
    out.extend_from_slice(&s.align.to_le_bytes());
    if let Some(fields) = &s.fields {
        out.extend_from_slice(&(fields.len() as u32).to_le_bytes());
        for f in fields {
            put_name(out, &f.name);
            out.extend_from_slice(&f.offset.to_le_bytes());
            put_node(out, &f.shape);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn error(&self, reason: String) -> SchemaError {
        SchemaError { reason }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], SchemaError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.error(format!(
                "{n} bytes wanted at byte {} of {}",
                self.at,
                self.bytes.len()
            )));
        };
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, SchemaError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, SchemaError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, SchemaError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn name(&mut self) -> Result<String, SchemaError> {
        let at = self.at;
        let len = usize::from(self.u16()?);
        if len > MAX_NAME {
            return Err(self.error(format!("a name of {len} bytes at byte {at}")));
        }
        let bytes = self.take(len)?;
        match core::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(self.error(format!("a name that is not UTF-8 at byte {at}"))),
        }
    }

    fn node(&mut self, depth: usize) -> Result<Shape, SchemaError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!(
                "nested deeper than {MAX_DEPTH} at byte {}",
                self.at
            )));
        }
        let at = self.at;
        let kind = self.u8()?;
        if kind > 1 {
            return Err(self.error(format!("unknown node kind {kind} at byte {at}")));
        }
        let name = self.name()?;
        let size = self.u32()?;
        let align = self.u32()?;
        if !align.is_power_of_two() {
            return Err(self.error(format!("`{name}` has alignment {align}")));
        }
        let fields = if kind == 1 {
            let count = self.u32()? as usize;
            // Each field takes at least MIN_FIELD bytes: a count the input cannot hold is a
            // lie, refused before anything is allocated for it.
            if count > (self.bytes.len() - self.at) / MIN_FIELD {
                return Err(self.error(format!("`{name}` claims {count} fields")));
            }
            let mut fields = Vec::with_capacity(count);
            for _ in 0..count {
                let fname = self.name()?;
                if fields.iter().any(|f: &FieldShape| f.name == fname) {
                    return Err(self.error(format!("`{name}` has two fields named `{fname}`")));
                }
                let offset = self.u32()?;
                let shape = self.node(depth + 1)?;
                let end = offset.checked_add(shape.size).filter(|&e| e <= size);
                if end.is_none() {
                    return Err(self.error(format!(
                        "field `{fname}` of `{name}` ({} bytes at offset {offset}) lies outside \
                         its {size} bytes",
                        shape.size
                    )));
                }
                fields.push(FieldShape {
                    name: fname,
                    offset,
                    shape,
                });
            }
            Some(fields)
        } else {
            None
        };
        Ok(Shape {
            name,
            size,
            align,
            fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, size: u32, align: u32) -> Shape {
        Shape {
            name: name.into(),
            size,
            align,
            fields: None,
        }
    }

    fn field(name: &str, offset: u32, shape: Shape) -> FieldShape {
        FieldShape {
            name: name.into(),
            offset,
            shape,
        }
    }

    fn sample() -> Shape {
        let leg = Shape {
            name: "Leg".into(),
            size: 16,
            align: 8,
            fields: Some(vec![
                field("px", 0, named("f64", 8, 8)),
                field("qty", 8, named("u64", 8, 8)),
            ]),
        };
        Shape {
            name: "Tick".into(),
            size: 40,
            align: 8,
            fields: Some(vec![
                field("seq", 0, named("u64", 8, 8)),
                field("leg", 8, leg),
                field("tag", 24, named("[u8; 16]", 16, 1)),
            ]),
        }
    }

    #[test]
    fn round_trips() {
        let s = sample();
        assert_eq!(Shape::from_bytes(&s.to_bytes()), Ok(s));
        let empty = Shape {
            fields: Some(vec![]),
            ..named("Unit", 0, 1)
        };
        assert_eq!(Shape::from_bytes(&empty.to_bytes()), Ok(empty));
    }

    #[test]
    fn every_truncation_and_every_byte_flip_is_an_error_or_a_value_never_a_panic() {
        let bytes = sample().to_bytes();
        for n in 0..bytes.len() {
            assert!(Shape::from_bytes(&bytes[..n]).is_err(), "prefix of {n}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(Shape::from_bytes(&extra).is_err());
        for i in 0..bytes.len() {
            for v in [0u8, 1, 2, 0x7f, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] = v;
                let _ = Shape::from_bytes(&b);
            }
        }
        // Pseudo-random inputs, seeded with a valid prefix.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 96) as usize;
            let mut b: Vec<u8> = bytes[..(x >> 8) as usize % 8].to_vec();
            let mut y = x;
            for _ in 0..len {
                y = y
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                b.push((y >> 56) as u8);
            }
            let _ = Shape::from_bytes(&b);
        }
    }

    #[test]
    fn hostile_claims_are_refused_with_a_reason() {
        // Nesting deeper than the limit (each level one field).
        let mut deep = named("u8", 1, 1);
        for _ in 0..MAX_DEPTH {
            deep = Shape {
                name: "S".into(),
                size: 1,
                align: 1,
                fields: Some(vec![field("x", 0, deep)]),
            };
        }
        let e = Shape::from_bytes(&deep.to_bytes()).unwrap_err();
        assert!(e.to_string().contains("nested deeper than 32"), "{e}");
        // A field outside its struct.
        let mut s = sample();
        s.fields.as_mut().unwrap()[2].offset = 30;
        let e = Shape::from_bytes(&s.to_bytes()).unwrap_err();
        assert!(e.to_string().contains("field `tag` of `Tick`"), "{e}");
        // An offset that overflows.
        s.fields.as_mut().unwrap()[2].offset = u32::MAX;
        assert!(Shape::from_bytes(&s.to_bytes()).is_err());
        // A field count the input cannot hold.
        let mut b = named("S", 8, 8).to_bytes();
        b[1] = 1;
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        let e = Shape::from_bytes(&b).unwrap_err();
        assert!(e.to_string().contains("claims 4294967295 fields"), "{e}");
        // Two fields of one name (a struct cannot have them; the comparison finds fields by
        // name).
        let mut s = sample();
        s.fields.as_mut().unwrap()[1].name = "seq".into();
        let e = Shape::from_bytes(&s.to_bytes()).unwrap_err();
        assert!(e.to_string().contains("two fields named `seq`"), "{e}");
        // Not UTF-8; a bad alignment; an unknown format.
        let mut b = named("ab", 1, 1).to_bytes();
        b[4] = 0xff;
        assert!(Shape::from_bytes(&b)
            .unwrap_err()
            .to_string()
            .contains("not UTF-8"));
        assert!(Shape::from_bytes(&named("a", 1, 3).to_bytes()).is_err());
        assert!(Shape::from_bytes(&[2]).is_err());
    }

    #[test]
    fn long_names_are_cut_the_same_way_everywhere() {
        let long = named(&"é".repeat(1000), 1, 1);
        let back = Shape::from_bytes(&long.to_bytes()).unwrap();
        assert!(back.name.len() <= MAX_NAME && back.name.chars().all(|c| c == 'é'));
        assert_eq!(back.to_bytes(), long.to_bytes());
    }
}
