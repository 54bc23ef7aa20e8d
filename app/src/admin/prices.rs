//! Prices and groups: a model's price set (a new version, served by the gateway at once) and
//! the groups' multipliers.

use super::api::{DeleteGroup, DeletePrice, SetGroup, SetPrice, admin_prices, price_history};
use super::nav::{AdminNav, FormError};
use crate::components::{ConfirmPost, ErrorView, Guard, Post, PostForm, when};
use crate::i18n::format::{money, number};
use crate::pricing::rates::{other_kinds, tier_line};
use crate::t;
use crate::wire;
use leptos::prelude::*;
use types::{Credits, PriceTier, PriceVersion, PriceView};

#[component]
pub fn AdminPricesPage() -> impl IntoView {
    view! { <Prices/> }
}

/// A label and an input for a rate that may stay empty (and then falls back), filled from the
/// price being edited.
macro_rules! optional {
    ($value:ident, $err:ident, $name:literal, $label:literal, $field:ident, $testid:literal) => {
        view! {
            <label>
                <span>{t!($label)}</span>
                <input name=$name inputmode="decimal" data-testid=$testid placeholder=t!("prices.falls_back")
                    prop:value=$value(|p| p.rates.$field.map(|c| c.to_usd_string()).unwrap_or_default())/>
                {$err.at($name)}
            </label>
        }
    };
}

