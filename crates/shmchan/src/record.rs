//! Record fingerprints: what a channel carries, checked when a peer opens it.

use core::fmt;

use crate::schema::{Difference, Shape, MAX_SCHEMA};

/// The longest record type name stored in a segment, in bytes (longer names are cut at a
/// character boundary; the hash still covers the whole name).
///
/// ```
/// use shmchan::inspect::{inspect, Inspection};
/// use shmchan::{Backing, Channel, MAX_TYPE_NAME};
/// # let path = std::env::temp_dir().join(format!("shmchan-doc-tn-{}", std::process::id()));
/// let long = "x".repeat(200);
/// let chan = Channel::<u64>::builder().backing(Backing::file(&path)).type_name(&long).create()?;
/// let Inspection::Channel(info) = inspect(&Backing::file(&path))? else { panic!() };
/// assert_eq!(info.record.name.len(), MAX_TYPE_NAME); // stored cut
/// # drop(chan); shmchan::remove(&Backing::file(&path))?;
/// # Ok::<(), shmchan::OpenError>(())
/// ```
pub const MAX_TYPE_NAME: usize = 112;

/// The fingerprint of a record type: size, alignment, a stable name, a schema version, and
/// for a type with `#[derive(Schema)]` its fields ([`shape`](Self::shape)).
///
/// It is stored in the segment when a channel is created and compared when a peer opens it;
/// a difference is [`OpenError::TypeMismatch`](crate::OpenError::TypeMismatch), whose message
/// shows both sides and the first field that differs. The name defaults to the type's name
/// without module paths ([`schema::type_name_of`](crate::schema::type_name_of)), so that two
/// programs that declare the same struct in different crates or modules agree on it, and can
/// be set with [`Builder::type_name`](crate::Builder::type_name). How the fields take part is
/// in [`schema`](crate::schema).
///
/// ```
/// use shmchan::RecordInfo;
/// let a = RecordInfo::of::<u64>("tick", 1);
/// assert_eq!(a.size, 8);
/// assert_eq!(a.to_string(), "`tick` v1 (8 bytes, align 8)");
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RecordInfo {
    /// `size_of::<T>()`.
    pub size: u32,
    /// `align_of::<T>()`.
    pub align: u32,
    /// The stable type name.
    pub name: String,
    /// The user's schema version.
    pub schema_version: u32,
    /// The declared layout (types with `#[derive(Schema)]`), named after `name`.
    pub(crate) shape: Option<Box<Shape>>,
    /// Whether the records are byte messages whose lengths live in a lane beside the slots
    /// (a byte channel's; see `crate::endpoint::bytes`), rather than records of their own.
    pub(crate) lane: bool,
}

impl RecordInfo {
    /// The fingerprint of `T` under the given name and schema version.
    ///
    /// ```
    /// let r = shmchan::RecordInfo::of::<[u32; 3]>("triple", 2);
    /// assert_eq!((r.size, r.align, r.name.as_str(), r.schema_version), (12, 4, "triple", 2));
    /// ```
    pub fn of<T>(name: &str, schema_version: u32) -> RecordInfo {
        RecordInfo {
            size: core::mem::size_of::<T>() as u32,
            align: core::mem::align_of::<T>() as u32,
            name: name.to_owned(),
            schema_version,
            shape: None,
            lane: false,
        }
    }

    /// A record type's fingerprint as the builder makes it: the name set (`None`: the type's
    /// name without module paths), the schema version, and the fields if `T` derives
    /// `Schema` (named after the record).
    ///
    /// ```
    /// mod feed {
    ///     #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
    ///     #[bytemuck(crate = "shmchan::bytemuck")]
    ///     #[repr(C)]
    ///     pub struct Tick { pub seq: u64 }
    /// }
    /// let r = shmchan::RecordInfo::of_record::<feed::Tick>(None, 0);
    /// assert_eq!(r.name, "Tick");
    /// assert_eq!(r.shape().unwrap().to_string(), "Tick { seq: u64 at 0 }");
    /// assert!(shmchan::RecordInfo::of_record::<u64>(None, 0).shape().is_none());
    /// ```
    pub fn of_record<T: bytemuck::Pod>(name: Option<&str>, schema_version: u32) -> RecordInfo {
        let mut shape = Shape::declared::<T>();
        let name = match (name, &shape) {
            (Some(n), _) => n.to_owned(),
            (None, Some(s)) => s.name.clone(),
            (None, None) => crate::schema::type_name_of::<T>(),
        };
        if let Some(s) = &mut shape {
            s.name.clone_from(&name);
        }
        RecordInfo {
            shape: shape.map(Box::new),
            ..RecordInfo::of::<T>(&name, schema_version)
        }
    }

