pub mod api;
mod audit;
mod channels;
mod jobs;
mod keys;
mod mappings;
pub mod nav;
mod overview;
pub mod page;
mod prices;
mod redeem;
mod user;

pub use api::*;
pub use nav::AdminNav;
pub use page::AdminPage;

crate::lazy_page!(AdminOverviewRoute, AdminOverviewPage);
crate::lazy_page!(AdminUsersRoute, AdminPage);
crate::lazy_page!(AdminUserRoute, AdminUserPage);
crate::lazy_page!(AdminKeysRoute, AdminKeysPage);
crate::lazy_page!(AdminRedeemRoute, AdminRedeemPage);
crate::lazy_page!(AdminPricesRoute, AdminPricesPage);
crate::lazy_page!(AdminChannelsRoute, AdminChannelsPage);
crate::lazy_page!(AdminMappingsRoute, AdminMappingsPage);
crate::lazy_page!(AdminAuditRoute, AdminAuditPage);
crate::lazy_page!(AdminCallsRoute, AdminCallsPage);
crate::lazy_page!(AdminJobsRoute, AdminJobsPage);

/// Every user's calls: the call log page, for all users.
#[leptos::component]
fn AdminCallsPage() -> impl leptos::IntoView {
    use crate::logs::{Scope, page::Logs};
    use leptos::prelude::*;
    view! { <Logs scope=Scope::All/> }
}

use audit::AdminAuditPage;
use channels::AdminChannelsPage;
use jobs::AdminJobsPage;
use keys::AdminKeysPage;
use mappings::AdminMappingsPage;
use overview::AdminOverviewPage;
use prices::AdminPricesPage;
use redeem::AdminRedeemPage;
use user::AdminUserPage;
