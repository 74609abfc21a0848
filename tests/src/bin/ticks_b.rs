//! The second program of the record-identity suite (see `shmchan_tests::ticks`): the README's
//! `Tick` under other module paths (`market::v2`), with `#[derive(Schema)]` (variant `derived`)
//! and without (`plain`), and changed layouts that must be refused: `retyped` (`price: u64`),
//! `reordered` (`price` first), `renamed` (`px` for `price`), `added` (a `qty` field after
//! them).
#![allow(missing_docs)]

use shmchan_tests::ticks::{self, price, Tick};

mod market {
    pub mod v2 {
        #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
        #[bytemuck(crate = "shmchan::bytemuck")]
        #[repr(C)]
        pub struct Tick {
            pub seq: u64,
            pub price: f64,
        }

        pub mod plain {
            #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable)]
            #[bytemuck(crate = "shmchan::bytemuck")]
            #[repr(C)]
            pub struct Tick {
                pub seq: u64,
                pub price: f64,
            }
        }
    }
}

mod retyped {
    #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
    #[bytemuck(crate = "shmchan::bytemuck")]
    #[repr(C)]
    pub struct Tick {
        pub seq: u64,
        pub price: u64,
    }
}

mod reordered {
    #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
    #[bytemuck(crate = "shmchan::bytemuck")]
    #[repr(C)]
    pub struct Tick {
        pub price: f64,
        pub seq: u64,
    }
}

mod renamed {
    #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
    #[bytemuck(crate = "shmchan::bytemuck")]
    #[repr(C)]
    pub struct Tick {
        pub seq: u64,
        pub px: f64,
    }
}

mod added {
    #[derive(Clone, Copy, shmchan::Pod, shmchan::Zeroable, shmchan::Schema)]
    #[bytemuck(crate = "shmchan::bytemuck")]
    #[repr(C)]
    pub struct Tick {
        pub seq: u64,
        pub price: f64,
        pub qty: u64,
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
seq_price!(market::v2::Tick, market::v2::plain::Tick, reordered::Tick);

impl Tick for retyped::Tick {
    fn make(seq: u64) -> Self {
        Self {
            seq,
            price: price(seq).to_bits(),
        }
    }
    fn check(&self) -> Option<u64> {
        (self.price == price(self.seq).to_bits()).then_some(self.seq)
    }
}

impl Tick for renamed::Tick {
    fn make(seq: u64) -> Self {
        Self {
            seq,
            px: price(seq),
        }
    }
    fn check(&self) -> Option<u64> {
        (self.px == price(self.seq)).then_some(self.seq)
    }
}

impl Tick for added::Tick {
    fn make(seq: u64) -> Self {
        Self {
            seq,
            price: price(seq),
            qty: seq,
        }
    }
    fn check(&self) -> Option<u64> {
        (self.price == price(self.seq) && self.qty == self.seq).then_some(self.seq)
    }
}

fn main() {
    ticks::main(|role, backing, variant, n| {
        match variant {
            "derived" => ticks::run::<market::v2::Tick>(role, backing, n),
            "plain" => ticks::run::<market::v2::plain::Tick>(role, backing, n),
            "retyped" => ticks::run::<retyped::Tick>(role, backing, n),
            "reordered" => ticks::run::<reordered::Tick>(role, backing, n),
            "renamed" => ticks::run::<renamed::Tick>(role, backing, n),
            "added" => ticks::run::<added::Tick>(role, backing, n),
            _ => return false,
        }
        true
    });
}
