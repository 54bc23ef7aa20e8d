use super::api::{CreateUser, SetUserStatus, list_users};
use crate::auth::Session;
use crate::error::ErrorKind;
use leptos::prelude::*;
use leptos_router::components::Redirect;
use types::{UserInfo, UserStatus};

#[component]
pub fn AdminPage() -> impl IntoView {
    let session = expect_context::<Session>();
    let create = ServerAction::<CreateUser>::new();
    let set_status = ServerAction::<SetUserStatus>::new();
    let users = Resource::new(
        move || {
            (
                create.version().get(),
                set_status.version().get(),
                session.user.get().is_some(),
            )
        },
        |_| list_users(),
    );
    view! {
        <header class="page-head">
            <h1>"Users"</h1>
            <p class="muted">"Accounts, roles and access. Administrators only."</p>
        </header>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match users.await {
                    Ok(list) => view! { <UserAdmin list create set_status/> }.into_any(),
                    Err(e) if e.kind == ErrorKind::Unauthorized => view! { <Redirect path="/login"/> }.into_any(),
                    Err(e) if e.kind == ErrorKind::Forbidden => view! {
                        <div class="panel denied" data-testid="forbidden">
                            <h2>"403 · Administrators only"</h2>
                            <p>"Your account cannot open this page."</p>
                        </div>
                    }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.0.message}</p> }.into_any(),
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
            .map(|e| e.0.message)
    };
    let status_error = move || {
        set_status
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.0.message)
    };
    view! {
        <section class="panel">
            <h2>"Create a user"</h2>
            <div class="inline-form">
            <ActionForm action=create>
                <input name="username" aria-label="New username" placeholder="username" required minlength="3" maxlength="32"/>
                <input name="password" type="password" aria-label="New password" placeholder="password (8+ characters)" required minlength="8"/>
                <select name="role" aria-label="Role">
                    <option value="user" selected>"user"</option>
                    <option value="admin">"admin"</option>
                </select>
                <button type="submit" class="primary">"Create"</button>
            </ActionForm>
            </div>
            <Show when=move || create_error().is_some()>
                <p class="error" role="alert">{create_error}</p>
            </Show>
        </section>
        <section class="panel">
            <div class="table-head">
                <h2>"All users"</h2>
                <input
                    type="search"
                    placeholder="Filter by username"
                    aria-label="Filter users"
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
                    <tr><th>"ID"</th><th>"Username"</th><th>"Role"</th><th>"Status"</th><th class="num">"Balance"</th><th></th></tr>
                </thead>
                <tbody>
                    {move || visible().into_iter().map(|u| {
                        let next = if u.status == UserStatus::Active { "disabled" } else { "active" };
                        let label = if u.status == UserStatus::Active { "Disable" } else { "Enable" };
                        view! {
                            <tr data-testid="user-row">
                                <td>{u.id}</td>
                                <td>{u.username.clone()}</td>
                                <td><span class=format!("badge {}", u.role.as_str())>{u.role.as_str()}</span></td>
                                <td>{u.status.as_str()}</td>
                                <td class="num">"$" {u.balance.clone()}</td>
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
