//! `impl Versioned` for a version's root: decoding a snapshot of this or
//! any older version through the chain of transforms.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::Gen;

impl Gen<'_> {
    /// `impl Versioned for Root`.
    pub(super) fn versioned(&self) -> TokenStream {
        let root = &self.v.types[0].ident;
        let number = self.v.number;
        let oldest = self.state.versions[0].number;
        let older = match self.prev {
            Some(prev) => {
                let prev_mod = format_ident!("v{}", prev.number);
                let prev_root = &prev.types[0].ident;
                quote! {
                    let __prev = <super::#prev_mod::#prev_root as ::upshift::state::Versioned>::decode_from(__version, __payload)?;
                    <Self as ::upshift::state::Upgrade<super::#prev_mod::#prev_root>>::upgrade(__prev)
                        .map_err(::upshift::state::StateError::Transform)
                }
            }
            None => quote! {
                ::core::result::Result::Err(::upshift::state::StateError::TooOld { found: __version, oldest: #oldest })
            },
        };
        quote! {
            #[automatically_derived]
            impl ::upshift::state::Versioned for #root {
                const NAME: &'static ::core::primitive::str = super::NAME;
                const VERSION: ::core::primitive::u32 = #number;
                const OLDEST: ::core::primitive::u32 = #oldest;

                fn decode_from(
                    __version: ::core::primitive::u32,
                    __payload: &[::core::primitive::u8],
                ) -> ::core::result::Result<Self, ::upshift::state::StateError> {
                    if __version == #number {
                        return ::upshift::state::decode_payload(__version, __payload);
                    }
                    if __version > #number {
                        return ::core::result::Result::Err(::upshift::state::StateError::FutureVersion {
                            found: __version,
                            known: #number,
                        });
                    }
                    #older
                }
            }
        }
    }
}
