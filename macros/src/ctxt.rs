//! Collects errors so that one build reports every mistake in the input.

use std::cell::RefCell;
use std::fmt::Display;

use quote::ToTokens;

/// Gathers `syn::Error`s during parsing and checking. Its errors must be
/// taken with [`Ctxt::check`] before it is dropped: a `Ctxt` dropped with
/// its errors unread would lose them, and panics to say so (a bug in the
/// macros, never in the user's input).
#[derive(Default)]
pub struct Ctxt {
    /// `None` once `check` has taken the errors.
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    /// Records an error spanning `tokens`.
    pub fn error_spanned_by<T: ToTokens, M: Display>(&self, tokens: T, message: M) {
        self.syn_error(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error built elsewhere.
    pub fn syn_error(&self, err: syn::Error) {
        self.errors
            .borrow_mut()
            .get_or_insert_with(Vec::new)
            .push(err);
    }

    /// How many errors were recorded so far.
    pub fn error_count(&self) -> usize {
        self.errors.borrow().as_ref().map_or(0, Vec::len)
    }

    /// Whether any error was recorded so far.
    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    /// Every recorded error combined into one, if any.
    pub fn check(self) -> Result<(), syn::Error> {
        let mut errors = self.errors.take().unwrap_or_default().into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for e in errors {
            combined.combine(e);
        }
        Err(combined)
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        let unread = self
            .errors
            .get_mut()
            .as_ref()
            .is_some_and(|e| !e.is_empty());
        if unread && !std::thread::panicking() {
            panic!(
                "upshift-macros forgot to report {} error(s); this is a bug in upshift",
                self.error_count()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Ctxt;

    #[test]
    fn errors_are_combined_in_order() {
        let cx = Ctxt::default();
        cx.syn_error(syn::Error::new(proc_macro2::Span::call_site(), "first"));
        cx.syn_error(syn::Error::new(proc_macro2::Span::call_site(), "second"));
        assert_eq!(cx.error_count(), 2);
        let combined = cx.check().expect_err("two errors");
        let messages: Vec<String> = combined.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages, ["first", "second"]);
    }

    #[test]
    #[should_panic(expected = "forgot to report 1 error(s)")]
    fn dropping_unread_errors_is_a_bug_that_panics() {
        let cx = Ctxt::default();
        cx.syn_error(syn::Error::new(proc_macro2::Span::call_site(), "lost"));
        drop(cx);
    }

    #[test]
    fn a_context_without_errors_may_be_dropped() {
        let cx = Ctxt::default();
        assert!(!cx.has_errors());
        drop(cx);
    }
}
