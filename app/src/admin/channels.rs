//! Channels: created, edited (the upstream key write-only), enabled, disabled, deleted after a
//! confirmation, tested live; each with its last hour and circuit as this instance saw them.

use super::api::{DeleteChannel, SaveChannel, TestChannel, ToggleChannel, admin_channels};
use super::nav::{AdminNav, FormError};
use crate::components::{ConfirmPost, ErrorView, Guard, Post, PostForm};
use crate::t;
use crate::wire;
use leptos::prelude::*;
use types::{BoundField, ChannelHealth, ChannelKind, ChannelView};

#[component]
pub fn AdminChannelsPage() -> impl IntoView {
    view! { <Channels/> }
}

#[component]
fn Channels() -> impl IntoView {
    let save = Post::<SaveChannel>::new();
    let toggle = Post::<ToggleChannel>::new();
    let delete = Post::<DeleteChannel>::new();
    let test = Post::<TestChannel>::new();
    let data = wire::resource(
        move || {
            (
                save.version().get(),
                toggle.version().get(),
                delete.version().get(),
                test.version().get(),
            )
        },
        |_| admin_channels(),
    );
    let editing = RwSignal::new(None::<ChannelView>);
    // A channel saved: the form is emptied for the next one.
    Effect::watch(
        move || save.version().get(),
        move |_, _, _| {
            if matches!(save.value().get_untracked(), Some(Ok(_))) {
                editing.set(None);
            }
        },
        false,
    );
    let err = FormError::new(
        move || save.value().get().and_then(Result::err),
        &[
            "name",
            "kind",
            "base_url",
            "api_version",
            "max_tokens_field",
            "stream_usage",
            "api_key",
            "models",
            "groups",
            "priority",
            "weight",
            "first_byte_timeout_ms",
            "answer_timeout_ms",
            "connect_timeout_ms",
            "idle_timeout_ms",
        ],
    );
    let row_err = FormError::new(
        move || {
            toggle
                .value()
                .get()
                .and_then(Result::err)
                .or_else(|| delete.value().get().and_then(Result::err))
                .or_else(|| test.value().get().and_then(Result::err))
        },
        &[],
    );
    let val = move |f: fn(&ChannelView) -> String| {
        move || editing.get().map(|c| f(&c)).unwrap_or_default()
    };
    view! {
        <Guard admin=true page=move |_| view! {
            <header class="page-head">
                <h1>{t!("channels.title")}</h1>
                <p class="muted">{t!("channels.lead")}</p>
                <AdminNav/>
            </header>
            <section class="panel">
                <h2>{move || if editing.get().is_some() { t!("channels.edit") } else { t!("channels.new") }}</h2>
                <PostForm action=save>
                    {move || editing.get().map(|c| view! { <input type="hidden" name="id" value=c.id.to_string()/> })}
                    <div class="form-grid">
                        <label>
                            <span>{t!("channels.name")}</span>
                            <input name="name" required maxlength="64" data-testid="channel-name" prop:value=val(|c| c.name.clone())/>
                            {err.at("name")}
                        </label>
                        <label>
                            <span>{t!("channels.kind")}</span>
                            <select name="kind" data-testid="channel-kind" prop:value=move || editing.get().map(|c| c.kind).unwrap_or_default().as_str()>
                                {ChannelKind::ALL.into_iter().map(|k| view! {
                                    <option value=k.as_str() selected=move || editing.get().map(|c| c.kind).unwrap_or_default() == k>{kind_label(k)}</option>
                                }).collect_view()}
                            </select>
                            {err.at("kind")}
                        </label>
                        <label class="wide">
                            <span>{t!("channels.base_url")}</span>
                            <input name="base_url" required placeholder="https://api.openai.com/v1" data-testid="channel-url" prop:value=val(|c| c.base_url.clone())/>
                            {err.at("base_url")}
                        </label>
                        <label>
                            <span>{t!("channels.api_version")}</span>
                            <input name="api_version" maxlength="32" placeholder="2024-10-21" data-testid="channel-api-version"
                                prop:value=val(|c| c.api_version.clone().unwrap_or_default())/>
                            {err.at("api_version")}
                        </label>
                        <label>
                            <span>{t!("channels.api_key")}</span>
                            <input name="api_key" type="password" autocomplete="off" data-testid="channel-key"
                                placeholder=move || if editing.get().is_some_and(|c| c.has_api_key) { t!("channels.key_kept") } else { "" }/>
                            {err.at("api_key")}
                        </label>
                        <label class="wide">
                            <span>{t!("channels.models")}</span>
                            <input name="models" placeholder="gpt-4o, gpt-4o-mini" data-testid="channel-models" prop:value=val(|c| c.models.join(", "))/>
                            {err.at("models")}
                        </label>
                        <label class="wide">
                            <span>{t!("channels.groups")}</span>
                            <input name="groups" placeholder=t!("channels.groups_all") data-testid="channel-groups" prop:value=val(|c| c.groups.join(", "))/>
                            {err.at("groups")}
                        </label>
                        <label>
                            <span>{t!("channels.priority")}</span>
                            <input name="priority" type="number" prop:value=val(|c| c.priority.to_string())/>
                            {err.at("priority")}
                        </label>
                        <label>
                            <span>{t!("channels.weight")}</span>
                            <input name="weight" type="number" min="1" prop:value=val(|c| c.weight.to_string())/>
                            {err.at("weight")}
                        </label>
                        <label>
                            <span>{t!("channels.first_byte")}</span>
                            <input name="first_byte_timeout_ms" type="number" min="1" placeholder="60000" prop:value=val(|c| c.first_byte_timeout_ms.to_string())/>
                            {err.at("first_byte_timeout_ms")}
                        </label>
                        <label>
                            <span>{t!("channels.answer")}</span>
                            <input name="answer_timeout_ms" type="number" min="1" placeholder="600000" data-testid="channel-answer-timeout" prop:value=val(|c| c.answer_timeout_ms.to_string())/>
                            {err.at("answer_timeout_ms")}
                        </label>
                        <label>
                            <span>{t!("channels.connect")}</span>
                            <input name="connect_timeout_ms" type="number" min="1" placeholder="5000" data-testid="channel-connect-timeout" prop:value=val(|c| c.connect_timeout_ms.to_string())/>
                            {err.at("connect_timeout_ms")}
                        </label>
                        <label>
                            <span>{t!("channels.idle")}</span>
                            <input name="idle_timeout_ms" type="number" min="1" placeholder="120000" data-testid="channel-idle-timeout" prop:value=val(|c| c.idle_timeout_ms.to_string())/>
                            {err.at("idle_timeout_ms")}
                        </label>
                        <label>
                            <span>{t!("channels.bound_field")}</span>
                            <select name="max_tokens_field" data-testid="channel-bound-field"
                                prop:value=move || editing.get().and_then(|c| c.max_tokens_field).map_or("", BoundField::as_str)>
                                <option value="">{t!("channels.bound_default")}</option>
                                {[BoundField::MaxTokens, BoundField::MaxCompletionTokens].into_iter().map(|f| view! {
                                    <option value=f.as_str() selected=move || editing.get().and_then(|c| c.max_tokens_field) == Some(f)>{f.as_str()}</option>
                                }).collect_view()}
                            </select>
                            {err.at("max_tokens_field")}
                        </label>
                        <label class="check">
                            <input type="checkbox" name="stream_usage" value="on" data-testid="channel-stream-usage"
                                prop:checked=move || editing.get().is_none_or(|c| c.stream_usage)/>
                            {t!("channels.stream_usage")}
                            {err.at("stream_usage")}
                        </label>
                        <label class="check">
                            <input type="checkbox" name="enabled" value="on" prop:checked=move || editing.get().is_none_or(|c| c.enabled)/>
                            {t!("channels.enabled")}
                        </label>
                    </div>
                    <p class="muted small-print">{t!("channels.key_hint")}</p>
                    <button type="submit" class="primary" data-testid="save-channel">{t!("prices.save")}</button>
                    <Show when=move || editing.get().is_some()>
                        <button type="button" class="link" on:click=move |_| editing.set(None)>{t!("keys.delete_no")}</button>
                    </Show>
                    {err.other()}
                </PostForm>
            </section>
            {move || test.value().get().and_then(Result::ok).map(|r| view! {
                <section class=if r.ok { "panel test ok" } else { "panel test failed" } data-testid="channel-test" role="status">
                    <h2>{t!("channels.test_result")} " #" {r.channel_id} " · " <code>{r.model.clone()}</code></h2>
                    <p>
                        <strong data-testid="test-outcome">{if r.ok { t!("channels.test_ok") } else { t!("channels.test_failed") }}</strong>
                        {r.status.map(|s| format!(" · HTTP {s}"))}
                        " · " {r.latency_ms} " ms"
                    </p>
                    {r.error.map(|e| view! { <pre class="upstream-error" data-testid="test-error">{e}</pre> })}
                </section>
            })}
            <section class="panel">
                <h2>{t!("channels.all")}</h2>
                {row_err.other()}
                {move || test.pending().get().then(|| view! { <p class="muted" role="status">{t!("channels.testing")}</p> })}
                <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
                    {move || Suspend::new(async move {
                        let (channels, health) = match data.await {
                            Ok(d) => d,
                            Err(e) => return view! { <ErrorView error=e/> }.into_any(),
                        };
                        if channels.is_empty() {
                            return view! { <p class="muted">{t!("channels.none")}</p> }.into_any();
                        }
                        view! {
                            <div class="scroll">
                            <table data-testid="channels">
                                <thead><tr>
                                    <th>{t!("channels.name")}</th><th>{t!("channels.kind")}</th><th>{t!("channels.base_url")}</th><th>{t!("channels.models")}</th>
                                    <th class="num">{t!("channels.priority")}</th><th>{t!("keys.col_status")}</th>
                                    <th>{t!("channels.health")}</th><th></th>
                                </tr></thead>
                                <tbody>
                                    {channels.into_iter().map(|c| {
                                        let h = health.iter().find(|h| h.channel_id == c.id).cloned();
                                        view! { <ChannelRow c h editing toggle delete test/> }
                                    }).collect_view()}
                                </tbody>
                            </table>
                            </div>
                        }.into_any()
                    })}
                </Transition>
            </section>
        }/>
    }
}

