//! Redeem codes: a batch generated (its codes shown once, copied or downloaded as CSV), the
//! batches with their counts and value, a batch's codes with who used them, voiding.

use super::api::{CreateBatch, VoidBatch, VoidCode, batch_codes, list_batches};
use super::nav::{AdminNav, FormError};
use crate::components::{ConfirmPost, ErrorView, Guard, Post, PostForm, encode_query, when};
use crate::i18n::format::money;
use crate::t;
use crate::wire;
use leptos::prelude::*;
use types::{CreatedRedeemBatch, Credits, RedeemBatch, RedeemStatus};

#[component]
pub fn AdminRedeemPage() -> impl IntoView {
    view! { <Redeem/> }
}

fn status_label(s: RedeemStatus) -> &'static str {
    match s {
        RedeemStatus::Unused => t!("redeem.unused"),
        RedeemStatus::Used => t!("redeem.used"),
        RedeemStatus::Expired => t!("redeem.expired"),
        RedeemStatus::Voided => t!("redeem.voided"),
    }
}

#[component]
fn Redeem() -> impl IntoView {
    let create = Post::<CreateBatch>::new();
    let void_batch = Post::<VoidBatch>::new();
    let void_code = Post::<VoidCode>::new();
    let cursor = RwSignal::new(None::<String>);
    let batches = wire::resource(
        move || {
            (
                cursor.get(),
                create.version().get(),
                void_batch.version().get(),
                void_code.version().get(),
            )
        },
        |(cursor, ..)| list_batches(cursor),
    );
    let open = RwSignal::new(None::<i64>);
    let err = FormError::new(
        move || create.value().get().and_then(Result::err),
        &["count", "value", "expires_at", "batch"],
    );
    let void_err = FormError::new(
        move || {
            void_batch
                .value()
                .get()
                .and_then(Result::err)
                .or_else(|| void_code.value().get().and_then(Result::err))
        },
        &[],
    );
    view! {
        <Guard admin=true page=move |_| view! {
            <header class="page-head">
                <h1>{t!("redeem.title")}</h1>
                <p class="muted">{t!("redeem.lead")}</p>
                <AdminNav/>
            </header>
            {move || create.value().get().and_then(Result::ok).map(|b| view! { <NewCodes b create/> })}
            <section class="panel">
                <h2>{t!("redeem.generate")}</h2>
                <PostForm action=create>
                    <div class="form-grid">
                        <label>
                            <span>{t!("redeem.count")}</span>
                            <input name="count" type="number" min="1" max="10000" required value="10" data-testid="batch-count"/>
                            {err.at("count")}
                        </label>
                        <label>
                            <span>{t!("redeem.value")}</span>
                            <input name="value" required inputmode="decimal" placeholder="5.00" data-testid="batch-value"/>
                            {err.at("value")}
                        </label>
                        <label>
                            <span>{t!("redeem.last_day")}</span>
                            <input name="expires_on" type="date"/>
                            {err.at("expires_at")}
                        </label>
                        <label>
                            <span>{t!("redeem.label")}</span>
                            <input name="label" maxlength="100" data-testid="batch-label"/>
                            {err.at("batch")}
                        </label>
                    </div>
                    <button type="submit" class="primary" data-testid="generate">{t!("redeem.generate_button")}</button>
                    {move || create.pending().get().then(|| view! { <span class="muted" role="status">" " {t!("app.loading")}</span> })}
                    {err.other()}
                </PostForm>
            </section>
            <section class="panel">
                <h2>{t!("redeem.batches")}</h2>
                {void_err.other()}
                <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
                    {move || Suspend::new(async move {
                        match batches.await {
                            Ok(page) if page.data.is_empty() => view! { <p class="muted">{t!("redeem.none")}</p> }.into_any(),
                            Ok(page) => {
                                let next = page.next_cursor.clone();
                                view! {
                                    <div class="scroll">
                                        <table data-testid="batches">
                                            <thead><tr>
                                                <th>"#"</th><th>{t!("redeem.label")}</th><th class="num">{t!("redeem.value")}</th>
                                                <th class="num">{t!("redeem.count")}</th><th class="num">{t!("redeem.unused")}</th>
                                                <th class="num">{t!("redeem.used")}</th><th class="num">{t!("redeem.expired")}</th>
                                                <th class="num">{t!("redeem.voided")}</th><th class="num">{t!("redeem.total")}</th>
                                                <th>{t!("redeem.created")}</th><th></th>
                                            </tr></thead>
                                            <tbody>
                                                {page.data.into_iter().map(|b| view! { <BatchRow b open void_batch/> }).collect_view()}
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
            {move || open.get().map(|id| view! { <BatchCodes id void_code/> })}
        }/>
    }
}

/// The codes just generated, shown this once: copy them all, or download them as CSV.
#[component]
fn NewCodes(b: CreatedRedeemBatch, create: Post<CreateBatch>) -> impl IntoView {
    let copied = RwSignal::new(false);
    let all = b.codes.join("\n");
    let value = b.batch.value.to_usd_string();
    let mut csv = String::from("code,value_usd,batch\n");
    for c in &b.codes {
        csv.push_str(&format!("{c},{value},{}\n", b.batch.id));
    }
    let href = format!("data:text/csv;charset=utf-8,{}", encode_query(&csv));
    let file = format!("redeem-batch-{}.csv", b.batch.id);
    let copy = move |_| {
        let _promise = window().navigator().clipboard().write_text(&all);
        copied.set(true);
    };
    view! {
        <section class="panel secret" data-testid="new-codes" aria-live="polite">
            <h2>{t!("redeem.created_batch")} " #" {b.batch.id} " · " {count(i64::try_from(b.codes.len()).unwrap_or(0))} " × " {money(b.batch.value)}</h2>
            <p><strong>{t!("redeem.once")}</strong></p>
            <textarea readonly rows="6" class="codes" data-testid="new-codes-list" aria-label=t!("redeem.codes") prop:value=b.codes.join("\n")></textarea>
            <div class="copy-row">
                <button type="button" class="small" data-testid="copy-codes" on:click=copy>
                    {move || if copied.get() { t!("keys.copied") } else { t!("redeem.copy_all") }}
                </button>
                <a class="button small" href=href download=file data-testid="codes-csv">{t!("redeem.download_csv")}</a>
                <button type="button" class="link" on:click=move |_| create.value().set(None)>{t!("keys.done")}</button>
            </div>
        </section>
    }
}

#[component]
fn BatchRow(
    b: RedeemBatch,
    open: RwSignal<Option<i64>>,
    void_batch: Post<VoidBatch>,
) -> impl IntoView {
    let id = b.id;
    let total = Credits::from_units(b.value.units().saturating_mul(b.count));
    let has_unused = b.unused > 0;
    view! {
        <tr data-testid="batch-row">
            <td>{b.id}</td>
            <td>{b.label.clone().unwrap_or_default()}</td>
            <td class="num">{money(b.value)}</td>
            <td class="num">{count(b.count)}</td>
            <td class="num" data-testid="batch-unused">{count(b.unused)}</td>
            <td class="num" data-testid="batch-used">{count(b.used)}</td>
            <td class="num">{count(b.expired)}</td>
            <td class="num">{count(b.voided)}</td>
            <td class="num">{money(total)}</td>
            <td>{when(b.created_at)}</td>
            <td class="actions">
                <button type="button" class="small" data-testid="batch-codes"
                    aria-expanded=move || (open.get() == Some(id)).to_string()
                    on:click=move |_| open.update(|o| *o = if *o == Some(id) { None } else { Some(id) })>
                    {t!("redeem.codes")}
                </button>
                <Show when=move || has_unused>
                    <ConfirmPost action=void_batch fields=vec![("id", id.to_string())]
                        label=t!("redeem.void_batch") question=t!("redeem.confirm_void")/>
                </Show>
            </td>
        </tr>
    }
}

/// One batch's codes (their prefixes): status, who used each and when.
#[component]
fn BatchCodes(id: i64, void_code: Post<VoidCode>) -> impl IntoView {
    let cursor = RwSignal::new(None::<String>);
    let codes = wire::resource(
        move || (cursor.get(), void_code.version().get()),
        move |(cursor, _)| batch_codes(id, cursor),
    );
    view! {
        <section class="panel" data-testid="codes-panel">
            <h2>{t!("redeem.codes_of")} " #" {id}</h2>
            <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
                {move || Suspend::new(async move {
                    match codes.await {
                        Ok(page) => {
                            let next = page.next_cursor.clone();
                            view! {
                                <div class="scroll">
                                <table data-testid="codes">
                                    <thead><tr>
                                        <th>{t!("redeem.code")}</th><th>{t!("keys.col_status")}</th>
                                        <th>{t!("redeem.used_by")}</th><th>{t!("redeem.used_at")}</th><th></th>
                                    </tr></thead>
                                    <tbody>
                                        {page.data.into_iter().map(|c| {
                                            let unused = c.status == RedeemStatus::Unused;
                                            view! {
                                                <tr data-testid="code-row">
                                                    <td><code>{c.prefix.clone()}</code></td>
                                                    <td><span class=format!("badge {}", c.status.as_str())>{status_label(c.status)}</span></td>
                                                    <td>{c.used_by_name.clone().unwrap_or_default()}</td>
                                                    <td>{c.used_at.map(when).unwrap_or_default()}</td>
                                                    <td>
                                                        <Show when=move || unused>
                                                            <PostForm action=void_code>
                                                                <input type="hidden" name="id" value=c.id.to_string()/>
                                                                <button type="submit" class="small danger">{t!("redeem.void")}</button>
                                                            </PostForm>
                                                        </Show>
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                </div>
                                {next.map(|n| view! {
                                    <nav class="pager"><button type="button" class="link" on:click=move |_| cursor.set(Some(n.clone()))>{t!("billing.older")}</button></nav>
                                })}
                            }.into_any()
                        }
                        Err(e) => view! { <ErrorView error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// A count as the reader's locale writes it.
fn count(n: i64) -> String {
    crate::i18n::format::number(u64::try_from(n).unwrap_or(0))
}
