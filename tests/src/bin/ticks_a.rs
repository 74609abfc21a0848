//! The first program of the record-identity suite (see `shmchan_tests::ticks`): the README's
//! `Tick`, declared in module `feed` with `#[derive(Schema)]` (variant `derived`) and in module
//! `plain` without it (variant `plain`).
#![allow(missing_docs)]

use shmchan_tests::ticks::{self, price, Tick};

mod feed {
    #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
    #[bytemuck(crate = "shmchan::bytemuck")]
    #[repr(C)]
    pub struct Tick {
        pub seq: u64,
        pub price: f64,
    }
}

mod plain {
    #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable)]
    #[bytemuck(crate = "shmchan::bytemuck")]
    #[repr(C)]
    pub struct Tick {
        pub seq: u64,
        pub price: f64,
    }
}

macro_rules! seq_price {
    ($($t:ty),*) => {$(
        impl Tick for $t {
            fn make(seq: u64) -> Self {
                Self { seq, price: price(seq) }
            }
            fn check(&self) -> Option<u64> {
                (self.price == price(self.seq)).then_some(self.seq)
            }
        }
    )*};
}
seq_price!(feed::Tick, plain::Tick);

fn main() {
    ticks::main(|role, backing, variant, n| {
        match variant {
            "derived" => ticks::run::<feed::Tick>(role, backing, n),
            "plain" => ticks::run::<plain::Tick>(role, backing, n),
            _ => return false,
        }
        true
    });
}