/// A kind as the console names it.
fn kind_label(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::OpenAi => "OpenAI",
        ChannelKind::OpenAiCompatible => t!("channels.kind_compatible"),
        ChannelKind::Anthropic => "Anthropic",
        ChannelKind::Azure => "Azure OpenAI",
        ChannelKind::Gemini => "Google Gemini",
    }
}

/// The last hour and the circuit, in a few words.
fn health_text(h: Option<&ChannelHealth>) -> String {
    let Some(h) = h else {
        return t!("channels.no_traffic").to_string();
    };
    let mut parts = Vec::new();
    if h.requests == 0 {
        parts.push(t!("channels.no_traffic").to_string());
    } else {
        let ok = (h.requests - h.failures) as f64 * 100.0 / h.requests as f64;
        parts.push(format!("{ok:.1}% ({})", h.requests));
        if let Some(ms) = h.mean_latency_ms {
            parts.push(format!("{ms} ms"));
        }
    }
    if h.cooldown_ms > 0 {
        parts.push(format!(
            "{} {} s",
            t!("channels.circuit_open"),
            h.cooldown_ms.div_ceil(1000)
        ));
    } else if h.failures_in_a_row > 0 {
        parts.push(format!(
            "{} × {}",
            t!("channels.failing"),
            h.failures_in_a_row
        ));
    }
    parts.join(" · ")
}

