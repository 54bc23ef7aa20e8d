//! The parts of an alerts panel both the account page and the admin overview show: where alerts
//! go (e-mail, webhook), the latest alerts with their deliveries, and a refused save's reason.

use crate::error::AppError;
use crate::i18n::error_text;
use crate::i18n::format::{money, when};
use crate::t;
use leptos::prelude::*;
use types::{AlertKind, AlertSettings, AlertTarget, AlertView, DeliveryStatus, ErrorInfo};

/// The e-mail and webhook fields, filled from `s` (the secret is never shown: an empty field
/// keeps the one set).
#[component]
pub fn AlertTargets(s: AlertSettings) -> impl IntoView {
    let secret_hint = if s.webhook_secret_set {
        t!("alerts.secret_kept")
    } else {
        t!("alerts.secret_new")
    };
    view! {
        <label>
            <span>{t!("alerts.email")}</span>
            {if s.email_available {
                view! { <input type="email" name="email" maxlength="254" autocomplete="email" value=s.email.unwrap_or_default() data-testid="alerts-email"/> }.into_any()
            } else {
                view! { <input type="email" disabled placeholder=t!("alerts.no_smtp") data-testid="alerts-email"/> }.into_any()
            }}
        </label>
        <label>
            <span>{t!("alerts.webhook")}</span>
            <input type="url" name="webhook_url" maxlength="2000" placeholder="https://hooks.example.com/tollgate" value=s.webhook_url.unwrap_or_default() data-testid="alerts-webhook"/>
        </label>
        <label>
            <span>{t!("alerts.secret")}</span>
            <input type="password" name="webhook_secret" minlength="16" maxlength="256" autocomplete="new-password" placeholder=secret_hint data-testid="alerts-secret"/>
        </label>
    }
}

/// Counts `post`'s successful answers: a panel reloads on them, and keeps a refused form as the
/// reader typed it.
pub fn successes<S: leptos::server_fn::ServerFn + 'static>(
    post: super::Post<S>,
) -> ReadSignal<usize>
where
    S::Output: Send + Sync + 'static,
{
    let n = RwSignal::new(0usize);
    Effect::watch(
        move || post.version().get(),
        move |_, _, _| {
            if post.value().with_untracked(|v| matches!(v, Some(Ok(_)))) {
                n.update(|n| *n += 1);
            }
        },
        false,
    );
    n.read_only()
}

/// The save button, and what the last save answered: saved, or the field and the server's
/// reason.
#[component]
pub fn SaveAlerts(#[prop(into)] answer: Signal<Option<Result<(), AppError>>>) -> impl IntoView {
    view! {
        <button type="submit" class="primary" data-testid="alerts-save">{t!("alerts.save")}</button>
        {move || answer.get().map(|r| match r {
            Ok(()) => view! { <p class="success" role="status" data-testid="alerts-saved">{t!("alerts.saved")}</p> }.into_any(),
            Err(e) => refusal(&e).into_any(),
        })}
    }
}

fn refusal(e: &ErrorInfo) -> impl IntoView + use<> {
    view! {
        <p class="error" role="alert" data-testid="alerts-error">
            {error_text(e)}
            <span class="muted small-print">" — "{e.message.clone()}</span>
        </p>
    }
}

/// What an alert says, in the reader's language.
fn said(a: &AlertView) -> String {
    let name = a.name.clone().unwrap_or_default();
    let amount = a.amount.map(money).unwrap_or_default();
    let threshold = a.threshold.map(money).unwrap_or_default();
    match a.kind {
        AlertKind::BalanceLow => t!(
            "alerts.kind_balance",
            amount = amount,
            threshold = threshold
        ),
        AlertKind::KeyCap => t!(
            "alerts.kind_key",
            name = name,
            amount = amount,
            threshold = threshold
        ),
        AlertKind::ChannelDown => t!("alerts.kind_down", name = name),
        AlertKind::ChannelUp => t!("alerts.kind_up", name = name),
        AlertKind::LedgerDrift => t!("alerts.kind_drift", amount = amount),
        AlertKind::LedgerAgrees => t!("alerts.kind_agrees").to_string(),
    }
}

/// The latest alerts, newest first, each with how its deliveries went.
#[component]
pub fn AlertList(recent: Vec<AlertView>) -> impl IntoView {
    view! {
        <h3>{t!("alerts.recent")}</h3>
        {alert_table(recent)}
    }
}

fn alert_table(recent: Vec<AlertView>) -> AnyView {
    if recent.is_empty() {
        return view! { <p class="muted" data-testid="alerts-none">{t!("alerts.none")}</p> }
            .into_any();
    }
    view! {
        <div class="scroll">
            <table data-testid="alerts-recent">
                <thead><tr><th>{t!("alerts.col_when")}</th><th>{t!("alerts.col_what")}</th><th>{t!("alerts.col_sent")}</th></tr></thead>
                <tbody>
                    {recent.into_iter().map(|a| {
                        let text = said(&a);
                        let deliveries = if a.deliveries.is_empty() {
                            view! { <span class="muted">{t!("alerts.not_sent")}</span> }.into_any()
                        } else {
                            a.deliveries.into_iter().map(|d| {
                                let target = match d.target {
                                    AlertTarget::Webhook => t!("alerts.webhook_short"),
                                    AlertTarget::Email => t!("alerts.email_short"),
                                };
                                let (class, status) = match d.status {
                                    DeliveryStatus::Sent => ("badge ok", t!("alerts.sent")),
                                    DeliveryStatus::Pending => ("badge warn", t!("alerts.pending")),
                                    DeliveryStatus::Failed => ("badge bad", t!("alerts.failed")),
                                };
                                view! {
                                    <span class=class title=d.last_error.unwrap_or_default()>
                                        {format!("{target}: {status}")}
                                        {(d.attempts > 1).then(|| format!(" ×{}", d.attempts))}
                                    </span>
                                    " "
                                }
                            }).collect_view().into_any()
                        };
                        view! {
                            <tr data-kind=a.kind.as_str()>
                                <td class="when">{when(a.created_at)}</td>
                                <td title=a.message>{text}</td>
                                <td>{deliveries}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}