#[component]
fn Prices() -> impl IntoView {
    let set_price = Post::<SetPrice>::new();
    let set_group = Post::<SetGroup>::new();
    let delete_price = Post::<DeletePrice>::new();
    let delete_group = Post::<DeleteGroup>::new();
    let data = wire::resource(
        move || {
            (
                set_price.version().get(),
                set_group.version().get(),
                delete_price.version().get(),
                delete_group.version().get(),
            )
        },
        |_| admin_prices(),
    );
    let delete_err = FormError::new(
        move || {
            delete_price
                .value()
                .get()
                .and_then(Result::err)
                .or_else(|| delete_group.value().get().and_then(Result::err))
        },
        &[],
    );
    // The price being edited: the form starts from it.
    let editing = RwSignal::new(None::<PriceView>);
    // The model whose versions are shown (after a save, with the new one).
    let shown = RwSignal::new(None::<String>);
    let history = wire::resource(
        move || (shown.get(), set_price.version().get()),
        |(model, _)| async move {
            match model {
                Some(m) => price_history(m).await.map(Some),
                None => Ok(None),
            }
        },
    );
    let price_err = FormError::new(
        move || set_price.value().get().and_then(Result::err),
        &[
            "model",
            "input_per_1m",
            "output_per_1m",
            "cached_input_per_1m",
            "cache_write_5m_per_1m",
            "cache_write_1h_per_1m",
            "reasoning_per_1m",
            "image_input_per_1m",
            "image_output_per_1m",
            "audio_input_per_1m",
            "audio_output_per_1m",
            "per_request",
            "max_output_tokens",
            "tiers",
        ],
    );
    let group_err = FormError::new(
        move || set_group.value().get().and_then(Result::err),
        &["group", "multiplier"],
    );
    let field =
        move |f: fn(&PriceView) -> String| move || editing.get().map(|p| f(&p)).unwrap_or_default();
    let saved = move || set_price.value().get().and_then(Result::ok);
    view! {
        <Guard admin=true page=move |_| view! {
            <header class="page-head">
                <h1>{t!("prices.title")}</h1>
                <p class="muted">{t!("prices.lead")}</p>
                <AdminNav/>
            </header>
            <section class="panel">
                <h2>{t!("prices.set")}</h2>
                <PostForm action=set_price>
                    <div class="form-grid">
                        <label>
                            <span>{t!("prices.model")}</span>
                            <input name="model" required maxlength="256" data-testid="price-model" prop:value=field(|p| p.model.clone())/>
                            {price_err.at("model")}
                        </label>
                        <label>
                            <span>{t!("prices.input")}</span>
                            <input name="input_per_1m" required inputmode="decimal" data-testid="price-input" prop:value=field(|p| p.rates.input_per_1m.to_usd_string())/>
                            {price_err.at("input_per_1m")}
                        </label>
                        <label>
                            <span>{t!("prices.output")}</span>
                            <input name="output_per_1m" required inputmode="decimal" data-testid="price-output" prop:value=field(|p| p.rates.output_per_1m.to_usd_string())/>
                            {price_err.at("output_per_1m")}
                        </label>
                        <label>
                            <span>{t!("prices.cached")}</span>
                            <input name="cached_input_per_1m" inputmode="decimal" prop:value=field(|p| p.rates.cached_input_per_1m.to_usd_string())/>
                            {price_err.at("cached_input_per_1m")}
                        </label>
                        {optional!(field, price_err, "cache_write_5m_per_1m", "prices.cache_write_5m", cache_write_5m_per_1m, "price-cache-write-5m")}
                        {optional!(field, price_err, "cache_write_1h_per_1m", "prices.cache_write_1h", cache_write_1h_per_1m, "price-cache-write-1h")}
                        {optional!(field, price_err, "reasoning_per_1m", "prices.reasoning", reasoning_per_1m, "price-reasoning")}
                        {optional!(field, price_err, "image_input_per_1m", "prices.image_input", image_input_per_1m, "price-image-input")}
                        {optional!(field, price_err, "image_output_per_1m", "prices.image_output", image_output_per_1m, "price-image-output")}
                        {optional!(field, price_err, "audio_input_per_1m", "prices.audio_input", audio_input_per_1m, "price-audio-input")}
                        {optional!(field, price_err, "audio_output_per_1m", "prices.audio_output", audio_output_per_1m, "price-audio-output")}
                        <label>
                            <span>{t!("prices.per_request")}</span>
                            <input name="per_request" inputmode="decimal" prop:value=field(|p| p.per_request.to_usd_string())/>
                            {price_err.at("per_request")}
                        </label>
                        <label>
                            <span>{t!("prices.max_output")}</span>
                            <input name="max_output_tokens" inputmode="numeric" data-testid="price-max-output" prop:value=field(|p| p.max_output_tokens.map(|m| m.to_string()).unwrap_or_default())/>
                            {price_err.at("max_output_tokens")}
                        </label>
                    </div>
                    <p class="muted small-print">{t!("prices.hint")}</p>
                    <fieldset class="tiers">
                        <legend>{t!("prices.tiers")}</legend>
                        <p class="muted small-print">{t!("prices.tiers_hint")}</p>
                        <div class="tier-rows">
                            {move || {
                                let tiers = editing.get().map(|p| p.tiers).unwrap_or_default();
                                // Each tier of the price edited, and one empty row to add one.
                                tiers.into_iter().map(Some).chain([None]).map(|tier| {
                                    let v = |f: fn(&PriceTier) -> String| tier.as_ref().map(f).unwrap_or_default();
                                    let opt = |c: Option<Credits>| c.map(|c| c.to_usd_string()).unwrap_or_default();
                                    view! {
                                        <div class="tier-row" data-testid="tier-row">
                                            <label><span>{t!("prices.tier_above")}</span>
                                                <input name="tier_above[]" inputmode="numeric" data-testid="tier-above" prop:value=v(|t| t.above_tokens.to_string())/></label>
                                            <label><span>{t!("prices.input")}</span>
                                                <input name="tier_input[]" inputmode="decimal" data-testid="tier-input" prop:value=v(|t| t.rates.input_per_1m.to_usd_string())/></label>
                                            <label><span>{t!("prices.output")}</span>
                                                <input name="tier_output[]" inputmode="decimal" data-testid="tier-output" prop:value=v(|t| t.rates.output_per_1m.to_usd_string())/></label>
                                            <label><span>{t!("prices.cached")}</span>
                                                <input name="tier_cached[]" inputmode="decimal" prop:value=v(|t| t.rates.cached_input_per_1m.to_usd_string())/></label>
                                            <label><span>{t!("prices.cache_write_5m")}</span>
                                                <input name="tier_write_5m[]" inputmode="decimal" prop:value=tier.as_ref().map(|t| opt(t.rates.cache_write_5m_per_1m)).unwrap_or_default()/></label>
                                            <label><span>{t!("prices.cache_write_1h")}</span>
                                                <input name="tier_write_1h[]" inputmode="decimal" prop:value=tier.as_ref().map(|t| opt(t.rates.cache_write_1h_per_1m)).unwrap_or_default()/></label>
                                        </div>
                                    }
                                }).collect_view()
                            }}
                        </div>
                        {price_err.at("tiers")}
                        // Which tier and field, in the server's words (`tiers[0].above_tokens: …`).
                        {move || set_price.value().get().and_then(Result::err)
                            .filter(|e| e.param.as_deref() == Some("tiers"))
                            .map(|e| view! { <p class="muted small-print" data-testid="tier-error">{e.message.clone()}</p> })}
                    </fieldset>
                    <button type="submit" class="primary" data-testid="save-price">{t!("prices.save")}</button>
                    {price_err.other()}
                </PostForm>
                {move || saved().map(|p| view! {
                    <p class="success" role="status" data-testid="price-saved">
                        {t!("prices.saved")} " " <strong>{p.model.clone()}</strong> " v" {p.version}
                    </p>
                })}
            </section>
            <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
                {move || Suspend::new(async move {
                    let (prices, groups) = match data.await {
                        Ok(d) => d,
                        Err(e) => return view! { <ErrorView error=e/> }.into_any(),
                    };
                    view! {
                        <section class="panel">
                            <h2>{t!("prices.in_force")}</h2>
                            {delete_err.other()}
                            <div class="scroll">
                            <table data-testid="admin-prices">
                                <thead><tr>
                                    <th>{t!("prices.model")}</th><th class="num">{t!("prices.version")}</th>
                                    <th class="num">{t!("prices.input")}</th><th class="num">{t!("prices.output")}</th>
                                    <th class="num">{t!("prices.cached")}</th><th class="num">{t!("prices.per_request")}</th>
                                    <th>{t!("prices.other")}</th><th></th>
                                </tr></thead>
                                <tbody>
                                    {prices.into_iter().map(|p| {
                                        let edit = p.clone();
                                        let model = p.model.clone();
                                        view! {
                                            <tr data-testid="admin-price-row">
                                                <td>{p.model.clone()}</td>
                                                <td class="num">{p.version}</td>
                                                {price_cells(&p)}
                                                <td class="actions">
                                                    <button type="button" class="small" on:click=move |_| editing.set(Some(edit.clone()))>{t!("prices.edit")}</button>
                                                    <button type="button" class="small" data-testid="price-history" on:click=move |_| shown.set(Some(model.clone()))>{t!("prices.history")}</button>
                                                    <ConfirmPost action=delete_price fields=vec![("model", p.model.clone())]
                                                        label=t!("keys.delete") question=t!("prices.confirm_delete") testid="delete-price"/>
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                            </div>
                        </section>
                        <section class="panel">
                            <h2>{t!("prices.groups")}</h2>
                            <table data-testid="groups">
                                <thead><tr><th>{t!("admin.group")}</th><th class="num">{t!("prices.multiplier")}</th><th>{t!("prices.source")}</th><th></th></tr></thead>
                                <tbody>
                                    {groups.into_iter().map(|g| {
                                        // The config's multipliers are changed in the config.
                                        let removable = g.source == "database";
                                        let name = g.name.clone();
                                        view! {
                                            <tr data-testid="group-row">
                                                <td>{g.name}</td><td class="num">"× " {g.multiplier}</td><td>{g.source}</td>
                                                <td class="actions">
                                                    {removable.then(|| view! {
                                                        <ConfirmPost action=delete_group fields=vec![("name", name)]
                                                            label=t!("keys.delete") question=t!("prices.confirm_delete_group") testid="delete-group"/>
                                                    })}
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </section>
                    }.into_any()
                })}
            </Transition>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match history.await {
                        Ok(Some(versions)) => view! { <History versions/> }.into_any(),
                        Ok(None) => ().into_any(),
                        Err(e) => view! { <ErrorView error=e/> }.into_any(),
                    }
                })}
            </Transition>
            <section class="panel">
                <h2>{t!("prices.set_group")}</h2>
                <PostForm action=set_group>
                    <div class="form-grid">
                        <label>
                            <span>{t!("admin.group")}</span>
                            <input name="name" required maxlength="64"/>
                            {group_err.at("group")}
                        </label>
                        <label>
                            <span>{t!("prices.multiplier")}</span>
                            <input name="multiplier" required inputmode="decimal" placeholder="1.5"/>
                            {group_err.at("multiplier")}
                        </label>
                    </div>
                    <button type="submit" class="primary">{t!("prices.save")}</button>
                    {group_err.other()}
                </PostForm>
            </section>
        }/>
    }
}

/// A model's price versions, newest first; the one charged now is marked.
#[component]
fn History(versions: Vec<PriceVersion>) -> impl IntoView {
    let model = versions
        .first()
        .map(|v| v.price.model.clone())
        .unwrap_or_default();
    view! {
        <section class="panel" data-testid="price-history-panel">
            <h2>{t!("prices.history_of")} " " <code>{model}</code></h2>
            <div class="scroll">
            <table class="stack">
                <thead><tr>
                    <th class="num">{t!("prices.version")}</th><th class="num">{t!("prices.input")}</th>
                    <th class="num">{t!("prices.output")}</th><th class="num">{t!("prices.cached")}</th>
                    <th class="num">{t!("prices.per_request")}</th><th>{t!("prices.other")}</th>
                    <th>{t!("prices.set_at")}</th><th></th>
                </tr></thead>
                <tbody>
                    {versions.into_iter().map(|v| {
                        let p = v.price;
                        view! {
                            <tr data-testid="price-version">
                                <td class="num" data-label=t!("prices.version")>"v" {p.version}</td>
                                {price_cells(&p)}
                                <td data-label=t!("prices.set_at")>{when(v.created_at)}</td>
                                <td>{v.active.then(|| view! { <span class="badge active">{t!("prices.in_use")}</span> })}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            </div>
        </section>
    }
}

/// A price's figures, as both tables show them (labelled for the stacked phone layout): the
/// four main rates, then the other kinds it prices apart, its most output tokens and its tiers.
fn price_cells(p: &PriceView) -> impl IntoView + use<> {
    let mut other = vec![other_kinds(&p.rates)];
    if let Some(m) = p.max_output_tokens {
        other.push(format!("{} {}", t!("prices.max_output"), number(m)));
    }
    other.extend(p.tiers.iter().map(tier_line));
    other.retain(|l| !l.is_empty());
    view! {
        <td class="num" data-label=t!("prices.input")>{money(p.rates.input_per_1m)}</td>
        <td class="num" data-label=t!("prices.output")>{money(p.rates.output_per_1m)}</td>
        <td class="num" data-label=t!("prices.cached")>{money(p.rates.cached_input_per_1m)}</td>
        <td class="num" data-label=t!("prices.per_request")>{money(p.per_request)}</td>
        <td class="small-print" data-label=t!("prices.other") data-testid="price-other">
            {other.into_iter().map(|l| view! { <div>{l}</div> }).collect_view()}
        </td>
    }
}
