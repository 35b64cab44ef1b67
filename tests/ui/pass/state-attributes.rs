// Every field attribute in one state, and loading through the chain.
use std::collections::BTreeMap;

#[upshift::state(name = "demo")]
pub mod demo {
    use std::collections::BTreeMap;

    #[version(1)]
    #[derive(Debug, Default)]
    pub struct Root {
        pub names: BTreeMap<String, String>,
        pub legacy: u8,
    }

    #[version(2)]
    #[derive(Debug)]
    pub struct Root {
        #[upshift(from = "names", with = wrap)]
        pub people: BTreeMap<String, Person>,
        #[upshift(default = start)]
        pub generation: u64,
    }

    #[version(2)]
    #[derive(Debug)]
    pub struct Person(pub String);

    fn wrap(names: BTreeMap<String, String>) -> BTreeMap<String, v2::Person> {
        names.into_iter().map(|(k, v)| (k, v2::Person(v))).collect()
    }

    fn start() -> u64 {
        1
    }
}

fn main() {
    use upshift::state::Versioned;
    let mut names = BTreeMap::new();
    names.insert("a".to_string(), "Ann".to_string());
    let old = postcard::to_allocvec(&demo::v1::Root { names, legacy: 3 }).unwrap();
    let new = demo::v2::Root::decode_from(1, &old).unwrap();
    assert_eq!(new.people["a"].0, "Ann");
    assert_eq!(new.generation, 1);
}
