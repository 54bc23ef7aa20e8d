use super::api::{CreateUser, SetUserStatus, list_users};
use crate::components::{ErrorView, Forbidden, Guard};
use crate::error::ErrorKind;
use crate::i18n::format::money;
use crate::i18n::{error_text, role_text, status_text};
use crate::t;
use leptos::prelude::*;
use types::{UserInfo, UserStatus};

#[component]
pub fn AdminPage() -> impl IntoView {
    view! { <Guard admin=true page=|_| view! { <Users/> }/> }
}

/// The users of the gateway: created, filtered, disabled and enabled here.
#[component]
fn Users() -> impl IntoView {
    let create = ServerAction::<CreateUser>::new();
    let set_status = ServerAction::<SetUserStatus>::new();
    let users = Resource::new(
        move || (create.version().get(), set_status.version().get()),
        |_| list_users(),
    );
    view! {
        <header class="page-head">
            <h1>{t!("admin.title")}</h1>
            <p class="muted">{t!("admin.lead")}</p>
        </header>
        <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
            {move || Suspend::new(async move {
                match users.await {
                    Ok(list) => view! { <UserAdmin list create set_status/> }.into_any(),
                    Err(e) if e.kind == ErrorKind::Forbidden => view! { <Forbidden/> }.into_any(),
                    Err(e) => view! { <ErrorView error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn UserAdmin(
    list: Vec<UserInfo>,
    create: ServerAction<CreateUser>,
    set_status: ServerAction<SetUserStatus>,
) -> impl IntoView {
    let filter = RwSignal::new(String::new());
    let list = StoredValue::new(list);
    let visible = move || {
        let needle = filter.get().to_lowercase();
        list.get_value()
            .into_iter()
            .filter(|u| needle.is_empty() || u.username.contains(&needle))
            .collect::<Vec<_>>()
    };
    let create_error = move || {
        create
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| error_text(&e))
    };
    let status_error = move || {
        set_status
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| error_text(&e))
    };
    view! {
        <section class="panel">
            <h2>{t!("admin.create")}</h2>
            <div class="inline-form">
            <ActionForm action=create>
                <input name="username" aria-label=t!("admin.new_username") placeholder=t!("admin.username_hint") required minlength="3" maxlength="32"/>
                <input name="password" type="password" aria-label=t!("admin.new_password") placeholder=t!("admin.password_hint") required minlength="8"/>
                <select name="role" aria-label=t!("admin.role")>
                    <option value="user" selected>{t!("role.user")}</option>
                    <option value="admin">{t!("role.admin")}</option>
                </select>
                <button type="submit" class="primary">{t!("admin.create_button")}</button>
            </ActionForm>
            </div>
            <Show when=move || create_error().is_some()>
                <p class="error" role="alert">{create_error}</p>
            </Show>
        </section>
        <section class="panel">
            <div class="table-head">
                <h2>{t!("admin.all_users")}</h2>
                <input
                    type="search"
                    placeholder=t!("admin.filter")
                    aria-label=t!("admin.filter_label")
                    data-testid="user-filter"
                    prop:value=move || filter.get()
                    on:input=move |ev| filter.set(event_target_value(&ev))
                />
            </div>
            <Show when=move || status_error().is_some()>
                <p class="error" role="alert">{status_error}</p>
            </Show>
            <table data-testid="users-table">
                <thead>
                    <tr><th>{t!("admin.col_id")}</th><th>{t!("admin.col_username")}</th><th>{t!("admin.col_role")}</th><th>{t!("admin.col_status")}</th><th class="num">{t!("admin.col_balance")}</th><th></th></tr>
                </thead>
                <tbody>
                    {move || visible().into_iter().map(|u| {
                        let next = if u.status == UserStatus::Active { "disabled" } else { "active" };
                        let label = if u.status == UserStatus::Active { t!("admin.disable") } else { t!("admin.enable") };
                        view! {
                            <tr data-testid="user-row">
                                <td>{u.id}</td>
                                <td>{u.username.clone()}</td>
                                <td><span class=format!("badge {}", u.role.as_str())>{role_text(u.role)}</span></td>
                                <td>{status_text(u.status)}</td>
                                <td class="num">{money(u.balance)}</td>
                                <td>
                                    <ActionForm action=set_status>
                                        <input type="hidden" name="id" value=u.id.to_string()/>
                                        <input type="hidden" name="status" value=next/>
                                        <button type="submit" class="small">{label}</button>
                                    </ActionForm>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}
