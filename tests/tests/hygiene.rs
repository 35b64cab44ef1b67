//! Generated code uses only absolute paths: it compiles in a module without
//! the prelude, next to items that shadow every prelude name it could use.

#[no_implicit_prelude]
#[allow(dead_code, non_camel_case_types)]
mod hygiene {
    #[::upshift::interface]
    pub mod counter {
        // Each of these would capture a bare name in generated code. Primitive
        // types are not shadowed: serde's derive, which the messages use, names
        // `str` directly.
        pub struct Result;
        pub struct Option;
        pub struct Box;
        pub struct Vec;
        pub struct String;
        pub struct Send;
        pub struct Sync;
        pub struct Sized;
        pub struct Ok;
        pub struct Err;
        pub struct Some;
        pub struct None;
        pub struct Pin;
        pub struct Into;
        pub struct From;
        pub struct Arc;
        pub struct Default;
        pub struct Clone;
        pub struct Debug;
        pub struct Duration;
        pub mod upshift {}
        pub mod core {}
        pub mod std {}
        pub mod serde {}

        #[version(1)]
        pub trait Counter {
            async fn add(&self, n: u64) -> u64;
            async fn label(&self) -> ::std::string::String;
        }

        #[version(2)]
        pub trait Counter {
            async fn add(&self, n: u64, times: u32) -> u64;
            async fn label(&self) -> ::std::string::String;
        }
    }

    pub struct Count(pub ::std::sync::atomic::AtomicU64);

    impl counter::v2::Counter for Count {
        async fn add(&self, n: u64, times: u32) -> u64 {
            let add = n * times as u64;
            self.0
                .fetch_add(add, ::std::sync::atomic::Ordering::Relaxed)
                + add
        }

        async fn label(&self) -> ::std::string::String {
            ::std::borrow::ToOwned::to_owned("count")
        }
    }

    impl<N: counter::v2::Interface> counter::v1::Past for counter::v1::PastSo<N> {
        async fn add(&self, n: u64) -> ::core::result::Result<u64, ::upshift::Disallowed> {
            self.next.add(n, 1).await
        }
    }
}

#[no_implicit_prelude]
#[allow(dead_code, non_camel_case_types)]
mod state_hygiene {
    #[::upshift::state(name = "hygiene")]
    pub mod store {
        pub struct Result;
        pub struct Option;
        pub struct Vec;
        pub struct Ok;
        pub struct Err;
        pub struct Some;
        pub struct None;
        pub struct Default;
        pub mod upshift {}
        pub mod core {}
        pub mod std {}

        #[version(1)]
        pub struct Root {
            pub items: ::std::vec::Vec<u32>,
            pub label: ::std::string::String,
        }

        #[version(2)]
        pub struct Root {
            #[upshift(with = count)]
            pub items: u64,
            #[upshift(from = "label")]
            pub name: ::std::string::String,
            #[upshift(default)]
            pub extra: ::core::option::Option<Leaf>,
        }

        #[version(2)]
        pub struct Leaf(pub u8);

        fn count(
            items: ::std::vec::Vec<u32>,
        ) -> ::core::result::Result<u64, ::std::string::String> {
            ::core::result::Result::Ok(items.len() as u64)
        }
    }
}

#[test]
fn generated_state_code_needs_no_prelude() {
    use state_hygiene::store;
    let old = store::v1::Root {
        items: vec![1, 2, 3],
        label: "x".into(),
    };
    let new = <store::v2::Root as upshift::state::Upgrade<_>>::upgrade(old).expect("transform");
    assert_eq!(
        (new.items, new.name.as_str(), new.extra.is_none()),
        (3, "x", true)
    );
}

#[tokio::test]
async fn generated_code_needs_no_prelude() {
    use hygiene::counter::{v1, v2};
    let server = upshift::Server::new(v2::service(hygiene::Count(Default::default())));
    let conn = server.connect_in_memory();
    assert_eq!(
        v1::Client::new(conn.clone()).add(2).await.expect("v1 add"),
        2
    );
    assert_eq!(
        v2::Client::new(conn.clone())
            .add(2, 3)
            .await
            .expect("v2 add"),
        8
    );
    assert_eq!(v1::Client::new(conn).label().await.expect("label"), "count");
}
