//! Model mappings: each public model's ordered list of upstream model names (the fallback
//! order), reordered with buttons (keyboard too), with warnings when a target has no channel
//! or the model has no price.

use super::api::{AddTarget, DeleteMapping, SetMapping, admin_mappings};
use super::nav::{AdminNav, FormError};
use crate::components::{ConfirmPost, ErrorView, Guard, Post, PostForm};
use crate::t;
use crate::wire;
use leptos::prelude::*;
use std::collections::HashSet;
use types::Mapping;

#[component]
pub fn AdminMappingsPage() -> impl IntoView {
    view! { <Mappings/> }
}

#[component]
fn Mappings() -> impl IntoView {
    let set = Post::<SetMapping>::new();
    let add = Post::<AddTarget>::new();
    let delete = Post::<DeleteMapping>::new();
    let data = wire::resource(
        move || {
            (
                set.version().get(),
                add.version().get(),
                delete.version().get(),
            )
        },
        |_| admin_mappings(),
    );
    let err = FormError::new(
        move || {
            set.value()
                .get()
                .and_then(Result::err)
                .or_else(|| add.value().get().and_then(Result::err))
                .or_else(|| delete.value().get().and_then(Result::err))
        },
        &["model", "targets"],
    );
    view! {
        <Guard admin=true page=move |_| view! {
            <header class="page-head">
                <h1>{t!("mappings.title")}</h1>
                <p class="muted">{t!("mappings.lead")}</p>
                <AdminNav/>
            </header>
            <section class="panel">
                <h2>{t!("mappings.new")}</h2>
                <PostForm action=set>
                    <div class="form-grid">
                        <label>
                            <span>{t!("mappings.model")}</span>
                            <input name="model" required maxlength="256" data-testid="mapping-model"/>
                            {err.at("model")}
                        </label>
                        <label class="wide">
                            <span>{t!("mappings.targets")}</span>
                            <input name="targets" required placeholder="gpt-4o, gpt-4o-mini" data-testid="mapping-targets"/>
                            {err.at("targets")}
                        </label>
                    </div>
                    <button type="submit" class="primary" data-testid="save-mapping">{t!("prices.save")}</button>
                    {err.other()}
                </PostForm>
            </section>
            <section class="panel">
                <h2>{t!("mappings.all")}</h2>
                <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
                    {move || Suspend::new(async move {
                        let (mappings, channels, prices) = match data.await {
                            Ok(d) => d,
                            Err(e) => return view! { <ErrorView error=e/> }.into_any(),
                        };
                        if mappings.is_empty() {
                            return view! { <p class="muted">{t!("mappings.none")}</p> }.into_any();
                        }
                        let served: HashSet<String> = channels
                            .iter()
                            .filter(|c| c.enabled)
                            .flat_map(|c| c.models.iter().cloned())
                            .collect();
                        let priced: HashSet<String> = prices.into_iter().map(|p| p.model).collect();
                        view! {
                            <div class="mappings">
                                {mappings.into_iter().map(|m| {
                                    let unpriced = !priced.contains(&m.model) && !m.targets.iter().any(|t| priced.contains(t));
                                    let unserved: Vec<String> = m.targets.iter().filter(|t| !served.contains(*t)).cloned().collect();
                                    view! { <MappingCard m unpriced unserved set add delete/> }
                                }).collect_view()}
                            </div>
                        }.into_any()
                    })}
                </Transition>
            </section>
        }/>
    }
}

/// `targets` with the one at `i` swapped with its neighbour `j`, as the form sends them.
fn swapped(targets: &[String], i: usize, j: usize) -> String {
    let mut t = targets.to_vec();
    t.swap(i, j);
    t.join("\n")
}

#[component]
fn MappingCard(
    m: Mapping,
    unpriced: bool,
    unserved: Vec<String>,
    set: Post<SetMapping>,
    add: Post<AddTarget>,
    delete: Post<DeleteMapping>,
) -> impl IntoView {
    let n = m.targets.len();
    let model = StoredValue::new(m.model.clone());
    let targets = StoredValue::new(m.targets.clone());
    view! {
        <article class="mapping" data-testid="mapping" data-model=m.model.clone()>
            <h3><code>{m.model.clone()}</code></h3>
            <Show when=move || unpriced>
                <p class="warning" data-testid="mapping-unpriced">{t!("mappings.unpriced")}</p>
            </Show>
            {(!unserved.is_empty()).then(|| view! {
                <p class="warning" data-testid="mapping-unserved">{t!("mappings.unserved")} " " <code>{unserved.join(", ")}</code></p>
            })}
            <ol class="targets">
                {m.targets.iter().cloned().enumerate().map(|(i, target)| {
                    let up = (i > 0).then(|| targets.with_value(|t| swapped(t, i, i - 1)));
                    let down = (i + 1 < n).then(|| targets.with_value(|t| swapped(t, i, i + 1)));
                    let rest = targets.with_value(|t| {
                        t.iter().enumerate().filter(|(k, _)| *k != i).map(|(_, x)| x.clone()).collect::<Vec<_>>().join("\n")
                    });
                    let (up_name, down_name, rm_name) = (target.clone(), target.clone(), target.clone());
                    view! {
                        <li data-testid="target">
                            <code>{target}</code>
                            {up.map(|t| view! {
                                <PostForm action=set>
                                    <input type="hidden" name="model" value=model.get_value()/>
                                    <input type="hidden" name="targets" value=t/>
                                    <button type="submit" class="small" aria-label=t!("mappings.up_model", model = up_name)
                                        data-testid="target-up">"↑"</button>
                                </PostForm>
                            })}
                            {down.map(|t| view! {
                                <PostForm action=set>
                                    <input type="hidden" name="model" value=model.get_value()/>
                                    <input type="hidden" name="targets" value=t/>
                                    <button type="submit" class="small" aria-label=t!("mappings.down_model", model = down_name)
                                        data-testid="target-down">"↓"</button>
                                </PostForm>
                            })}
                            {(n > 1).then(|| view! {
                                <PostForm action=set>
                                    <input type="hidden" name="model" value=model.get_value()/>
                                    <input type="hidden" name="targets" value=rest/>
                                    <button type="submit" class="small danger" aria-label=t!("mappings.remove_model", model = rm_name)>"✕"</button>
                                </PostForm>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ol>
            <div class="inline-form">
                <PostForm action=add>
                    <input type="hidden" name="model" value=model.get_value()/>
                    <label class="grow">
                        <span>{t!("mappings.add_target")}</span>
                        <input name="target" required maxlength="256" data-testid="add-target"/>
                    </label>
                    <button type="submit" class="small">{t!("mappings.add")}</button>
                </PostForm>
            </div>
            <ConfirmPost action=delete fields=vec![("model", model.get_value())]
                label=t!("mappings.delete") question=t!("mappings.confirm_delete")/>
        </article>
    }
}
