//! The Tollgate console: Leptos components by domain, each domain's server functions beside its
//! page. Server functions are one-line adapters over the `service` crate (ssr only).
// The release wasm build computes the layout of deeply nested view types (the API reference).
#![recursion_limit = "256"]

pub mod account;
pub mod admin;
pub mod auth;
pub mod billing;
pub mod components;
pub mod dashboard;
pub mod docs;
pub mod error;
pub mod i18n;
pub mod keys;
pub mod logs;
pub mod pricing;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod status;
pub mod wire;

use leptos::prelude::*;
use leptos_meta::{HashedStylesheet, MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{Lazy, SsrMode, path};

pub use error::{AppError, ErrorKind};

/// The HTML document around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    ssr::content_security_policy();
    #[cfg(feature = "ssr")]
    let lang = ssr::request_lang();
    #[cfg(not(feature = "ssr"))]
    let lang = i18n::lang();
    provide_context(lang);
    view! {
        <!DOCTYPE html>
        <html lang=lang.tag()>
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <HashedStylesheet options=options.clone() id="leptos"/>
                <link rel="icon" href="/favicon.ico"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    auth::Session::provide();
    view! {
        <Title text="Tollgate"/>
        <Router>
            <components::Layout>
                <Routes fallback=|| view! { <components::NotFound/> }>
                    // Async: the page waits for its data, so redirects and 403s are real statuses.
                    <Route path=path!("/") view={Lazy::<dashboard::DashboardRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/keys") view={Lazy::<keys::KeysRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/account") view={Lazy::<account::AccountRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/billing") view={Lazy::<billing::BillingRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/logs") view={Lazy::<logs::LogsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/pricing") view={Lazy::<pricing::PricingRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/status") view={Lazy::<status::StatusRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/login") view={Lazy::<auth::LoginRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin") view={Lazy::<admin::AdminOverviewRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/users") view={Lazy::<admin::AdminUsersRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/users/:id") view={Lazy::<admin::AdminUserRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/keys") view={Lazy::<admin::AdminKeysRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/redeem") view={Lazy::<admin::AdminRedeemRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/prices") view={Lazy::<admin::AdminPricesRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/channels") view={Lazy::<admin::AdminChannelsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/mappings") view={Lazy::<admin::AdminMappingsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/audit") view={Lazy::<admin::AdminAuditRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/jobs") view={Lazy::<admin::AdminJobsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/calls") view={Lazy::<admin::AdminCallsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/docs") view={Lazy::<docs::DocsRoute>::new()} ssr=SsrMode::Async/>
                </Routes>
            </components::Layout>
        </Router>
    }
}
