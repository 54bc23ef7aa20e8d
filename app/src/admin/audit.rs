//! The audit log: every administrator's action, who, what, when, before and after; filtered
//! by kind and actor, in keyset pages.

use super::api::audit_log;
use super::nav::AdminNav;
use crate::components::{ErrorView, Guard, when};
use crate::t;
use crate::wire;
use leptos::prelude::*;

#[component]
pub fn AdminAuditPage() -> impl IntoView {
    view! { <Audit/> }
}

const KINDS: [&str; 9] = [
    "user",
    "balance",
    "key",
    "redeem_batch",
    "redeem_code",
    "price",
    "group",
    "channel",
    "mapping",
];

#[component]
fn Audit() -> impl IntoView {
    let action = RwSignal::new(String::new());
    let actor = RwSignal::new(String::new());
    let cursor = RwSignal::new(None::<String>);
    let entries = wire::resource(
        move || (action.get(), actor.get(), cursor.get()),
        |(action, actor, cursor)| audit_log(action, actor, cursor),
    );
    view! {
        <Guard admin=true page=move |_| view! {
            <header class="page-head">
                <h1>{t!("audit.title")}</h1>
                <p class="muted">{t!("audit.lead")}</p>
                <AdminNav/>
            </header>
            <section class="panel">
                <div class="filters">
                    <label>
                        <span>{t!("audit.kind")}</span>
                        <select data-testid="audit-kind" on:change=move |ev| { cursor.set(None); action.set(event_target_value(&ev)); }>
                            <option value="">{t!("admin.any")}</option>
                            {KINDS.map(|k| view! { <option value=k>{k}</option> }).into_iter().collect_view()}
                        </select>
                    </label>
                    <label>
                        <span>{t!("audit.actor")}</span>
                        <input type="search" data-testid="audit-actor" on:change=move |ev| { cursor.set(None); actor.set(event_target_value(&ev)); }/>
                    </label>
                </div>
                <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
                    {move || Suspend::new(async move {
                        match entries.await {
                            Ok(page) if page.data.is_empty() => view! { <p class="muted">{t!("audit.none")}</p> }.into_any(),
                            Ok(page) => {
                                let next = page.next_cursor.clone();
                                view! {
                                    <div class="scroll">
                                    <table data-testid="audit">
                                        <thead><tr>
                                            <th>{t!("audit.when")}</th><th>{t!("audit.actor")}</th><th>{t!("audit.action")}</th>
                                            <th>{t!("audit.target")}</th><th>{t!("audit.change")}</th>
                                        </tr></thead>
                                        <tbody>
                                            {page.data.into_iter().map(|e| view! {
                                                <tr data-testid="audit-row">
                                                    <td>{when(e.at)}</td>
                                                    <td>{e.actor}</td>
                                                    <td><code>{e.action}</code></td>
                                                    <td><code>{e.target}</code></td>
                                                    <td class="change">
                                                        {e.before.map(|b| view! { <code class="before">{b}</code> })}
                                                        {e.after.map(|a| view! { " → " <code class="after">{a}</code> })}
                                                    </td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                    </div>
                                    <nav class="pager">
                                        <Show when=move || cursor.get().is_some()>
                                            <button type="button" class="link" on:click=move |_| cursor.set(None)>{t!("billing.newest")}</button>
                                        </Show>
                                        {next.map(|n| view! {
                                            <button type="button" class="link" on:click=move |_| cursor.set(Some(n.clone()))>{t!("billing.older")}</button>
                                        })}
                                    </nav>
                                }.into_any()
                            }
                            Err(e) => view! { <ErrorView error=e/> }.into_any(),
                        }
                    })}
                </Transition>
            </section>
        }/>
    }
}
