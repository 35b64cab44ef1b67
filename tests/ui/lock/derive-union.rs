// A union has no wire format to lock.
#[derive(upshift::Schema)]
pub union Bits {
    pub word: u32,
    pub bytes: [u8; 4],
}

fn main() {}
