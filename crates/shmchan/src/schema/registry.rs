//! The types that derive `Schema`, registered when the program starts.
//!
//! shmchan's record bound is every `Pod` type, and stable Rust cannot ask in generic code
//! whether a type also implements another trait. So the derive registers each type's shape
//! function, keyed by its `TypeId`, from a static in `.init_array` that the loader runs before
//! `main` (what the `ctor` and `inventory` crates do); the builder looks the record type up.
//! The list is an intrusive, push-only linked list of the derive's statics: no allocation at
//! load time, nothing ever removed.

use core::any::TypeId;
use core::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use super::Shape;

/// One registered type (a static the derive emits).
#[doc(hidden)]
pub struct Registration {
    type_id: fn() -> TypeId,
    shape: fn() -> Shape,
    registered: AtomicBool,
    next: AtomicPtr<Registration>,
}

/// The most recently registered type.
static HEAD: AtomicPtr<Registration> = AtomicPtr::new(ptr::null_mut());

impl Registration {
    /// The registration of `T`, whose shape `shape` returns.
    pub const fn new<T: bytemuck::Pod>(shape: fn() -> Shape) -> Registration {
        Registration {
            type_id: TypeId::of::<T>,
            shape,
            registered: AtomicBool::new(false),
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Adds this type to the list (once; later calls do nothing).
    pub fn register(&'static self) {
        // Relaxed: only this flag's own atomicity matters (one caller wins the right to link).
        if self.registered.swap(true, Ordering::Relaxed) {
            return;
        }
        let me = ptr::from_ref(self).cast_mut();
        let mut head = HEAD.load(Ordering::Relaxed);
        loop {
            self.next.store(head, Ordering::Relaxed);
            // SYNC(schema-registry): Release publishes `next` (and the statics' contents) to
            // `lookup`'s Acquire load of HEAD; every push is an RMW on HEAD, so one Acquire
            // load of the latest head sees every earlier push too.
            match HEAD.compare_exchange_weak(head, me, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }
}

/// The shape function registered for `id`.
pub(crate) fn lookup(id: TypeId) -> Option<fn() -> Shape> {
    // SYNC(schema-registry): Acquire, paired with `register`'s Release.
    let mut at = HEAD.load(Ordering::Acquire);
    while !at.is_null() {
        // SAFETY: every pointer in the list is a `&'static Registration` (`register` takes
        // `&'static self`), published by the Release CAS that made it reachable.
        let r = unsafe { &*at };
        if (r.type_id)() == id {
            return Some(r.shape);
        }
        // Relaxed: written before the node was published (see above), never again.
        at = r.next.load(Ordering::Relaxed);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            name: "Registered".into(),
            size: 2,
            align: 2,
            fields: Some(Vec::new()),
        }
    }

    /// A type nothing else in this test binary registers.
    type Registered = [i16; 7];

    static REG: Registration = Registration::new::<Registered>(shape);

    #[test]
    fn registered_types_are_found_and_registering_twice_is_harmless() {
        assert!(lookup(TypeId::of::<Registered>()).is_none());
        REG.register();
        REG.register(); // no cycle
        assert_eq!(
            lookup(TypeId::of::<Registered>()).map(|f| f()),
            Some(shape())
        );
        assert!(lookup(TypeId::of::<u8>()).is_none());
    }
}