    /// The declared layout, if the record type derives `Schema` (for a channel's record: if
    /// its creator's did).
    ///
    /// ```
    /// assert!(shmchan::RecordInfo::of::<u64>("n", 0).shape().is_none());
    /// ```
    pub fn shape(&self) -> Option<&Shape> {
        self.shape.as_deref()
    }

    /// The first difference between the layouts, when both sides declare theirs (see
    /// [`schema`](crate::schema)).
    pub(crate) fn layout_difference(&self, found: &RecordInfo) -> Option<Difference> {
        self.shape.as_ref()?.diff(found.shape.as_ref()?)
    }

    /// The schema bytes a new segment stores (empty without a declared layout); `Err` if the
    /// layout is too large or too deeply nested to store.
    pub(crate) fn schema_bytes(&self) -> Result<Vec<u8>, String> {
        let Some(shape) = &self.shape else {
            return Ok(Vec::new());
        };
        let bytes = shape.to_bytes();
        if bytes.len() > MAX_SCHEMA || shape.depth() > crate::schema::MAX_DEPTH {
            return Err(format!(
                "the layout of `{}` takes {} bytes nested {} deep, more than the {MAX_SCHEMA}                  bytes and {} levels a segment stores; drop `#[derive(Schema)]` (the name,                  size and alignment are still checked)",
                self.name,
                bytes.len(),
                shape.depth(),
                crate::schema::MAX_DEPTH
            ));
        }
        Ok(bytes)
    }

    /// The 16 bytes stored in the ring header: size, alignment, schema version and a 32-bit
    /// FNV-1a hash of the name (the name itself is stored beside it for messages).
    pub(crate) fn fingerprint(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[0..4].copy_from_slice(&self.size.to_le_bytes());
        out[4..8].copy_from_slice(&self.align.to_le_bytes());
        out[8..12].copy_from_slice(&self.schema_version.to_le_bytes());
        out[12..16].copy_from_slice(&fnv1a(self.name.as_bytes()).to_le_bytes());
        out
    }

    /// The stored (possibly cut) form of the name.
    pub(crate) fn stored_name(&self) -> &str {
        let mut end = self.name.len().min(MAX_TYPE_NAME);
        while !self.name.is_char_boundary(end) {
            end -= 1;
        }
        &self.name[..end]
    }
}

impl fmt::Display for RecordInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` v{} ({} bytes, align {}{})",
            self.name,
            self.schema_version,
            self.size,
            self.align,
            if self.lane { ", byte messages" } else { "" }
        )
    }
}

fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_differs_by_each_field() {
        let base = RecordInfo::of::<u64>("a", 1);
        let mut v = vec![base.fingerprint()];
        v.push(RecordInfo::of::<u32>("a", 1).fingerprint());
        v.push(RecordInfo::of::<u64>("b", 1).fingerprint());
        v.push(RecordInfo::of::<u64>("a", 2).fingerprint());
        v.push(RecordInfo::of::<[u32; 2]>("a", 1).fingerprint());
        for i in 0..v.len() {
            for j in 0..i {
                assert_ne!(v[i], v[j], "{i} vs {j}");
            }
        }
    }

    #[test]
    fn stored_name_cuts_at_char_boundary() {
        let long = "é".repeat(100);
        let r = RecordInfo::of::<u8>(&long, 0);
        assert!(r.stored_name().len() <= MAX_TYPE_NAME);
        assert!(r.stored_name().chars().all(|c| c == 'é'));
    }
}
