use super::api::{AdjustBalance, CreateUser, SetUserStatus, UpdateUser, list_users};
use super::nav::{AdminNav, FormError};
use crate::components::{ErrorView, Forbidden, Guard, Post, PostForm};
use crate::error::ErrorKind;
use crate::i18n::format::money;
use crate::i18n::{error_text, role_text, status_text};
use crate::t;
use crate::wire;
use leptos::prelude::*;
use types::{UserInfo, UserStatus};

#[component]
pub fn AdminPage() -> impl IntoView {
    view! { <Users/> }
}

/// The users of the gateway: created, filtered, disabled and enabled here.
#[component]
fn Users() -> impl IntoView {
    let create = Post::<CreateUser>::new();
    let set_status = Post::<SetUserStatus>::new();
    let update = Post::<UpdateUser>::new();
    let adjust = Post::<AdjustBalance>::new();
    let users = wire::resource(
        move || {
            (
                create.version().get(),
                set_status.version().get(),
                update.version().get(),
                adjust.version().get(),
            )
        },
        |_| list_users(),
    );
    view! {
        <Guard admin=true page=move |_| view! {
            <header class="page-head">
                <h1>{t!("admin.title")}</h1>
                <p class="muted">{t!("admin.lead")}</p>
                <AdminNav/>
            </header>
            <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
                {move || Suspend::new(async move {
                    match users.await {
                        Ok(list) => view! {
                            <UserAdmin list=list.clone() create set_status/>
                            <UserChanges list update adjust/>
                        }.into_any(),
                        Err(e) if e.kind == ErrorKind::Forbidden => view! { <Forbidden/> }.into_any(),
                        Err(e) => view! { <ErrorView error=e/> }.into_any(),
                    }
                })}
            </Transition>
        }/>
    }
}

#[component]
fn UserAdmin(
    list: Vec<UserInfo>,
    create: Post<CreateUser>,
    set_status: Post<SetUserStatus>,
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
            <PostForm action=create>
                <input name="username" aria-label=t!("admin.new_username") placeholder=t!("admin.username_hint") required minlength="3" maxlength="32"/>
                <input name="password" type="password" aria-label=t!("admin.new_password") placeholder=t!("admin.password_hint") required minlength="8"/>
                <select name="role" aria-label=t!("admin.role")>
                    <option value="user" selected>{t!("role.user")}</option>
                    <option value="admin">{t!("role.admin")}</option>
                </select>
                <button type="submit" class="primary">{t!("admin.create_button")}</button>
            </PostForm>
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
                    <tr><th>{t!("admin.col_id")}</th><th>{t!("admin.col_username")}</th><th>{t!("admin.col_role")}</th><th>{t!("admin.col_status")}</th><th>{t!("admin.group")}</th><th class="num">{t!("admin.col_balance")}</th><th></th></tr>
                </thead>
                <tbody>
                    {move || visible().into_iter().map(|u| {
                        let next = if u.status == UserStatus::Active { "disabled" } else { "active" };
                        let label = if u.status == UserStatus::Active { t!("admin.disable") } else { t!("admin.enable") };
                        view! {
                            <tr data-testid="user-row">
                                <td>{u.id}</td>
                                <td><a href=format!("/admin/users/{}", u.id) data-testid="user-link">{u.username.clone()}</a></td>
                                <td><span class=format!("badge {}", u.role.as_str())>{role_text(u.role)}</span></td>
                                <td>{status_text(&u)}</td>
                                <td>{u.group.clone()}</td>
                                <td class="num">{money(u.balance)}</td>
                                <td>
                                    {u.deleted_at.is_none().then(|| view! {
                                        <PostForm action=set_status>
                                            <input type="hidden" name="id" value=u.id.to_string()/>
                                            <input type="hidden" name="status" value=next/>
                                            <button type="submit" class="small">{label}</button>
                                        </PostForm>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

/// Changes to one user: role and price group, and the balance (with the reason the user sees
/// in their ledger).
#[component]
fn UserChanges(
    list: Vec<UserInfo>,
    update: Post<UpdateUser>,
    adjust: Post<AdjustBalance>,
) -> impl IntoView {
    let adjust_err = FormError::new(
        move || adjust.value().get().and_then(Result::err),
        &["amount", "reason", "user_id"],
    );
    let update_err = FormError::new(
        move || update.value().get().and_then(Result::err),
        &["role", "group"],
    );
    let adjusted = move || adjust.value().get().and_then(Result::ok);
    let options = StoredValue::new(
        list.into_iter()
            .filter(|u| u.deleted_at.is_none())
            .collect::<Vec<_>>(),
    );
    let pick = move || {
        options
            .get_value()
            .into_iter()
            .map(|u| view! { <option value=u.id.to_string()>{format!("{} (#{})", u.username, u.id)}</option> })
            .collect_view()
    };
    view! {
        <section class="panel">
            <h2>{t!("admin.adjust")}</h2>
            <p class="muted">{t!("admin.adjust_lead")}</p>
            <PostForm action=adjust>
                <div class="form-grid">
                    <label>
                        <span>{t!("admin.user")}</span>
                        <select name="user_id" data-testid="adjust-user">{pick()}</select>
                        {adjust_err.at("user_id")}
                    </label>
                    <label>
                        <span>{t!("admin.amount")}</span>
                        <input name="amount" required inputmode="decimal" placeholder="10.00 / -2.50" data-testid="adjust-amount"/>
                        {adjust_err.at("amount")}
                    </label>
                    <label class="wide">
                        <span>{t!("admin.reason")}</span>
                        <input name="reason" required maxlength="200" data-testid="adjust-reason"/>
                        {adjust_err.at("reason")}
                    </label>
                </div>
                <button type="submit" class="primary" data-testid="adjust">{t!("admin.adjust_button")}</button>
                {adjust_err.other()}
            </PostForm>
            {move || adjusted().map(|b| view! {
                <p class="success" role="status" data-testid="adjusted">{t!("admin.new_balance")} " " <strong>{money(b)}</strong></p>
            })}
        </section>
        <section class="panel">
            <h2>{t!("admin.update")}</h2>
            <PostForm action=update>
                <div class="form-grid">
                    <label>
                        <span>{t!("admin.user")}</span>
                        <select name="id" data-testid="update-user">{pick()}</select>
                    </label>
                    <label>
                        <span>{t!("admin.role")}</span>
                        <select name="role">
                            <option value="" selected>{t!("admin.unchanged")}</option>
                            <option value="user">{t!("role.user")}</option>
                            <option value="admin">{t!("role.admin")}</option>
                        </select>
                        {update_err.at("role")}
                    </label>
                    <label>
                        <span>{t!("admin.group")}</span>
                        <input name="group" maxlength="64" placeholder=t!("admin.unchanged") data-testid="update-group"/>
                        {update_err.at("group")}
                    </label>
                </div>
                <button type="submit" class="primary" data-testid="update">{t!("admin.update_button")}</button>
                {update_err.other()}
            </PostForm>
        </section>
    }
}
