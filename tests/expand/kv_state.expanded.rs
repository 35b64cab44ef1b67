// Expansion of the #[upshift::state] module in examples/src/kv.rs.
// Regenerate with: UPSHIFT_BLESS=1 cargo test -p upshift-macros

/// The persistent state of a key-value node, one version per interface version.
///
/// - v1 → v2: `items` changes type (`with`), `evictions` is new (`default`),
///   and `Entry` is a new nested type;
/// - v2 → v3: `items` is renamed `entries` (`from`), and the nested `Entry`
///   changes (its `expires_at_ms` becomes an `Expiry`, `hits` is new), so
///   `entries` transforms through `Entry`'s own transform.
pub mod state {
    use std::collections::BTreeMap;
    /// v1 values never expire.
    fn never_expire(items: BTreeMap<String, String>) -> BTreeMap<String, v2::Entry> {
        items
            .into_iter()
            .map(|(k, value)| {
                let entry = v2::Entry {
                    value,
                    expires_at_ms: None,
                };
                (k, entry)
            })
            .collect()
    }
    impl v3::Expiry {
        fn from_unix_ms(ms: Option<u64>) -> Self {
            ms.map_or(v3::Expiry::Never, v3::Expiry::AtUnixMs)
        }
    }
    /// The state's name in snapshot headers and file names.
    pub const NAME: &::core::primitive::str = "kv";
    /// The newest version declared.
    pub const LATEST: ::core::primitive::u32 = 3u32;
    /// Every version's types and how each came from the one before, oldest first.
    pub static VERSIONS: &[&::upshift::schema::StateSchema] = &[
        &v1::SCHEMA,
        &v2::SCHEMA,
        &v3::SCHEMA,
    ];
    #[doc(hidden)]
    pub const __DOCS_JSON: &::core::primitive::str = "[{\"state\":\"kv\",\"version\":1,\"doc\":\"v1: each key's string value.\",\"types\":[{\"name\":\"Store\",\"kind\":\"struct\",\"shape\":\"struct Store { items: BTreeMap<String, String> }\",\"origin\":{\"kind\":\"new\"},\"members\":[{\"name\":\"items\",\"type\":\"BTreeMap<String, String>\",\"change\":{\"kind\":\"new\"}}],\"removed\":[]}],\"removed\":[]},{\"state\":\"kv\",\"version\":2,\"doc\":\"v2: entries carry an expiry time; evictions are counted.\",\"types\":[{\"name\":\"Store\",\"kind\":\"struct\",\"shape\":\"struct Store { items: BTreeMap<String, Entry>, evictions: u64 }\",\"origin\":{\"kind\":\"continues\",\"from\":\"Store\"},\"members\":[{\"name\":\"items\",\"type\":\"BTreeMap<String, Entry>\",\"change\":{\"kind\":\"converted\",\"from\":\"items\",\"from_type\":\"BTreeMap<String, String>\",\"with\":\"never_expire\"}},{\"name\":\"evictions\",\"type\":\"u64\",\"change\":{\"kind\":\"defaulted\"}}],\"removed\":[]},{\"name\":\"Entry\",\"kind\":\"struct\",\"shape\":\"struct Entry { value: String, expires_at_ms: Option<u64> }\",\"origin\":{\"kind\":\"new\"},\"members\":[{\"name\":\"value\",\"type\":\"String\",\"change\":{\"kind\":\"new\"}},{\"name\":\"expires_at_ms\",\"type\":\"Option<u64>\",\"change\":{\"kind\":\"new\"}}],\"removed\":[]}],\"removed\":[]},{\"state\":\"kv\",\"version\":3,\"doc\":\"v3: `items` is now `entries`; an entry's expiry is an enum and its hits are counted.\",\"types\":[{\"name\":\"Store\",\"kind\":\"struct\",\"shape\":\"struct Store { entries: BTreeMap<String, Entry>, evictions: u64 }\",\"origin\":{\"kind\":\"continues\",\"from\":\"Store\"},\"members\":[{\"name\":\"entries\",\"type\":\"BTreeMap<String, Entry>\",\"change\":{\"kind\":\"upgraded\",\"from\":\"items\"}},{\"name\":\"evictions\",\"type\":\"u64\",\"change\":{\"kind\":\"kept\",\"from\":\"evictions\"}}],\"removed\":[]},{\"name\":\"Entry\",\"kind\":\"struct\",\"shape\":\"struct Entry { value: String, expiry: Expiry, hits: u64 }\",\"origin\":{\"kind\":\"continues\",\"from\":\"Entry\"},\"members\":[{\"name\":\"value\",\"type\":\"String\",\"change\":{\"kind\":\"kept\",\"from\":\"value\"}},{\"name\":\"expiry\",\"type\":\"Expiry\",\"change\":{\"kind\":\"converted\",\"from\":\"expires_at_ms\",\"from_type\":\"Option<u64>\",\"with\":\"Expiry::from_unix_ms\"}},{\"name\":\"hits\",\"type\":\"u64\",\"change\":{\"kind\":\"defaulted\"}}],\"removed\":[]},{\"name\":\"Expiry\",\"kind\":\"enum\",\"shape\":\"enum Expiry { Never, AtUnixMs(0: u64) }\",\"origin\":{\"kind\":\"new\"},\"members\":[{\"name\":\"Never\",\"type\":\"\",\"change\":{\"kind\":\"new\"}},{\"name\":\"AtUnixMs\",\"type\":\"(0: u64)\",\"change\":{\"kind\":\"new\"}}],\"removed\":[]}],\"removed\":[]}]\n";
    const _: ::core::option::Option<&::core::primitive::str> = ::core::option_env!(
        "UPSHIFT_LOCK"
    );
    const _: ::core::option::Option<&::core::primitive::str> = ::core::option_env!(
        "UPSHIFT_LOCK_REPORT"
    );
    /// Version 1 of the `kv` state.
    ///
    ///The first version: `Store`.
    #[allow(clippy::all)]
    pub mod v1 {
        #[allow(unused_imports)]
        use super::*;
        /// This version's number.
        pub const VERSION: ::core::primitive::u32 = 1u32;
        #[derive(
            ::upshift::__private::serde::Serialize,
            ::upshift::__private::serde::Deserialize
        )]
        #[serde(crate = "::upshift::__private::serde")]
        /// v1: each key's string value.
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct Store {
            pub items: BTreeMap<String, String>,
        }
        #[automatically_derived]
        impl ::upshift::schema::Schema for Store {
            const SHAPE: &'static [&'static ::core::primitive::str] = &[
                "field items: BTreeMap<String, String>",
            ];
        }
        impl Store {
            #[doc(hidden)]
            pub fn __into_parts(self) -> (BTreeMap<String, String>,) {
                let Store { items: __f0 } = self;
                (__f0,)
            }
        }
        #[automatically_derived]
        impl ::upshift::state::Versioned for Store {
            const NAME: &'static ::core::primitive::str = super::NAME;
            const VERSION: ::core::primitive::u32 = 1u32;
            const OLDEST: ::core::primitive::u32 = 1u32;
            fn decode_from(
                __version: ::core::primitive::u32,
                __payload: &[::core::primitive::u8],
            ) -> ::core::result::Result<Self, ::upshift::state::StateError> {
                if __version == 1u32 {
                    return ::upshift::state::decode_payload(__version, __payload);
                }
                if __version > 1u32 {
                    return ::core::result::Result::Err(::upshift::state::StateError::FutureVersion {
                        found: __version,
                        known: 1u32,
                    });
                }
                ::core::result::Result::Err(::upshift::state::StateError::TooOld {
                    found: __version,
                    oldest: 1u32,
                })
            }
        }
        /// This version's types and how each came from the previous version.
        pub static SCHEMA: ::upshift::schema::StateSchema = ::upshift::schema::StateSchema {
            state: super::NAME,
            version: 1u32,
            doc: "v1: each key's string value.",
            types: &[
                ::upshift::schema::TypeSchema {
                    name: "Store",
                    kind: ::upshift::schema::TypeKind::Struct,
                    shape: "struct Store { items: BTreeMap<String, String> }",
                    origin: ::upshift::schema::Origin::New,
                    members: &[
                        ::upshift::schema::MemberSchema {
                            name: "items",
                            ty: "BTreeMap<String, String>",
                            change: ::upshift::schema::MemberChange::New,
                        },
                    ],
                    removed: &[],
                },
            ],
            removed: &[],
        };
        const _: () = {
            ::upshift::schema::require::<BTreeMap<String, String>>();
        };
    }
    /// Version 2 of the `kv` state.
    ///
    /**Changes since v1:

- `Store`: `items` retyped from `items: BTreeMap<String, String>` to `BTreeMap<String, Entry>` (`with = never_expire`); `evictions: u64` added (`default`).
- `Entry`: new type.*/
    #[allow(clippy::all)]
    pub mod v2 {
        #[allow(unused_imports)]
        use super::*;
        /// This version's number.
        pub const VERSION: ::core::primitive::u32 = 2u32;
        #[derive(
            ::upshift::__private::serde::Serialize,
            ::upshift::__private::serde::Deserialize
        )]
        #[serde(crate = "::upshift::__private::serde")]
        /// v2: entries carry an expiry time; evictions are counted.
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct Store {
            pub items: BTreeMap<String, Entry>,
            pub evictions: u64,
        }
        #[automatically_derived]
        impl ::upshift::schema::Schema for Store {
            const SHAPE: &'static [&'static ::core::primitive::str] = &[
                "field items: BTreeMap<String, Entry>",
                "field evictions: u64",
            ];
        }
        #[derive(
            ::upshift::__private::serde::Serialize,
            ::upshift::__private::serde::Deserialize
        )]
        #[serde(crate = "::upshift::__private::serde")]
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Entry {
            pub value: String,
            /// Unix time in milliseconds when the value expires.
            pub expires_at_ms: Option<u64>,
        }
        #[automatically_derived]
        impl ::upshift::schema::Schema for Entry {
            const SHAPE: &'static [&'static ::core::primitive::str] = &[
                "field value: String",
                "field expires_at_ms: Option<u64>",
            ];
        }
        impl Store {
            #[doc(hidden)]
            pub fn __into_parts(self) -> (BTreeMap<String, Entry>, u64) {
                let Store { items: __f0, evictions: __f1 } = self;
                (__f0, __f1)
            }
        }
        impl Entry {
            #[doc(hidden)]
            pub fn __into_parts(self) -> (String, Option<u64>) {
                let Entry { value: __f0, expires_at_ms: __f1 } = self;
                (__f0, __f1)
            }
        }
        #[automatically_derived]
        impl ::upshift::state::Upgrade<super::v1::Store> for Store {
            #[allow(unused_variables, unreachable_code)]
            fn upgrade(
                __old: super::v1::Store,
            ) -> ::core::result::Result<Self, ::upshift::state::TransformError> {
                let (__old_items,) = super::v1::Store::__into_parts(__old);
                ::core::result::Result::Ok(Store {
                    items: match ::upshift::__private::Outcome::<
                        BTreeMap<String, Entry>,
                    >::into_outcome(never_expire(__old_items)) {
                        ::core::result::Result::Ok(__value) => __value,
                        ::core::result::Result::Err(__reason) => {
                            return ::core::result::Result::Err(::upshift::state::TransformError {
                                from: 1u32,
                                to: 2u32,
                                type_name: "Store",
                                field: ::core::option::Option::Some("items"),
                                reason: __reason,
                            });
                        }
                    },
                    evictions: ::core::default::Default::default(),
                })
            }
        }
        #[automatically_derived]
        impl ::upshift::state::Versioned for Store {
            const NAME: &'static ::core::primitive::str = super::NAME;
            const VERSION: ::core::primitive::u32 = 2u32;
            const OLDEST: ::core::primitive::u32 = 1u32;
            fn decode_from(
                __version: ::core::primitive::u32,
                __payload: &[::core::primitive::u8],
            ) -> ::core::result::Result<Self, ::upshift::state::StateError> {
                if __version == 2u32 {
                    return ::upshift::state::decode_payload(__version, __payload);
                }
                if __version > 2u32 {
                    return ::core::result::Result::Err(::upshift::state::StateError::FutureVersion {
                        found: __version,
                        known: 2u32,
                    });
                }
                let __prev = <super::v1::Store as ::upshift::state::Versioned>::decode_from(
                    __version,
                    __payload,
                )?;
                <Self as ::upshift::state::Upgrade<super::v1::Store>>::upgrade(__prev)
                    .map_err(::upshift::state::StateError::Transform)
            }
        }
        /// This version's types and how each came from the previous version.
        pub static SCHEMA: ::upshift::schema::StateSchema = ::upshift::schema::StateSchema {
            state: super::NAME,
            version: 2u32,
            doc: "v2: entries carry an expiry time; evictions are counted.",
            types: &[
                ::upshift::schema::TypeSchema {
                    name: "Store",
                    kind: ::upshift::schema::TypeKind::Struct,
                    shape: "struct Store { items: BTreeMap<String, Entry>, evictions: u64 }",
                    origin: ::upshift::schema::Origin::Continues {
                        from: "Store",
                    },
                    members: &[
                        ::upshift::schema::MemberSchema {
                            name: "items",
                            ty: "BTreeMap<String, Entry>",
                            change: ::upshift::schema::MemberChange::Converted {
                                from: "items",
                                from_ty: "BTreeMap<String, String>",
                                with: "never_expire",
                            },
                        },
                        ::upshift::schema::MemberSchema {
                            name: "evictions",
                            ty: "u64",
                            change: ::upshift::schema::MemberChange::Defaulted {
                                with: ::core::option::Option::None,
                            },
                        },
                    ],
                    removed: &[],
                },
                ::upshift::schema::TypeSchema {
                    name: "Entry",
                    kind: ::upshift::schema::TypeKind::Struct,
                    shape: "struct Entry { value: String, expires_at_ms: Option<u64> }",
                    origin: ::upshift::schema::Origin::New,
                    members: &[
                        ::upshift::schema::MemberSchema {
                            name: "value",
                            ty: "String",
                            change: ::upshift::schema::MemberChange::New,
                        },
                        ::upshift::schema::MemberSchema {
                            name: "expires_at_ms",
                            ty: "Option<u64>",
                            change: ::upshift::schema::MemberChange::New,
                        },
                    ],
                    removed: &[],
                },
            ],
            removed: &[],
        };
        const _: () = {
            ::upshift::schema::require::<BTreeMap<String, Entry>>();
            ::upshift::schema::require::<u64>();
            ::upshift::schema::require::<String>();
            ::upshift::schema::require::<Option<u64>>();
        };
    }
    /// Version 3 of the `kv` state.
    ///
    /**Changes since v2:

- `Store`: `entries` renamed from `items` (`from`) and upgraded through the types it holds.
- `Entry`: `expiry` retyped from `expires_at_ms: Option<u64>` to `Expiry` (`with = Expiry::from_unix_ms`); `hits: u64` added (`default`).
- `Expiry`: new type.*/
    #[allow(clippy::all)]
    pub mod v3 {
        #[allow(unused_imports)]
        use super::*;
        /// This version's number.
        pub const VERSION: ::core::primitive::u32 = 3u32;
        #[derive(
            ::upshift::__private::serde::Serialize,
            ::upshift::__private::serde::Deserialize
        )]
        #[serde(crate = "::upshift::__private::serde")]
        /// v3: `items` is now `entries`; an entry's expiry is an enum and its hits are counted.
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct Store {
            pub entries: BTreeMap<String, Entry>,
            pub evictions: u64,
        }
        #[automatically_derived]
        impl ::upshift::schema::Schema for Store {
            const SHAPE: &'static [&'static ::core::primitive::str] = &[
                "field entries: BTreeMap<String, Entry>",
                "field evictions: u64",
            ];
        }
        #[derive(
            ::upshift::__private::serde::Serialize,
            ::upshift::__private::serde::Deserialize
        )]
        #[serde(crate = "::upshift::__private::serde")]
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Entry {
            pub value: String,
            pub expiry: Expiry,
            pub hits: u64,
        }
        #[automatically_derived]
        impl ::upshift::schema::Schema for Entry {
            const SHAPE: &'static [&'static ::core::primitive::str] = &[
                "field value: String",
                "field expiry: Expiry",
                "field hits: u64",
            ];
        }
        #[derive(
            ::upshift::__private::serde::Serialize,
            ::upshift::__private::serde::Deserialize
        )]
        #[serde(crate = "::upshift::__private::serde")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Expiry {
            Never,
            AtUnixMs(u64),
        }
        #[automatically_derived]
        impl ::upshift::schema::Schema for Expiry {
            const SHAPE: &'static [&'static ::core::primitive::str] = &[
                "variant Never",
                "variant AtUnixMs(0: u64)",
            ];
        }
        impl Store {
            #[doc(hidden)]
            pub fn __into_parts(self) -> (BTreeMap<String, Entry>, u64) {
                let Store { entries: __f0, evictions: __f1 } = self;
                (__f0, __f1)
            }
        }
        impl Entry {
            #[doc(hidden)]
            pub fn __into_parts(self) -> (String, Expiry, u64) {
                let Entry { value: __f0, expiry: __f1, hits: __f2 } = self;
                (__f0, __f1, __f2)
            }
        }
        #[automatically_derived]
        impl ::upshift::state::Upgrade<super::v2::Store> for Store {
            #[allow(unused_variables, unreachable_code)]
            fn upgrade(
                __old: super::v2::Store,
            ) -> ::core::result::Result<Self, ::upshift::state::TransformError> {
                let (__old_items, __old_evictions) = super::v2::Store::__into_parts(
                    __old,
                );
                ::core::result::Result::Ok(Store {
                    entries: ::upshift::state::Upgrade::upgrade(__old_items)?,
                    evictions: __old_evictions,
                })
            }
        }
        #[automatically_derived]
        impl ::upshift::state::Upgrade<super::v2::Entry> for Entry {
            #[allow(unused_variables, unreachable_code)]
            fn upgrade(
                __old: super::v2::Entry,
            ) -> ::core::result::Result<Self, ::upshift::state::TransformError> {
                let (__old_value, __old_expires_at_ms) = super::v2::Entry::__into_parts(
                    __old,
                );
                ::core::result::Result::Ok(Entry {
                    value: __old_value,
                    expiry: match ::upshift::__private::Outcome::<
                        Expiry,
                    >::into_outcome(Expiry::from_unix_ms(__old_expires_at_ms)) {
                        ::core::result::Result::Ok(__value) => __value,
                        ::core::result::Result::Err(__reason) => {
                            return ::core::result::Result::Err(::upshift::state::TransformError {
                                from: 2u32,
                                to: 3u32,
                                type_name: "Entry",
                                field: ::core::option::Option::Some("expiry"),
                                reason: __reason,
                            });
                        }
                    },
                    hits: ::core::default::Default::default(),
                })
            }
        }
        #[automatically_derived]
        impl ::upshift::state::Versioned for Store {
            const NAME: &'static ::core::primitive::str = super::NAME;
            const VERSION: ::core::primitive::u32 = 3u32;
            const OLDEST: ::core::primitive::u32 = 1u32;
            fn decode_from(
                __version: ::core::primitive::u32,
                __payload: &[::core::primitive::u8],
            ) -> ::core::result::Result<Self, ::upshift::state::StateError> {
                if __version == 3u32 {
                    return ::upshift::state::decode_payload(__version, __payload);
                }
                if __version > 3u32 {
                    return ::core::result::Result::Err(::upshift::state::StateError::FutureVersion {
                        found: __version,
                        known: 3u32,
                    });
                }
                let __prev = <super::v2::Store as ::upshift::state::Versioned>::decode_from(
                    __version,
                    __payload,
                )?;
                <Self as ::upshift::state::Upgrade<super::v2::Store>>::upgrade(__prev)
                    .map_err(::upshift::state::StateError::Transform)
            }
        }
        /// This version's types and how each came from the previous version.
        pub static SCHEMA: ::upshift::schema::StateSchema = ::upshift::schema::StateSchema {
            state: super::NAME,
            version: 3u32,
            doc: "v3: `items` is now `entries`; an entry's expiry is an enum and its hits are counted.",
            types: &[
                ::upshift::schema::TypeSchema {
                    name: "Store",
                    kind: ::upshift::schema::TypeKind::Struct,
                    shape: "struct Store { entries: BTreeMap<String, Entry>, evictions: u64 }",
                    origin: ::upshift::schema::Origin::Continues {
                        from: "Store",
                    },
                    members: &[
                        ::upshift::schema::MemberSchema {
                            name: "entries",
                            ty: "BTreeMap<String, Entry>",
                            change: ::upshift::schema::MemberChange::Upgraded {
                                from: "items",
                            },
                        },
                        ::upshift::schema::MemberSchema {
                            name: "evictions",
                            ty: "u64",
                            change: ::upshift::schema::MemberChange::Kept {
                                from: "evictions",
                            },
                        },
                    ],
                    removed: &[],
                },
                ::upshift::schema::TypeSchema {
                    name: "Entry",
                    kind: ::upshift::schema::TypeKind::Struct,
                    shape: "struct Entry { value: String, expiry: Expiry, hits: u64 }",
                    origin: ::upshift::schema::Origin::Continues {
                        from: "Entry",
                    },
                    members: &[
                        ::upshift::schema::MemberSchema {
                            name: "value",
                            ty: "String",
                            change: ::upshift::schema::MemberChange::Kept {
                                from: "value",
                            },
                        },
                        ::upshift::schema::MemberSchema {
                            name: "expiry",
                            ty: "Expiry",
                            change: ::upshift::schema::MemberChange::Converted {
                                from: "expires_at_ms",
                                from_ty: "Option<u64>",
                                with: "Expiry::from_unix_ms",
                            },
                        },
                        ::upshift::schema::MemberSchema {
                            name: "hits",
                            ty: "u64",
                            change: ::upshift::schema::MemberChange::Defaulted {
                                with: ::core::option::Option::None,
                            },
                        },
                    ],
                    removed: &[],
                },
                ::upshift::schema::TypeSchema {
                    name: "Expiry",
                    kind: ::upshift::schema::TypeKind::Enum,
                    shape: "enum Expiry { Never, AtUnixMs(0: u64) }",
                    origin: ::upshift::schema::Origin::New,
                    members: &[
                        ::upshift::schema::MemberSchema {
                            name: "Never",
                            ty: "",
                            change: ::upshift::schema::MemberChange::New,
                        },
                        ::upshift::schema::MemberSchema {
                            name: "AtUnixMs",
                            ty: "(0: u64)",
                            change: ::upshift::schema::MemberChange::New,
                        },
                    ],
                    removed: &[],
                },
            ],
            removed: &[],
        };
        const _: () = {
            ::upshift::schema::require::<BTreeMap<String, Entry>>();
            ::upshift::schema::require::<u64>();
            ::upshift::schema::require::<String>();
            ::upshift::schema::require::<Expiry>();
        };
    }
}
