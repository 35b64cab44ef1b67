// Expansion of the #[upshift::interface] module in examples/src/kv.rs.
// Regenerate with: UPSHIFT_BLESS=1 cargo test -p upshift-macros

pub mod interface {
    use serde::{Deserialize, Serialize};
    /// A value with what the node knows of its expiry (v3 and later).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, upshift::Schema)]
    pub struct Entry {
        /// The stored value.
        pub value: String,
        /// When the value expires.
        pub expiry: Expiry,
    }
    /// When a value expires.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, upshift::Schema)]
    pub enum Expiry {
        /// It was stored without a TTL.
        Never,
        /// It expires in this many seconds (rounded up).
        InSecs(u64),
        /// The node that answered cannot tell (a v2 node behind a future SO).
        Unknown,
    }
    /// The service's name on the wire.
    pub const SERVICE: &::core::primitive::str = "Kv";
    /// The schema of every version, ascending.
    pub static VERSIONS: &[&::upshift::schema::InterfaceSchema] = &[
        &v1::SCHEMA,
        &v2::SCHEMA,
        &v3::SCHEMA,
    ];
    #[doc(hidden)]
    pub const __DOCS_JSON: &::core::primitive::str = "[{\"service\":\"Kv\",\"version\":1,\"doc\":\"v1: a plain string store.\",\"methods\":[{\"name\":\"get\",\"index\":0,\"args\":[{\"name\":\"key\",\"type\":\"String\"}],\"returns\":\"Option<String>\",\"change\":\"added\"},{\"name\":\"put\",\"index\":1,\"args\":[{\"name\":\"key\",\"type\":\"String\"},{\"name\":\"value\",\"type\":\"String\"}],\"returns\":\"()\",\"change\":\"added\"}],\"removed\":[]},{\"service\":\"Kv\",\"version\":2,\"doc\":\"v2: values may expire; adds delete.\",\"methods\":[{\"name\":\"get\",\"index\":0,\"args\":[{\"name\":\"key\",\"type\":\"String\"}],\"returns\":\"Option<String>\",\"change\":\"unchanged\"},{\"name\":\"put\",\"index\":1,\"args\":[{\"name\":\"key\",\"type\":\"String\"},{\"name\":\"value\",\"type\":\"String\"},{\"name\":\"ttl_secs\",\"type\":\"Option<u64>\"}],\"returns\":\"()\",\"change\":\"changed\"},{\"name\":\"delete\",\"index\":2,\"args\":[{\"name\":\"key\",\"type\":\"String\"}],\"returns\":\"bool\",\"change\":\"added\"}],\"removed\":[]},{\"service\":\"Kv\",\"version\":3,\"doc\":\"v3: `get` tells when the value expires; adds listing keys.\",\"methods\":[{\"name\":\"get\",\"index\":0,\"args\":[{\"name\":\"key\",\"type\":\"String\"}],\"returns\":\"Option<Entry>\",\"change\":\"changed\"},{\"name\":\"put\",\"index\":1,\"args\":[{\"name\":\"key\",\"type\":\"String\"},{\"name\":\"value\",\"type\":\"String\"},{\"name\":\"ttl_secs\",\"type\":\"Option<u64>\"}],\"returns\":\"()\",\"change\":\"unchanged\"},{\"name\":\"delete\",\"index\":2,\"args\":[{\"name\":\"key\",\"type\":\"String\"}],\"returns\":\"bool\",\"change\":\"unchanged\"},{\"name\":\"keys\",\"index\":3,\"args\":[{\"name\":\"prefix\",\"type\":\"String\"}],\"returns\":\"Vec<String>\",\"change\":\"added\"}],\"removed\":[]}]\n";
    const _: ::core::option::Option<&::core::primitive::str> = ::core::option_env!(
        "UPSHIFT_LOCK"
    );
    const _: ::core::option::Option<&::core::primitive::str> = ::core::option_env!(
        "UPSHIFT_LOCK_REPORT"
    );
    /// Version 1 of the `Kv` interface.
    ///
    /// v1: a plain string store.
    ///
    /// The first version declared: 2 methods.
    pub mod v1 {
        #[allow(unused_imports)]
        use super::*;
        /// This version's number.
        pub const VERSION: ::core::primitive::u32 = 1u32;
        /// v1: a plain string store.
        pub trait Kv: ::core::marker::Send + ::core::marker::Sync + 'static {
            /// The value stored under `key`.
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = Option<String>,
            > + ::core::marker::Send;
            /// Stores `value` under `key`, replacing any previous value.
            fn put(
                &self,
                key: String,
                value: String,
            ) -> impl ::core::future::Future<Output = ()> + ::core::marker::Send;
        }
        #[automatically_derived]
        impl<__T: Kv + ?::core::marker::Sized> Kv for ::std::sync::Arc<__T> {
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = Option<String>,
            > + ::core::marker::Send {
                <__T as Kv>::get(&**self, key)
            }
            fn put(
                &self,
                key: String,
                value: String,
            ) -> impl ::core::future::Future<Output = ()> + ::core::marker::Send {
                <__T as Kv>::put(&**self, key, value)
            }
        }
        /// Anything that answers this version's calls: a service object of
        /// this version, or a chain of SOs that ends in an object of another.
        pub trait Interface: ::core::marker::Send + ::core::marker::Sync + 'static {
            /// The value stored under `key`.
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Option<String>, ::upshift::Disallowed>,
            > + ::core::marker::Send;
            /// Stores `value` under `key`, replacing any previous value.
            fn put(
                &self,
                key: String,
                value: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), ::upshift::Disallowed>,
            > + ::core::marker::Send;
        }
        #[automatically_derived]
        impl<__T: Kv> Interface for __T {
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Option<String>, ::upshift::Disallowed>,
            > + ::core::marker::Send {
                let __future = <__T as Kv>::get(self, key);
                async move { ::core::result::Result::Ok(__future.await) }
            }
            fn put(
                &self,
                key: String,
                value: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), ::upshift::Disallowed>,
            > + ::core::marker::Send {
                let __future = <__T as Kv>::put(self, key, value);
                async move { ::core::result::Result::Ok(__future.await) }
            }
        }
        /// A call of this version: the method and its arguments. On the wire
        /// the method travels as its index and the fields as the payload.
        #[derive(
            ::upshift::__private::serde::Serialize,
            ::upshift::__private::serde::Deserialize
        )]
        #[serde(crate = "::upshift::__private::serde")]
        pub enum Request {
            /// Arguments of `get`.
            Get {
                /// Argument `key`.
                key: String,
            },
            /// Arguments of `put`.
            Put {
                /// Argument `key`.
                key: String,
                /// Argument `value`.
                value: String,
            },
        }
        impl Request {
            /// The method's index on the wire (its declaration order).
            pub fn method(&self) -> ::core::primitive::u16 {
                match *self {
                    Request::Get { .. } => 0u16,
                    Request::Put { .. } => 1u16,
                }
            }
            /// Decodes the payload of a call to method `method`.
            pub fn decode(
                __method: ::core::primitive::u16,
                __payload: &[::core::primitive::u8],
            ) -> ::core::result::Result<Self, ::upshift::DispatchError> {
                match __method {
                    0u16 => {
                        let (key,): (String,) = ::upshift::__private::decode_args(
                            super::SERVICE,
                            VERSION,
                            "get",
                            __payload,
                        )?;
                        ::core::result::Result::Ok(Request::Get { key })
                    }
                    1u16 => {
                        let (key, value): (String, String) = ::upshift::__private::decode_args(
                            super::SERVICE,
                            VERSION,
                            "put",
                            __payload,
                        )?;
                        ::core::result::Result::Ok(Request::Put { key, value })
                    }
                    _ => {
                        ::core::result::Result::Err(::upshift::DispatchError::UnknownMethod {
                            service: super::SERVICE,
                            version: VERSION,
                            method: __method,
                            count: 2usize,
                        })
                    }
                }
            }
        }
        /// The answer to a call of this version; on the wire, the payload of an `Ok` reply.
        #[derive(
            ::upshift::__private::serde::Serialize,
            ::upshift::__private::serde::Deserialize
        )]
        #[serde(crate = "::upshift::__private::serde")]
        pub enum Response {
            /// Return value of `get`.
            Get(Option<String>),
            /// Return value of `put`.
            Put(()),
        }
        impl Response {
            /// Appends the return value, as the reply payload carries it.
            pub fn encode(
                &self,
                __out: &mut ::std::vec::Vec<::core::primitive::u8>,
            ) -> ::core::result::Result<(), ::upshift::DispatchError> {
                match *self {
                    Response::Get(ref __value) => {
                        ::upshift::__private::encode_return(__value, __out)
                    }
                    Response::Put(ref __value) => {
                        ::upshift::__private::encode_return(__value, __out)
                    }
                }
            }
        }
        /// Serves this version's calls on a node through `I`: the node's
        /// object, or an SO chain that ends in it.
        #[derive(::core::fmt::Debug)]
        pub struct Dispatcher<I>(pub I);
        #[automatically_derived]
        impl<I: Interface> ::upshift::Dispatch for Dispatcher<I> {
            fn schema(&self) -> &'static ::upshift::schema::InterfaceSchema {
                &SCHEMA
            }
            #[allow(unreachable_code)]
            fn call<'__a>(
                &'__a self,
                __method: ::core::primitive::u16,
                __payload: &'__a [::core::primitive::u8],
                __out: &'__a mut ::std::vec::Vec<::core::primitive::u8>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), ::upshift::DispatchError>,
            > + ::core::marker::Send + '__a {
                async move {
                    let __response: Response = match Request::decode(
                        __method,
                        __payload,
                    )? {
                        Request::Get { key } => {
                            Response::Get(Interface::get(&self.0, key).await?)
                        }
                        Request::Put { key, value } => {
                            Response::Put(Interface::put(&self.0, key, value).await?)
                        }
                    };
                    __response.encode(__out)
                }
            }
        }
        /// Calls the `Kv` service as a v1 caller: every call is tagged v1, and any node that answers v1 (itself, or through its SOs) serves it.
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        pub struct Client {
            conn: ::upshift::Connection,
            options: ::upshift::CallOptions,
        }
        impl Client {
            /// A client that calls over `conn` with the connection's default
            /// deadline and no retries.
            pub fn new(conn: ::upshift::Connection) -> Self {
                Client {
                    options: conn.default_options(),
                    conn,
                }
            }
            /// The same client with another deadline for each call, retries included.
            pub fn with_deadline(mut self, deadline: ::core::time::Duration) -> Self {
                self.options.deadline = deadline;
                self
            }
            /// The same client, retrying calls the node did not run (it was
            /// upgrading, or did not speak this version yet) as `policy` says.
            pub fn with_retry(mut self, policy: ::upshift::RetryPolicy) -> Self {
                self.options.retry = ::core::option::Option::Some(policy);
                self
            }
            /// The connection this client calls over.
            pub fn connection(&self) -> &::upshift::Connection {
                &self.conn
            }
            /// The value stored under `key`.
            pub async fn get(
                &self,
                key: String,
            ) -> ::core::result::Result<Option<String>, ::upshift::CallError> {
                self.conn
                    .call(super::SERVICE, VERSION, 0u16, &(&key,), &self.options)
                    .await
            }
            /// Stores `value` under `key`, replacing any previous value.
            pub async fn put(
                &self,
                key: String,
                value: String,
            ) -> ::core::result::Result<(), ::upshift::CallError> {
                self.conn
                    .call(super::SERVICE, VERSION, 1u16, &(&key, &value), &self.options)
                    .await
            }
        }
        /// Past SO: serves v1 callers on a node that runs v2, through `next`, anything that answers v2 calls.
        #[derive(::core::fmt::Debug, ::core::clone::Clone)]
        pub struct PastSo<N> {
            /// The v2 side this SO calls into.
            pub next: N,
        }
        impl<N> PastSo<N> {
            /// Wraps the neighbouring version's object or SO chain.
            pub const fn new(next: N) -> Self {
                PastSo { next }
            }
        }
        #[doc(hidden)]
        pub trait __PastNext {
            type Target: super::v2::Interface;
            fn __next(&self) -> &Self::Target;
        }
        #[automatically_derived]
        impl<N: super::v2::Interface> __PastNext for PastSo<N> {
            type Target = N;
            fn __next(&self) -> &N {
                &self.next
            }
        }
        /// What the developer writes for [`PastSo`]: every v1 method whose signature differs in v2 (or that v2 lacks); the others delegate by default.
        pub trait Past: __PastNext + ::core::marker::Send + ::core::marker::Sync + 'static {
            /// The value stored under `key`.
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Option<String>, ::upshift::Disallowed>,
            > + ::core::marker::Send {
                <<Self as __PastNext>::Target as super::v2::Interface>::get(
                    self.__next(),
                    key,
                )
            }
            /// Stores `value` under `key`, replacing any previous value.
            fn put(
                &self,
                key: String,
                value: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), ::upshift::Disallowed>,
            > + ::core::marker::Send;
        }
        #[automatically_derived]
        impl<N: super::v2::Interface> Interface for PastSo<N>
        where
            Self: Past,
        {
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Option<String>, ::upshift::Disallowed>,
            > + ::core::marker::Send {
                <Self as Past>::get(self, key)
            }
            fn put(
                &self,
                key: String,
                value: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), ::upshift::Disallowed>,
            > + ::core::marker::Send {
                <Self as Past>::put(self, key, value)
            }
        }
        /// A node's service at this version: `object` answers this
        /// version's calls, and the chain of past SOs answers every older one.
        pub fn service<__O: Kv>(object: __O) -> ::upshift::Service {
            let __object = ::std::sync::Arc::new(object);
            ::upshift::Service::new(
                Dispatcher(
                    <::std::sync::Arc<__O> as ::core::clone::Clone>::clone(&__object),
                ),
            )
        }
        /// Like [`service`], and also serves every newer version (up to v3) through the chain of future SOs.
        pub fn service_with_future<__O: Kv>(object: __O) -> ::upshift::Service
        where
            super::v2::FutureSo<::std::sync::Arc<__O>>: super::v2::Future,
            super::v3::FutureSo<
                super::v2::FutureSo<::std::sync::Arc<__O>>,
            >: super::v3::Future,
        {
            let __object = ::std::sync::Arc::new(object);
            ::upshift::Service::new(
                    Dispatcher(
                        <::std::sync::Arc<__O> as ::core::clone::Clone>::clone(&__object),
                    ),
                )
                .with_version(
                    super::v2::Dispatcher(
                        super::v2::FutureSo::new(
                            <::std::sync::Arc<
                                __O,
                            > as ::core::clone::Clone>::clone(&__object),
                        ),
                    ),
                )
                .with_version(
                    super::v3::Dispatcher(
                        super::v3::FutureSo::new(
                            super::v2::FutureSo::new(
                                <::std::sync::Arc<
                                    __O,
                                > as ::core::clone::Clone>::clone(&__object),
                            ),
                        ),
                    ),
                )
        }
        /// The methods of this version and how each relates to the previous one.
        pub static SCHEMA: ::upshift::schema::InterfaceSchema = ::upshift::schema::InterfaceSchema {
            service: super::SERVICE,
            version: 1u32,
            doc: "v1: a plain string store.",
            methods: &[
                ::upshift::schema::MethodSchema {
                    name: "get",
                    index: 0u16,
                    args: &[
                        ::upshift::schema::ArgSchema {
                            name: "key",
                            ty: "String",
                        },
                    ],
                    returns: "Option<String>",
                    change: ::upshift::schema::Change::Added,
                },
                ::upshift::schema::MethodSchema {
                    name: "put",
                    index: 1u16,
                    args: &[
                        ::upshift::schema::ArgSchema {
                            name: "key",
                            ty: "String",
                        },
                        ::upshift::schema::ArgSchema {
                            name: "value",
                            ty: "String",
                        },
                    ],
                    returns: "()",
                    change: ::upshift::schema::Change::Added,
                },
            ],
            removed: &[],
        };
        const _: () = {
            ::upshift::schema::require::<String>();
            ::upshift::schema::require::<Option<String>>();
            ::upshift::schema::require::<()>();
        };
    }
    /// Version 2 of the `Kv` interface.
    ///
    /// v2: values may expire; adds delete.
    ///
    /// Changes since v1: added `delete`; changed `put`. Covered by the SOs: `v1::Past` implements `put`; `v2::Future` implements `put`, `delete`.
    pub mod v2 {
        #[allow(unused_imports)]
        use super::*;
        /// This version's number.
        pub const VERSION: ::core::primitive::u32 = 2u32;
        /// v2: values may expire; adds delete.
        pub trait Kv: ::core::marker::Send + ::core::marker::Sync + 'static {
            /// The value stored under `key`, unless it expired.
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = Option<String>,
            > + ::core::marker::Send;
            /// Stores `value` under `key`; it expires after `ttl_secs` if given.
            fn put(
                &self,
                key: String,
                value: String,
                ttl_secs: Option<u64>,
            ) -> impl ::core::future::Future<Output = ()> + ::core::marker::Send;
            /// Removes `key`; returns whether it was present.
            fn delete(
                &self,
                key: String,
            ) -> impl ::core::future::Future<Output = bool> + ::core::marker::Send;
        }
        #[automatically_derived]
        impl<__T: Kv + ?::core::marker::Sized> Kv for ::std::sync::Arc<__T> {
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = Option<String>,
            > + ::core::marker::Send {
                <__T as Kv>::get(&**self, key)
            }
            fn put(
                &self,
                key: String,
                value: String,
                ttl_secs: Option<u64>,
            ) -> impl ::core::future::Future<Output = ()> + ::core::marker::Send {
                <__T as Kv>::put(&**self, key, value, ttl_secs)
            }
            fn delete(
                &self,
                key: String,
            ) -> impl ::core::future::Future<Output = bool> + ::core::marker::Send {
                <__T as Kv>::delete(&**self, key)
            }
        }
        /// Anything that answers this version's calls: a service object of
        /// this version, or a chain of SOs that ends in an object of another.
        pub trait Interface: ::core::marker::Send + ::core::marker::Sync + 'static {
            /// The value stored under `key`, unless it expired.
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Option<String>, ::upshift::Disallowed>,
            > + ::core::marker::Send;
            /// Stores `value` under `key`; it expires after `ttl_secs` if given.
            fn put(
                &self,
                key: String,
                value: String,
                ttl_secs: Option<u64>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), ::upshift::Disallowed>,
            > + ::core::marker::Send;
            /// Removes `key`; returns whether it was present.
            fn delete(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<bool, ::upshift::Disallowed>,
            > + ::core::marker::Send;
        }
        #[automatically_derived]
        impl<__T: Kv> Interface for __T {
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Option<String>, ::upshift::Disallowed>,
            > + ::core::marker::Send {
                let __future = <__T as Kv>::get(self, key);
                async move { ::core::result::Result::Ok(__future.await) }
            }
            fn put(
                &self,
                key: String,
                value: String,
                ttl_secs: Option<u64>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), ::upshift::Disallowed>,
            > + ::core::marker::Send {
                let __future = <__T as Kv>::put(self, key, value, ttl_secs);
                async move { ::core::result::Result::Ok(__future.await) }
            }
            fn delete(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<bool, ::upshift::Disallowed>,
            > + ::core::marker::Send {
                let __future = <__T as Kv>::delete(self, key);
                async move { ::core::result::Result::Ok(__future.await) }
            }
        }
        /// A call of this version: the method and its arguments. On the wire
        /// the method travels as its index and the fields as the payload.
        #[derive(
            ::upshift::__private::serde::Serialize,
            ::upshift::__private::serde::Deserialize
        )]
        #[serde(crate = "::upshift::__private::serde")]
        pub enum Request {
            /// Arguments of `get`.
            Get {
                /// Argument `key`.
                key: String,
            },
            /// Arguments of `put`.
            Put {
                /// Argument `key`.
                key: String,
                /// Argument `value`.
                value: String,
                /// Argument `ttl_secs`.
                ttl_secs: Option<u64>,
            },
            /// Arguments of `delete`.
            Delete {
                /// Argument `key`.
                key: String,
            },
        }
        impl Request {
            /// The method's index on the wire (its declaration order).
            pub fn method(&self) -> ::core::primitive::u16 {
                match *self {
                    Request::Get { .. } => 0u16,
                    Request::Put { .. } => 1u16,
                    Request::Delete { .. } => 2u16,
                }
            }
            /// Decodes the payload of a call to method `method`.
            pub fn decode(
                __method: ::core::primitive::u16,
                __payload: &[::core::primitive::u8],
            ) -> ::core::result::Result<Self, ::upshift::DispatchError> {
                match __method {
                    0u16 => {
                        let (key,): (String,) = ::upshift::__private::decode_args(
                            super::SERVICE,
                            VERSION,
                            "get",
                            __payload,
                        )?;
                        ::core::result::Result::Ok(Request::Get { key })
                    }
                    1u16 => {
                        let (key, value, ttl_secs): (String, String, Option<u64>) = ::upshift::__private::decode_args(
                            super::SERVICE,
                            VERSION,
                            "put",
                            __payload,
                        )?;
                        ::core::result::Result::Ok(Request::Put {
                            key,
                            value,
                            ttl_secs,
                        })
                    }
                    2u16 => {
                        let (key,): (String,) = ::upshift::__private::decode_args(
                            super::SERVICE,
                            VERSION,
                            "delete",
                            __payload,
                        )?;
                        ::core::result::Result::Ok(Request::Delete { key })
                    }
                    _ => {
                        ::core::result::Result::Err(::upshift::DispatchError::UnknownMethod {
                            service: super::SERVICE,
                            version: VERSION,
                            method: __method,
                            count: 3usize,
                        })
                    }
                }
            }
        }
        /// The answer to a call of this version; on the wire, the payload of an `Ok` reply.
        #[derive(
            ::upshift::__private::serde::Serialize,
            ::upshift::__private::serde::Deserialize
        )]
        #[serde(crate = "::upshift::__private::serde")]
        pub enum Response {
            /// Return value of `get`.
            Get(Option<String>),
            /// Return value of `put`.
            Put(()),
            /// Return value of `delete`.
            Delete(bool),
        }
        impl Response {
            /// Appends the return value, as the reply payload carries it.
            pub fn encode(
                &self,
                __out: &mut ::std::vec::Vec<::core::primitive::u8>,
            ) -> ::core::result::Result<(), ::upshift::DispatchError> {
                match *self {
                    Response::Get(ref __value) => {
                        ::upshift::__private::encode_return(__value, __out)
                    }
                    Response::Put(ref __value) => {
                        ::upshift::__private::encode_return(__value, __out)
                    }
                    Response::Delete(ref __value) => {
                        ::upshift::__private::encode_return(__value, __out)
                    }
                }
            }
        }
        /// Serves this version's calls on a node through `I`: the node's
        /// object, or an SO chain that ends in it.
        #[derive(::core::fmt::Debug)]
        pub struct Dispatcher<I>(pub I);
        #[automatically_derived]
        impl<I: Interface> ::upshift::Dispatch for Dispatcher<I> {
            fn schema(&self) -> &'static ::upshift::schema::InterfaceSchema {
                &SCHEMA
            }
            #[allow(unreachable_code)]
            fn call<'__a>(
                &'__a self,
                __method: ::core::primitive::u16,
                __payload: &'__a [::core::primitive::u8],
                __out: &'__a mut ::std::vec::Vec<::core::primitive::u8>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), ::upshift::DispatchError>,
            > + ::core::marker::Send + '__a {
                async move {
                    let __response: Response = match Request::decode(
                        __method,
                        __payload,
                    )? {
                        Request::Get { key } => {
                            Response::Get(Interface::get(&self.0, key).await?)
                        }
                        Request::Put { key, value, ttl_secs } => {
                            Response::Put(
                                Interface::put(&self.0, key, value, ttl_secs).await?,
                            )
                        }
                        Request::Delete { key } => {
                            Response::Delete(Interface::delete(&self.0, key).await?)
                        }
                    };
                    __response.encode(__out)
                }
            }
        }
        /// Calls the `Kv` service as a v2 caller: every call is tagged v2, and any node that answers v2 (itself, or through its SOs) serves it.
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        pub struct Client {
            conn: ::upshift::Connection,
            options: ::upshift::CallOptions,
        }
        impl Client {
            /// A client that calls over `conn` with the connection's default
            /// deadline and no retries.
            pub fn new(conn: ::upshift::Connection) -> Self {
                Client {
                    options: conn.default_options(),
                    conn,
                }
            }
            /// The same client with another deadline for each call, retries included.
            pub fn with_deadline(mut self, deadline: ::core::time::Duration) -> Self {
                self.options.deadline = deadline;
                self
            }
            /// The same client, retrying calls the node did not run (it was
            /// upgrading, or did not speak this version yet) as `policy` says.
            pub fn with_retry(mut self, policy: ::upshift::RetryPolicy) -> Self {
                self.options.retry = ::core::option::Option::Some(policy);
                self
            }
            /// The connection this client calls over.
            pub fn connection(&self) -> &::upshift::Connection {
                &self.conn
            }
            /// The value stored under `key`, unless it expired.
            pub async fn get(
                &self,
                key: String,
            ) -> ::core::result::Result<Option<String>, ::upshift::CallError> {
                self.conn
                    .call(super::SERVICE, VERSION, 0u16, &(&key,), &self.options)
                    .await
            }
            /// Stores `value` under `key`; it expires after `ttl_secs` if given.
            pub async fn put(
                &self,
                key: String,
                value: String,
                ttl_secs: Option<u64>,
            ) -> ::core::result::Result<(), ::upshift::CallError> {
                self.conn
                    .call(
                        super::SERVICE,
                        VERSION,
                        1u16,
                        &(&key, &value, &ttl_secs),
                        &self.options,
                    )
                    .await
            }
            /// Removes `key`; returns whether it was present.
            pub async fn delete(
                &self,
                key: String,
            ) -> ::core::result::Result<bool, ::upshift::CallError> {
                self.conn
                    .call(super::SERVICE, VERSION, 2u16, &(&key,), &self.options)
                    .await
            }
        }
        /// Past SO: serves v2 callers on a node that runs v3, through `next`, anything that answers v3 calls.
        #[derive(::core::fmt::Debug, ::core::clone::Clone)]
        pub struct PastSo<N> {
            /// The v3 side this SO calls into.
            pub next: N,
        }
        impl<N> PastSo<N> {
            /// Wraps the neighbouring version's object or SO chain.
            pub const fn new(next: N) -> Self {
                PastSo { next }
            }
        }
        #[doc(hidden)]
        pub trait __PastNext {
            type Target: super::v3::Interface;
            fn __next(&self) -> &Self::Target;
        }
        #[automatically_derived]
        impl<N: super::v3::Interface> __PastNext for PastSo<N> {
            type Target = N;
            fn __next(&self) -> &N {
                &self.next
            }
        }
        /// What the developer writes for [`PastSo`]: every v2 method whose signature differs in v3 (or that v3 lacks); the others delegate by default.
        pub trait Past: __PastNext + ::core::marker::Send + ::core::marker::Sync + 'static {
            /// The value stored under `key`, unless it expired.
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Option<String>, ::upshift::Disallowed>,
            > + ::core::marker::Send;
            /// Stores `value` under `key`; it expires after `ttl_secs` if given.
            fn put(
                &self,
                key: String,
                value: String,
                ttl_secs: Option<u64>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), ::upshift::Disallowed>,
            > + ::core::marker::Send {
                <<Self as __PastNext>::Target as super::v3::Interface>::put(
                    self.__next(),
                    key,
                    value,
                    ttl_secs,
                )
            }
            /// Removes `key`; returns whether it was present.
            fn delete(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<bool, ::upshift::Disallowed>,
            > + ::core::marker::Send {
                <<Self as __PastNext>::Target as super::v3::Interface>::delete(
                    self.__next(),
                    key,
                )
            }
        }
        #[automatically_derived]
        impl<N: super::v3::Interface> Interface for PastSo<N>
        where
            Self: Past,
        {
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Option<String>, ::upshift::Disallowed>,
            > + ::core::marker::Send {
                <Self as Past>::get(self, key)
            }
            fn put(
                &self,
                key: String,
                value: String,
                ttl_secs: Option<u64>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), ::upshift::Disallowed>,
            > + ::core::marker::Send {
                <Self as Past>::put(self, key, value, ttl_secs)
            }
            fn delete(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<bool, ::upshift::Disallowed>,
            > + ::core::marker::Send {
                <Self as Past>::delete(self, key)
            }
        }
        /// Future SO: serves v2 callers on a node that still runs v1, through `prev`, anything that answers v1 calls.
        #[derive(::core::fmt::Debug, ::core::clone::Clone)]
        pub struct FutureSo<P> {
            /// The v1 side this SO calls into.
            pub prev: P,
        }
        impl<P> FutureSo<P> {
            /// Wraps the neighbouring version's object or SO chain.
            pub const fn new(prev: P) -> Self {
                FutureSo { prev }
            }
        }
        #[doc(hidden)]
        pub trait __FuturePrev {
            type Target: super::v1::Interface;
            fn __prev(&self) -> &Self::Target;
        }
        #[automatically_derived]
        impl<P: super::v1::Interface> __FuturePrev for FutureSo<P> {
            type Target = P;
            fn __prev(&self) -> &P {
                &self.prev
            }
        }
        /// What the developer writes for [`FutureSo`]: every v2 method whose signature differs in v1 (or that v1 lacks); the others delegate by default.
        pub trait Future: __FuturePrev + ::core::marker::Send + ::core::marker::Sync + 'static {
            /// The value stored under `key`, unless it expired.
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Option<String>, ::upshift::Disallowed>,
            > + ::core::marker::Send {
                <<Self as __FuturePrev>::Target as super::v1::Interface>::get(
                    self.__prev(),
                    key,
                )
            }
            /// Stores `value` under `key`; it expires after `ttl_secs` if given.
            fn put(
                &self,
                key: String,
                value: String,
                ttl_secs: Option<u64>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), ::upshift::Disallowed>,
            > + ::core::marker::Send;
            /// Removes `key`; returns whether it was present.
            fn delete(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<bool, ::upshift::Disallowed>,
            > + ::core::marker::Send;
        }
        #[automatically_derived]
        impl<P: super::v1::Interface> Interface for FutureSo<P>
        where
            Self: Future,
        {
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Option<String>, ::upshift::Disallowed>,
            > + ::core::marker::Send {
                <Self as Future>::get(self, key)
            }
            fn put(
                &self,
                key: String,
                value: String,
                ttl_secs: Option<u64>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), ::upshift::Disallowed>,
            > + ::core::marker::Send {
                <Self as Future>::put(self, key, value, ttl_secs)
            }
            fn delete(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<bool, ::upshift::Disallowed>,
            > + ::core::marker::Send {
                <Self as Future>::delete(self, key)
            }
        }
        /// A node's service at this version: `object` answers this
        /// version's calls, and the chain of past SOs answers every older one.
        pub fn service<__O: Kv>(object: __O) -> ::upshift::Service
        where
            super::v1::PastSo<::std::sync::Arc<__O>>: super::v1::Past,
        {
            let __object = ::std::sync::Arc::new(object);
            ::upshift::Service::new(
                    Dispatcher(
                        <::std::sync::Arc<__O> as ::core::clone::Clone>::clone(&__object),
                    ),
                )
                .with_version(
                    super::v1::Dispatcher(
                        super::v1::PastSo::new(
                            <::std::sync::Arc<
                                __O,
                            > as ::core::clone::Clone>::clone(&__object),
                        ),
                    ),
                )
        }
        /// Like [`service`], and also serves every newer version (up to v3) through the chain of future SOs.
        pub fn service_with_future<__O: Kv>(object: __O) -> ::upshift::Service
        where
            super::v1::PastSo<::std::sync::Arc<__O>>: super::v1::Past,
            super::v3::FutureSo<::std::sync::Arc<__O>>: super::v3::Future,
        {
            let __object = ::std::sync::Arc::new(object);
            ::upshift::Service::new(
                    Dispatcher(
                        <::std::sync::Arc<__O> as ::core::clone::Clone>::clone(&__object),
                    ),
                )
                .with_version(
                    super::v1::Dispatcher(
                        super::v1::PastSo::new(
                            <::std::sync::Arc<
                                __O,
                            > as ::core::clone::Clone>::clone(&__object),
                        ),
                    ),
                )
                .with_version(
                    super::v3::Dispatcher(
                        super::v3::FutureSo::new(
                            <::std::sync::Arc<
                                __O,
                            > as ::core::clone::Clone>::clone(&__object),
                        ),
                    ),
                )
        }
        /// The methods of this version and how each relates to the previous one.
        pub static SCHEMA: ::upshift::schema::InterfaceSchema = ::upshift::schema::InterfaceSchema {
            service: super::SERVICE,
            version: 2u32,
            doc: "v2: values may expire; adds delete.",
            methods: &[
                ::upshift::schema::MethodSchema {
                    name: "get",
                    index: 0u16,
                    args: &[
                        ::upshift::schema::ArgSchema {
                            name: "key",
                            ty: "String",
                        },
                    ],
                    returns: "Option<String>",
                    change: ::upshift::schema::Change::Unchanged,
                },
                ::upshift::schema::MethodSchema {
                    name: "put",
                    index: 1u16,
                    args: &[
                        ::upshift::schema::ArgSchema {
                            name: "key",
                            ty: "String",
                        },
                        ::upshift::schema::ArgSchema {
                            name: "value",
                            ty: "String",
                        },
                        ::upshift::schema::ArgSchema {
                            name: "ttl_secs",
                            ty: "Option<u64>",
                        },
                    ],
                    returns: "()",
                    change: ::upshift::schema::Change::Changed,
                },
                ::upshift::schema::MethodSchema {
                    name: "delete",
                    index: 2u16,
                    args: &[
                        ::upshift::schema::ArgSchema {
                            name: "key",
                            ty: "String",
                        },
                    ],
                    returns: "bool",
                    change: ::upshift::schema::Change::Added,
                },
            ],
            removed: &[],
        };
        const _: () = {
            ::upshift::schema::require::<String>();
            ::upshift::schema::require::<Option<String>>();
            ::upshift::schema::require::<Option<u64>>();
            ::upshift::schema::require::<()>();
            ::upshift::schema::require::<bool>();
        };
    }
    /// Version 3 of the `Kv` interface.
    ///
    /// v3: `get` tells when the value expires; adds listing keys.
    ///
    /// Changes since v2: added `keys`; changed `get`. Covered by the SOs: `v2::Past` implements `get`; `v3::Future` implements `get`, `keys`.
    pub mod v3 {
        #[allow(unused_imports)]
        use super::*;
        /// This version's number.
        pub const VERSION: ::core::primitive::u32 = 3u32;
        /// v3: `get` tells when the value expires; adds listing keys.
        pub trait Kv: ::core::marker::Send + ::core::marker::Sync + 'static {
            /// The entry stored under `key`, unless it expired.
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = Option<Entry>,
            > + ::core::marker::Send;
            /// Stores `value` under `key`; it expires after `ttl_secs` if given.
            fn put(
                &self,
                key: String,
                value: String,
                ttl_secs: Option<u64>,
            ) -> impl ::core::future::Future<Output = ()> + ::core::marker::Send;
            /// Removes `key`; returns whether it was present.
            fn delete(
                &self,
                key: String,
            ) -> impl ::core::future::Future<Output = bool> + ::core::marker::Send;
            /// Every live key that starts with `prefix`, in order.
            fn keys(
                &self,
                prefix: String,
            ) -> impl ::core::future::Future<
                Output = Vec<String>,
            > + ::core::marker::Send;
        }
        #[automatically_derived]
        impl<__T: Kv + ?::core::marker::Sized> Kv for ::std::sync::Arc<__T> {
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = Option<Entry>,
            > + ::core::marker::Send {
                <__T as Kv>::get(&**self, key)
            }
            fn put(
                &self,
                key: String,
                value: String,
                ttl_secs: Option<u64>,
            ) -> impl ::core::future::Future<Output = ()> + ::core::marker::Send {
                <__T as Kv>::put(&**self, key, value, ttl_secs)
            }
            fn delete(
                &self,
                key: String,
            ) -> impl ::core::future::Future<Output = bool> + ::core::marker::Send {
                <__T as Kv>::delete(&**self, key)
            }
            fn keys(
                &self,
                prefix: String,
            ) -> impl ::core::future::Future<
                Output = Vec<String>,
            > + ::core::marker::Send {
                <__T as Kv>::keys(&**self, prefix)
            }
        }
        /// Anything that answers this version's calls: a service object of
        /// this version, or a chain of SOs that ends in an object of another.
        pub trait Interface: ::core::marker::Send + ::core::marker::Sync + 'static {
            /// The entry stored under `key`, unless it expired.
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Option<Entry>, ::upshift::Disallowed>,
            > + ::core::marker::Send;
            /// Stores `value` under `key`; it expires after `ttl_secs` if given.
            fn put(
                &self,
                key: String,
                value: String,
                ttl_secs: Option<u64>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), ::upshift::Disallowed>,
            > + ::core::marker::Send;
            /// Removes `key`; returns whether it was present.
            fn delete(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<bool, ::upshift::Disallowed>,
            > + ::core::marker::Send;
            /// Every live key that starts with `prefix`, in order.
            fn keys(
                &self,
                prefix: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Vec<String>, ::upshift::Disallowed>,
            > + ::core::marker::Send;
        }
        #[automatically_derived]
        impl<__T: Kv> Interface for __T {
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Option<Entry>, ::upshift::Disallowed>,
            > + ::core::marker::Send {
                let __future = <__T as Kv>::get(self, key);
                async move { ::core::result::Result::Ok(__future.await) }
            }
            fn put(
                &self,
                key: String,
                value: String,
                ttl_secs: Option<u64>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), ::upshift::Disallowed>,
            > + ::core::marker::Send {
                let __future = <__T as Kv>::put(self, key, value, ttl_secs);
                async move { ::core::result::Result::Ok(__future.await) }
            }
            fn delete(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<bool, ::upshift::Disallowed>,
            > + ::core::marker::Send {
                let __future = <__T as Kv>::delete(self, key);
                async move { ::core::result::Result::Ok(__future.await) }
            }
            fn keys(
                &self,
                prefix: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Vec<String>, ::upshift::Disallowed>,
            > + ::core::marker::Send {
                let __future = <__T as Kv>::keys(self, prefix);
                async move { ::core::result::Result::Ok(__future.await) }
            }
        }
        /// A call of this version: the method and its arguments. On the wire
        /// the method travels as its index and the fields as the payload.
        #[derive(
            ::upshift::__private::serde::Serialize,
            ::upshift::__private::serde::Deserialize
        )]
        #[serde(crate = "::upshift::__private::serde")]
        pub enum Request {
            /// Arguments of `get`.
            Get {
                /// Argument `key`.
                key: String,
            },
            /// Arguments of `put`.
            Put {
                /// Argument `key`.
                key: String,
                /// Argument `value`.
                value: String,
                /// Argument `ttl_secs`.
                ttl_secs: Option<u64>,
            },
            /// Arguments of `delete`.
            Delete {
                /// Argument `key`.
                key: String,
            },
            /// Arguments of `keys`.
            Keys {
                /// Argument `prefix`.
                prefix: String,
            },
        }
        impl Request {
            /// The method's index on the wire (its declaration order).
            pub fn method(&self) -> ::core::primitive::u16 {
                match *self {
                    Request::Get { .. } => 0u16,
                    Request::Put { .. } => 1u16,
                    Request::Delete { .. } => 2u16,
                    Request::Keys { .. } => 3u16,
                }
            }
            /// Decodes the payload of a call to method `method`.
            pub fn decode(
                __method: ::core::primitive::u16,
                __payload: &[::core::primitive::u8],
            ) -> ::core::result::Result<Self, ::upshift::DispatchError> {
                match __method {
                    0u16 => {
                        let (key,): (String,) = ::upshift::__private::decode_args(
                            super::SERVICE,
                            VERSION,
                            "get",
                            __payload,
                        )?;
                        ::core::result::Result::Ok(Request::Get { key })
                    }
                    1u16 => {
                        let (key, value, ttl_secs): (String, String, Option<u64>) = ::upshift::__private::decode_args(
                            super::SERVICE,
                            VERSION,
                            "put",
                            __payload,
                        )?;
                        ::core::result::Result::Ok(Request::Put {
                            key,
                            value,
                            ttl_secs,
                        })
                    }
                    2u16 => {
                        let (key,): (String,) = ::upshift::__private::decode_args(
                            super::SERVICE,
                            VERSION,
                            "delete",
                            __payload,
                        )?;
                        ::core::result::Result::Ok(Request::Delete { key })
                    }
                    3u16 => {
                        let (prefix,): (String,) = ::upshift::__private::decode_args(
                            super::SERVICE,
                            VERSION,
                            "keys",
                            __payload,
                        )?;
                        ::core::result::Result::Ok(Request::Keys { prefix })
                    }
                    _ => {
                        ::core::result::Result::Err(::upshift::DispatchError::UnknownMethod {
                            service: super::SERVICE,
                            version: VERSION,
                            method: __method,
                            count: 4usize,
                        })
                    }
                }
            }
        }
        /// The answer to a call of this version; on the wire, the payload of an `Ok` reply.
        #[derive(
            ::upshift::__private::serde::Serialize,
            ::upshift::__private::serde::Deserialize
        )]
        #[serde(crate = "::upshift::__private::serde")]
        pub enum Response {
            /// Return value of `get`.
            Get(Option<Entry>),
            /// Return value of `put`.
            Put(()),
            /// Return value of `delete`.
            Delete(bool),
            /// Return value of `keys`.
            Keys(Vec<String>),
        }
        impl Response {
            /// Appends the return value, as the reply payload carries it.
            pub fn encode(
                &self,
                __out: &mut ::std::vec::Vec<::core::primitive::u8>,
            ) -> ::core::result::Result<(), ::upshift::DispatchError> {
                match *self {
                    Response::Get(ref __value) => {
                        ::upshift::__private::encode_return(__value, __out)
                    }
                    Response::Put(ref __value) => {
                        ::upshift::__private::encode_return(__value, __out)
                    }
                    Response::Delete(ref __value) => {
                        ::upshift::__private::encode_return(__value, __out)
                    }
                    Response::Keys(ref __value) => {
                        ::upshift::__private::encode_return(__value, __out)
                    }
                }
            }
        }
        /// Serves this version's calls on a node through `I`: the node's
        /// object, or an SO chain that ends in it.
        #[derive(::core::fmt::Debug)]
        pub struct Dispatcher<I>(pub I);
        #[automatically_derived]
        impl<I: Interface> ::upshift::Dispatch for Dispatcher<I> {
            fn schema(&self) -> &'static ::upshift::schema::InterfaceSchema {
                &SCHEMA
            }
            #[allow(unreachable_code)]
            fn call<'__a>(
                &'__a self,
                __method: ::core::primitive::u16,
                __payload: &'__a [::core::primitive::u8],
                __out: &'__a mut ::std::vec::Vec<::core::primitive::u8>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), ::upshift::DispatchError>,
            > + ::core::marker::Send + '__a {
                async move {
                    let __response: Response = match Request::decode(
                        __method,
                        __payload,
                    )? {
                        Request::Get { key } => {
                            Response::Get(Interface::get(&self.0, key).await?)
                        }
                        Request::Put { key, value, ttl_secs } => {
                            Response::Put(
                                Interface::put(&self.0, key, value, ttl_secs).await?,
                            )
                        }
                        Request::Delete { key } => {
                            Response::Delete(Interface::delete(&self.0, key).await?)
                        }
                        Request::Keys { prefix } => {
                            Response::Keys(Interface::keys(&self.0, prefix).await?)
                        }
                    };
                    __response.encode(__out)
                }
            }
        }
        /// Calls the `Kv` service as a v3 caller: every call is tagged v3, and any node that answers v3 (itself, or through its SOs) serves it.
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        pub struct Client {
            conn: ::upshift::Connection,
            options: ::upshift::CallOptions,
        }
        impl Client {
            /// A client that calls over `conn` with the connection's default
            /// deadline and no retries.
            pub fn new(conn: ::upshift::Connection) -> Self {
                Client {
                    options: conn.default_options(),
                    conn,
                }
            }
            /// The same client with another deadline for each call, retries included.
            pub fn with_deadline(mut self, deadline: ::core::time::Duration) -> Self {
                self.options.deadline = deadline;
                self
            }
            /// The same client, retrying calls the node did not run (it was
            /// upgrading, or did not speak this version yet) as `policy` says.
            pub fn with_retry(mut self, policy: ::upshift::RetryPolicy) -> Self {
                self.options.retry = ::core::option::Option::Some(policy);
                self
            }
            /// The connection this client calls over.
            pub fn connection(&self) -> &::upshift::Connection {
                &self.conn
            }
            /// The entry stored under `key`, unless it expired.
            pub async fn get(
                &self,
                key: String,
            ) -> ::core::result::Result<Option<Entry>, ::upshift::CallError> {
                self.conn
                    .call(super::SERVICE, VERSION, 0u16, &(&key,), &self.options)
                    .await
            }
            /// Stores `value` under `key`; it expires after `ttl_secs` if given.
            pub async fn put(
                &self,
                key: String,
                value: String,
                ttl_secs: Option<u64>,
            ) -> ::core::result::Result<(), ::upshift::CallError> {
                self.conn
                    .call(
                        super::SERVICE,
                        VERSION,
                        1u16,
                        &(&key, &value, &ttl_secs),
                        &self.options,
                    )
                    .await
            }
            /// Removes `key`; returns whether it was present.
            pub async fn delete(
                &self,
                key: String,
            ) -> ::core::result::Result<bool, ::upshift::CallError> {
                self.conn
                    .call(super::SERVICE, VERSION, 2u16, &(&key,), &self.options)
                    .await
            }
            /// Every live key that starts with `prefix`, in order.
            pub async fn keys(
                &self,
                prefix: String,
            ) -> ::core::result::Result<Vec<String>, ::upshift::CallError> {
                self.conn
                    .call(super::SERVICE, VERSION, 3u16, &(&prefix,), &self.options)
                    .await
            }
        }
        /// Future SO: serves v3 callers on a node that still runs v2, through `prev`, anything that answers v2 calls.
        #[derive(::core::fmt::Debug, ::core::clone::Clone)]
        pub struct FutureSo<P> {
            /// The v2 side this SO calls into.
            pub prev: P,
        }
        impl<P> FutureSo<P> {
            /// Wraps the neighbouring version's object or SO chain.
            pub const fn new(prev: P) -> Self {
                FutureSo { prev }
            }
        }
        #[doc(hidden)]
        pub trait __FuturePrev {
            type Target: super::v2::Interface;
            fn __prev(&self) -> &Self::Target;
        }
        #[automatically_derived]
        impl<P: super::v2::Interface> __FuturePrev for FutureSo<P> {
            type Target = P;
            fn __prev(&self) -> &P {
                &self.prev
            }
        }
        /// What the developer writes for [`FutureSo`]: every v3 method whose signature differs in v2 (or that v2 lacks); the others delegate by default.
        pub trait Future: __FuturePrev + ::core::marker::Send + ::core::marker::Sync + 'static {
            /// The entry stored under `key`, unless it expired.
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Option<Entry>, ::upshift::Disallowed>,
            > + ::core::marker::Send;
            /// Stores `value` under `key`; it expires after `ttl_secs` if given.
            fn put(
                &self,
                key: String,
                value: String,
                ttl_secs: Option<u64>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), ::upshift::Disallowed>,
            > + ::core::marker::Send {
                <<Self as __FuturePrev>::Target as super::v2::Interface>::put(
                    self.__prev(),
                    key,
                    value,
                    ttl_secs,
                )
            }
            /// Removes `key`; returns whether it was present.
            fn delete(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<bool, ::upshift::Disallowed>,
            > + ::core::marker::Send {
                <<Self as __FuturePrev>::Target as super::v2::Interface>::delete(
                    self.__prev(),
                    key,
                )
            }
            /// Every live key that starts with `prefix`, in order.
            fn keys(
                &self,
                prefix: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Vec<String>, ::upshift::Disallowed>,
            > + ::core::marker::Send;
        }
        #[automatically_derived]
        impl<P: super::v2::Interface> Interface for FutureSo<P>
        where
            Self: Future,
        {
            fn get(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Option<Entry>, ::upshift::Disallowed>,
            > + ::core::marker::Send {
                <Self as Future>::get(self, key)
            }
            fn put(
                &self,
                key: String,
                value: String,
                ttl_secs: Option<u64>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), ::upshift::Disallowed>,
            > + ::core::marker::Send {
                <Self as Future>::put(self, key, value, ttl_secs)
            }
            fn delete(
                &self,
                key: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<bool, ::upshift::Disallowed>,
            > + ::core::marker::Send {
                <Self as Future>::delete(self, key)
            }
            fn keys(
                &self,
                prefix: String,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Vec<String>, ::upshift::Disallowed>,
            > + ::core::marker::Send {
                <Self as Future>::keys(self, prefix)
            }
        }
        /// A node's service at this version: `object` answers this
        /// version's calls, and the chain of past SOs answers every older one.
        pub fn service<__O: Kv>(object: __O) -> ::upshift::Service
        where
            super::v2::PastSo<::std::sync::Arc<__O>>: super::v2::Past,
            super::v1::PastSo<super::v2::PastSo<::std::sync::Arc<__O>>>: super::v1::Past,
        {
            let __object = ::std::sync::Arc::new(object);
            ::upshift::Service::new(
                    Dispatcher(
                        <::std::sync::Arc<__O> as ::core::clone::Clone>::clone(&__object),
                    ),
                )
                .with_version(
                    super::v2::Dispatcher(
                        super::v2::PastSo::new(
                            <::std::sync::Arc<
                                __O,
                            > as ::core::clone::Clone>::clone(&__object),
                        ),
                    ),
                )
                .with_version(
                    super::v1::Dispatcher(
                        super::v1::PastSo::new(
                            super::v2::PastSo::new(
                                <::std::sync::Arc<
                                    __O,
                                > as ::core::clone::Clone>::clone(&__object),
                            ),
                        ),
                    ),
                )
        }
        /// The same as [`service`]: v3 is the newest version, there is nothing to simulate ahead.
        pub fn service_with_future<__O: Kv>(object: __O) -> ::upshift::Service
        where
            super::v2::PastSo<::std::sync::Arc<__O>>: super::v2::Past,
            super::v1::PastSo<super::v2::PastSo<::std::sync::Arc<__O>>>: super::v1::Past,
        {
            let __object = ::std::sync::Arc::new(object);
            ::upshift::Service::new(
                    Dispatcher(
                        <::std::sync::Arc<__O> as ::core::clone::Clone>::clone(&__object),
                    ),
                )
                .with_version(
                    super::v2::Dispatcher(
                        super::v2::PastSo::new(
                            <::std::sync::Arc<
                                __O,
                            > as ::core::clone::Clone>::clone(&__object),
                        ),
                    ),
                )
                .with_version(
                    super::v1::Dispatcher(
                        super::v1::PastSo::new(
                            super::v2::PastSo::new(
                                <::std::sync::Arc<
                                    __O,
                                > as ::core::clone::Clone>::clone(&__object),
                            ),
                        ),
                    ),
                )
        }
        /// The methods of this version and how each relates to the previous one.
        pub static SCHEMA: ::upshift::schema::InterfaceSchema = ::upshift::schema::InterfaceSchema {
            service: super::SERVICE,
            version: 3u32,
            doc: "v3: `get` tells when the value expires; adds listing keys.",
            methods: &[
                ::upshift::schema::MethodSchema {
                    name: "get",
                    index: 0u16,
                    args: &[
                        ::upshift::schema::ArgSchema {
                            name: "key",
                            ty: "String",
                        },
                    ],
                    returns: "Option<Entry>",
                    change: ::upshift::schema::Change::Changed,
                },
                ::upshift::schema::MethodSchema {
                    name: "put",
                    index: 1u16,
                    args: &[
                        ::upshift::schema::ArgSchema {
                            name: "key",
                            ty: "String",
                        },
                        ::upshift::schema::ArgSchema {
                            name: "value",
                            ty: "String",
                        },
                        ::upshift::schema::ArgSchema {
                            name: "ttl_secs",
                            ty: "Option<u64>",
                        },
                    ],
                    returns: "()",
                    change: ::upshift::schema::Change::Unchanged,
                },
                ::upshift::schema::MethodSchema {
                    name: "delete",
                    index: 2u16,
                    args: &[
                        ::upshift::schema::ArgSchema {
                            name: "key",
                            ty: "String",
                        },
                    ],
                    returns: "bool",
                    change: ::upshift::schema::Change::Unchanged,
                },
                ::upshift::schema::MethodSchema {
                    name: "keys",
                    index: 3u16,
                    args: &[
                        ::upshift::schema::ArgSchema {
                            name: "prefix",
                            ty: "String",
                        },
                    ],
                    returns: "Vec<String>",
                    change: ::upshift::schema::Change::Added,
                },
            ],
            removed: &[],
        };
        const _: () = {
            ::upshift::schema::require::<String>();
            ::upshift::schema::require::<Option<Entry>>();
            ::upshift::schema::require::<Option<u64>>();
            ::upshift::schema::require::<()>();
            ::upshift::schema::require::<bool>();
            ::upshift::schema::require::<Vec<String>>();
        };
    }
}