#[component]
fn ChannelRow(
    c: ChannelView,
    h: Option<ChannelHealth>,
    editing: RwSignal<Option<ChannelView>>,
    toggle: Post<ToggleChannel>,
    delete: Post<DeleteChannel>,
    test: Post<TestChannel>,
) -> impl IntoView {
    let id = StoredValue::new(c.id.to_string());
    let edit = StoredValue::new(c.clone());
    let open = h.as_ref().is_some_and(|h| h.cooldown_ms > 0);
    let first_model = c.models.first().cloned().unwrap_or_default();
    view! {
        <tr data-testid="channel-row">
            <td>{c.name.clone()}</td>
            <td data-testid="channel-kind-cell">{kind_label(c.kind)}</td>
            <td><code>{c.base_url.clone()}</code></td>
            <td>
                {c.models.join(", ")}
                {(!c.groups.is_empty()).then(|| view! {
                    <div class="muted" data-testid="channel-groups-cell">{t!("channels.groups_only")} " " {c.groups.join(", ")}</div>
                })}
            </td>
            <td class="num">{c.priority} " / " {c.weight}</td>
            <td>
                <span class=if c.enabled { "badge active" } else { "badge disabled" }>
                    {if c.enabled { t!("status.active") } else { t!("status.disabled") }}
                </span>
            </td>
            <td class=if open { "circuit open" } else { "circuit" } data-testid="channel-health">{health_text(h.as_ref())}</td>
            <td class="actions">
                <PostForm action=test>
                    <input type="hidden" name="id" value=id.get_value()/>
                    <input type="hidden" name="model" value=first_model/>
                    <button type="submit" class="small" data-testid="test-channel">{t!("channels.test")}</button>
                </PostForm>
                <button type="button" class="small" on:click=move |_| editing.set(Some(edit.get_value()))>{t!("prices.edit")}</button>
                <PostForm action=toggle>
                    <input type="hidden" name="id" value=id.get_value()/>
                    <input type="hidden" name="enabled" value=(!c.enabled).to_string()/>
                    <button type="submit" class="small">{if c.enabled { t!("keys.disable") } else { t!("keys.enable") }}</button>
                </PostForm>
                <ConfirmPost action=delete fields=vec![("id", id.get_value())]
                    label=t!("keys.delete") question=t!("channels.confirm_delete")/>
            </td>
        </tr>
    }
}
