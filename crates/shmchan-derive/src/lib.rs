//! `#[derive(Schema)]` for [shmchan](https://docs.rs/shmchan): a record type's structural
//! identity — for each field its name, offset, size and type — which a channel stores when it
//! is created and compares when another program opens it, so that two programs that declare
//! the same `#[repr(C)]` struct connect whatever their module paths, and any difference in
//! layout is refused with the first differing field named.
//!
//! Use it through shmchan's re-export (`shmchan::Schema`, default feature `derive`); the
//! documentation and examples live there.
//!
//! The generated code describes the struct with `core::mem::offset_of!` and registers the
//! description when the program starts (a static in `.init_array`, the mechanism the `ctor`
//! and `inventory` crates use), because shmchan's record bound is every `Pod` type and stable
//! Rust cannot ask in generic code whether a type also derives this.
#![deny(unsafe_op_in_unsafe_fn)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{parse_macro_input, Data, DeriveInput, Error, Index, LitStr, Member};

/// Derives a record's structural identity; see `shmchan::Schema` for the rules and examples.
///
/// Accepts `#[repr(C)]` (optionally with `packed` or `align(N)`) and `#[repr(transparent)]`
/// structs without generic parameters. `#[shmchan(crate = "path")]` names the shmchan crate
/// when it is not reachable as `::shmchan`.
#[proc_macro_derive(Schema, attributes(shmchan))]
pub fn derive_schema(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let krate = crate_path(input)?;
    let fields = match &input.data {
        Data::Struct(s) => &s.fields,
        Data::Enum(e) => {
            return Err(Error::new(
                e.enum_token.span(),
                "`#[derive(Schema)]` describes structs only: an enum's discriminant and \
                 variants have no field-by-field layout another program can check, and not \
                 every bit pattern is a valid enum; send a `#[repr(C)]` struct with an explicit \
                 tag field instead",
            ))
        }
        Data::Union(u) => {
            return Err(Error::new(
                u.union_token.span(),
                "`#[derive(Schema)]` describes structs only: a union's fields overlap, so its \
                 layout cannot be checked field by field; send a `#[repr(C)]` struct instead",
            ))
        }
    };
    check_repr(input)?;
    if !input.generics.params.is_empty() {
        return Err(Error::new(
            input.generics.span(),
            "`#[derive(Schema)]` does not take generic parameters: a record's identity is \
             registered once per concrete type when the program starts; declare a concrete \
             struct",
        ));
    }
    let ident = &input.ident;
    let name = ident.unraw().to_string();
    let entries = fields.iter().enumerate().map(|(i, f)| {
        let (member, fname) = match &f.ident {
            Some(id) => (Member::Named(id.clone()), id.unraw().to_string()),
            None => (Member::Unnamed(Index::from(i)), i.to_string()),
        };
        let ty = &f.ty;
        quote! {
            #krate::schema::FieldShape::__of::<#ty>(#fname, ::core::mem::offset_of!(#ident, #member))
        }
    });
    Ok(quote! {
        const _: () = {
            fn __shmchan_shape() -> #krate::schema::Shape {
                #krate::schema::Shape::__record::<#ident>(
                    #name,
                    ::std::vec![#(#entries),*],
                )
            }
            static __SHMCHAN_REGISTRATION: #krate::__private::Registration =
                #krate::__private::Registration::new::<#ident>(__shmchan_shape);
            extern "C" fn __shmchan_register() {
                __SHMCHAN_REGISTRATION.register();
            }
            // Run once when the program (or library) is loaded, before `main`.
            #[used]
            #[unsafe(link_section = ".init_array")]
            static __SHMCHAN_INIT: extern "C" fn() = __shmchan_register;
        };
    })
}

/// `#[shmchan(crate = "path")]`, or `::shmchan`.
fn crate_path(input: &DeriveInput) -> syn::Result<syn::Path> {
    let mut path: syn::Path = syn::parse_quote!(::shmchan);
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("shmchan")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let s: LitStr = meta.value()?.parse()?;
                path = s.parse()?;
                Ok(())
            } else {
                Err(meta.error("unknown `shmchan` attribute; expected `crate = \"path\"`"))
            }
        })?;
    }
    Ok(path)
}

/// Requires `#[repr(C)]` or `#[repr(transparent)]`.
fn check_repr(input: &DeriveInput) -> syn::Result<()> {
    let mut stable = false;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("repr")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("C") || meta.path.is_ident("transparent") {
                stable = true;
            }
            // `packed`, `packed(N)`, `align(N)`: accepted alongside; skip their arguments.
            if meta.input.peek(syn::token::Paren) {
                let content;
                syn::parenthesized!(content in meta.input);
                let _: TokenStream2 = content.parse()?;
            }
            Ok(())
        })?;
    }
    if stable {
        return Ok(());
    }
    Err(Error::new(
        Span::call_site(),
        format!(
            "`#[derive(Schema)]` needs `#[repr(C)]` or `#[repr(transparent)]` on `{}`: the \
             layout of a default-repr struct is the compiler's choice and may differ between \
             two builds, so it cannot be shared with another program",
            input.ident
        ),
    ))
}
