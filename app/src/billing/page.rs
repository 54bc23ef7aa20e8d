//! The signed-in user's money: redeem a code, and every change of the balance (credits,
//! charges, adjustments with their reasons) in keyset pages kept in the URL.

use crate::components::{ErrorView, Guard, Post, PostForm};
use crate::dashboard::api::{Redeem, my_ledger};
use crate::i18n::error_text;
use crate::i18n::format::money;
use crate::t;
use crate::wire;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use types::{LedgerQuery, LedgerRow};

#[component]
pub fn BillingPage() -> impl IntoView {
    view! { <Billing/> }
}

#[component]
fn Billing() -> impl IntoView {
    let redeem = Post::<Redeem>::new();
    let query = use_query_map();
    let cursor = move || query.with(|q| q.get("cursor"));
    let ledger = wire::resource(
        move || (cursor(), redeem.version().get()),
        |(cursor, _)| {
            my_ledger(LedgerQuery {
                cursor,
                limit: Some("25".into()),
            })
        },
    );
    let redeemed = move || redeem.value().get().and_then(Result::ok);
    let redeem_error = move || {
        redeem
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| error_text(&e))
    };
    view! {
        <Guard page=move |_| view! {
            <header class="page-head">
                <h1>{t!("billing.title")}</h1>
                <p class="muted">{t!("billing.lead")}</p>
            </header>
            <section class="panel">
                <h2>{t!("billing.redeem")}</h2>
                <div class="inline-form">
                    <PostForm action=redeem>
                        <label class="grow">
                            <span>{t!("billing.code")}</span>
                            <input name="code" required autocomplete="off" spellcheck="false"
                                placeholder="RC-XXXX-XXXX-…" data-testid="redeem-code"/>
                        </label>
                        <button type="submit" class="primary" data-testid="redeem">{t!("billing.redeem_button")}</button>
                    </PostForm>
                </div>
                {move || redeemed().map(|r| view! {
                    <p class="success" role="status" data-testid="redeemed">
                        {t!("billing.credited")} " " <strong>{money(r.amount)}</strong> ". "
                        {t!("billing.new_balance")} " " <strong data-testid="new-balance">{money(r.balance)}</strong>
                    </p>
                })}
                <Show when=move || redeem_error().is_some()>
                    <p class="error" role="alert" data-testid="redeem-error">{redeem_error}</p>
                </Show>
            </section>
            <section class="panel">
                <h2>{t!("billing.ledger")}</h2>
                <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
                    {move || Suspend::new(async move {
                        match ledger.await {
                            Ok(page) => {
                                let next = page.next_cursor.clone();
                                let first = cursor().is_none();
                                view! {
                                    <Ledger rows=page.data/>
                                    <nav class="pager">
                                        <Show when=move || !first>
                                            <a href="/billing">{t!("billing.newest")}</a>
                                        </Show>
                                        {next.map(|c| view! {
                                            <a href=format!("/billing?cursor={c}") data-testid="older">{t!("billing.older")}</a>
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

/// A ledger kind as the console names it.
fn kind_text(kind: &str) -> &'static str {
    match kind {
        "credit" => t!("billing.kind_credit"),
        "charge" => t!("billing.kind_charge"),
        "adjustment" => t!("billing.kind_adjustment"),
        "refund" => t!("billing.kind_refund"),
        "import" => t!("billing.kind_import"),
        _ => t!("billing.kind_other"),
    }
}

/// What a ledger row is about: the reason given, the redeemed code, or the charged call.
fn about(row: &LedgerRow) -> String {
    match (&row.reason, &row.reference) {
        (Some(reason), _) => reason.clone(),
        (None, Some(r)) if r.starts_with("redeem:") => t!("billing.redeemed_code").to_string(),
        (None, Some(r)) => r.clone(),
        (None, None) => String::new(),
    }
}

#[component]
pub fn Ledger(rows: Vec<LedgerRow>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="muted" data-testid="ledger-empty">{t!("billing.empty")}</p> }
            .into_any();
    }
    view! {
        <div class="scroll">
            <table data-testid="ledger">
                <thead>
                    <tr>
                        <th>{t!("billing.col_when")}</th>
                        <th>{t!("billing.col_kind")}</th>
                        <th>{t!("billing.col_about")}</th>
                        <th class="num">{t!("billing.col_amount")}</th>
                        <th class="num">{t!("billing.col_balance")}</th>
                    </tr>
                </thead>
                <tbody>
                    {rows.into_iter().map(|r| {
                        let sign = if r.amount.units() > 0 { "num plus" } else { "num" };
                        view! {
                            <tr data-testid="ledger-row">
                                <td>{crate::components::when(r.created_at)}</td>
                                <td>{kind_text(&r.kind)}</td>
                                <td>{about(&r)}</td>
                                <td class=sign>{money(r.amount)}</td>
                                <td class="num">{money(r.balance_after)}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}
