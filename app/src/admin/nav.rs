//! The admin console's own navigation, under the page's title, and what its pages share.

use crate::error::AppError;
use crate::i18n::error_text;
use crate::t;
use leptos::prelude::*;
use leptos_router::components::A;

/// The admin pages, the current one marked (`aria-current`).
#[component]
pub fn AdminNav() -> impl IntoView {
    view! {
        <nav class="subnav" aria-label=t!("admin.nav_label")>
            <A href="/admin" exact=true>{t!("admin.nav_overview")}</A>
            <A href="/admin/users">{t!("admin.nav_users")}</A>
            <A href="/admin/keys">{t!("admin.nav_keys")}</A>
            <A href="/admin/redeem">{t!("admin.nav_redeem")}</A>
            <A href="/admin/channels">{t!("admin.nav_channels")}</A>
            <A href="/admin/mappings">{t!("admin.nav_mappings")}</A>
            <A href="/admin/prices">{t!("admin.nav_prices")}</A>
            <A href="/admin/calls">{t!("admin.nav_calls")}</A>
            <A href="/admin/audit">{t!("admin.nav_audit")}</A>
            <A href="/admin/jobs">{t!("admin.nav_jobs")}</A>
        </nav>
    }
}

/// A form's error next to the field it names: `fields` lists the fields the form shows, and
/// [`FormError::other`] what names none of them.
#[derive(Clone, Copy)]
pub struct FormError {
    error: Signal<Option<AppError>>,
    fields: &'static [&'static str],
}

impl FormError {
    /// `error`: the last submission's error, e.g. `move || action.value().get().and_then(Result::err)`.
    pub fn new(
        error: impl Fn() -> Option<AppError> + Send + Sync + 'static,
        fields: &'static [&'static str],
    ) -> Self {
        FormError {
            error: Signal::derive(error),
            fields,
        }
    }

    /// The error for `field`, if the last submission's names it.
    pub fn at(self, field: &'static str) -> impl IntoView {
        move || {
            self.error
                .get()
                .filter(|e| e.param.as_deref() == Some(field))
                .map(|e| view! { <span class="field-error" role="alert">{error_text(&e)}</span> })
        }
    }

    /// The error that names no field of the form.
    pub fn other(self) -> impl IntoView {
        move || {
            self.error
                .get()
                .filter(|e| !e.param.as_deref().is_some_and(|p| self.fields.contains(&p)))
                .map(|e| view! { <p class="error" role="alert">{error_text(&e)}</p> })
        }
    }
}
