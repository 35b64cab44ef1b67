#[upshift::state]
pub mod store {
    #[version(1)]
    pub enum Mode { Fast, Safe, Legacy }

    #[version(2)]
    pub enum Mode { Fast, Safe }
}

fn main() {}
