use super::api::prices;
use super::rates::{other_kinds, tier_line};
use crate::components::ErrorView;
use crate::i18n::format::{money, number};
use crate::t;
use crate::wire;
use leptos::prelude::*;
use types::ModelPrice;

/// The price table, searchable; open to visitors who are not signed in.
#[component]
pub fn PricingPage() -> impl IntoView {
    let table = wire::resource(|| (), |_| prices());
    let filter = RwSignal::new(String::new());
    view! {
        <header class="page-head">
            <h1>{t!("pricing.title")}</h1>
            <p class="muted">{t!("pricing.lead")}</p>
        </header>
        <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
            {move || Suspend::new(async move {
                match table.await {
                    Ok(p) => {
                        let rows = StoredValue::new(p.data);
                        let visible = move || {
                            let needle = filter.get().to_lowercase();
                            rows.get_value()
                                .into_iter()
                                .filter(|m| needle.is_empty() || m.model.to_lowercase().contains(&needle))
                                .collect::<Vec<ModelPrice>>()
                        };
                        view! {
                            <section class="panel">
                                <div class="table-head">
                                    <p class="muted" data-testid="multiplier">
                                        {t!("pricing.group")} " " <strong>{p.group}</strong> " · "
                                        {t!("pricing.multiplier")} " " <strong>{format!("×{}", p.multiplier)}</strong>
                                    </p>
                                    <input type="search" placeholder=t!("pricing.search")
                                        aria-label=t!("pricing.search") data-testid="price-filter"
                                        prop:value=move || filter.get()
                                        on:input=move |ev| filter.set(event_target_value(&ev))/>
                                </div>
                                <div class="scroll">
                                    <table data-testid="prices">
                                        <thead>
                                            <tr>
                                                <th>{t!("pricing.col_model")}</th>
                                                <th class="num">{t!("pricing.col_input")}</th>
                                                <th class="num">{t!("pricing.col_output")}</th>
                                                <th class="num">{t!("pricing.col_cached")}</th>
                                                <th class="num">{t!("pricing.col_request")}</th>
                                                <th>{t!("pricing.col_other")}</th>
                                                <th class="num">{t!("pricing.col_max_output")}</th>
                                            </tr>
                                        </thead>
                                        <tbody>
                                            {move || {
                                                let list = visible();
                                                if list.is_empty() {
                                                    return view! {
                                                        <tr><td colspan="7" class="muted">{t!("pricing.none")}</td></tr>
                                                    }.into_any();
                                                }
                                                list.into_iter().map(|m| {
                                                    let tiers = m.tiers.iter().map(tier_line).collect::<Vec<_>>();
                                                    view! {
                                                        <tr data-testid="price-row">
                                                            <td><code>{m.model}</code></td>
                                                            <td class="num">{money(m.rates.input_per_1m)}</td>
                                                            <td class="num">{money(m.rates.output_per_1m)}</td>
                                                            <td class="num">{money(m.rates.cached_input_per_1m)}</td>
                                                            <td class="num">{money(m.per_request)}</td>
                                                            <td class="small-print" data-testid="price-other">{other_kinds(&m.rates)}</td>
                                                            <td class="num">{number(m.max_output_tokens)}</td>
                                                        </tr>
                                                        {(!tiers.is_empty()).then(|| view! {
                                                            <tr class="sub-row" data-testid="price-tiers">
                                                                <td></td>
                                                                <td colspan="6" class="small-print">
                                                                    {tiers.into_iter().map(|l| view! { <div>{l}</div> }).collect_view()}
                                                                </td>
                                                            </tr>
                                                        })}
                                                    }
                                                }).collect_view().into_any()
                                            }}
                                        </tbody>
                                    </table>
                                </div>
                                <p class="muted small-print">{t!("pricing.units")}</p>
                            </section>
                        }.into_any()
                    }
                    Err(e) => view! { <ErrorView error=e/> }.into_any(),
                }
            })}
        </Transition>
    }
}
