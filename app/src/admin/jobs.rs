//! Scheduled jobs (schedule, next run, latest run with its outcome, "run now") and the days of
//! call logs archived to object storage, each downloadable.

use super::api::{RunJob, admin_jobs};
use super::nav::{AdminNav, FormError};
use crate::components::{ErrorView, Guard, Post, PostForm};
use crate::i18n::format::{millis, number, when};
use crate::t;
use crate::wire;
use leptos::prelude::*;
use types::{JobOutcome, JobView};

#[component]
pub fn AdminJobsPage() -> impl IntoView {
    view! { <Jobs/> }
}

fn job_lead(name: &str) -> &'static str {
    match name {
        "retention" => t!("jobs.retention"),
        "cleanup" => t!("jobs.cleanup"),
        "channel_probe" => t!("jobs.channel_probe"),
        "backup" => t!("jobs.backup"),
        "ledger_check" => t!("jobs.ledger_check"),
        "alerts" => t!("jobs.alerts"),
        _ => "",
    }
}

#[component]
fn Jobs() -> impl IntoView {
    let run = Post::<RunJob>::new();
    let data = wire::resource(move || run.version().get(), |_| admin_jobs());
    let errors = FormError::new(move || run.value().get().and_then(Result::err), &[]);
    view! {
        <Guard admin=true page=move |_| view! {
            <header class="page-head">
                <h1>{t!("jobs.title")}</h1>
                <p class="muted">{t!("jobs.lead")}</p>
                <AdminNav/>
            </header>
            <section class="panel">
                <div class="panel-head">
                    <h2>{t!("jobs.jobs")}</h2>
                    <button type="button" class="secondary" data-testid="jobs-refresh" on:click=move |_| data.refetch()>{t!("jobs.refresh")}</button>
                </div>
                {errors.other()}
                <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
                    {move || Suspend::new(async move {
                        match data.await {
                            Ok((jobs, _)) => view! {
                                <div class="scroll">
                                <table class="stack" data-testid="jobs">
                                    <thead><tr>
                                        <th>{t!("jobs.job")}</th><th>{t!("jobs.schedule")}</th><th>{t!("jobs.next")}</th>
                                        <th>{t!("jobs.last")}</th><th>{t!("jobs.last_success")}</th><th></th>
                                    </tr></thead>
                                    <tbody>{jobs.into_iter().map(|j| job_row(j, run)).collect_view()}</tbody>
                                </table>
                                </div>
                            }.into_any(),
                            Err(e) => view! { <ErrorView error=e/> }.into_any(),
                        }
                    })}
                </Transition>
            </section>
            <section class="panel">
                <h2>{t!("jobs.archives")}</h2>
                <p class="muted">{t!("jobs.archives_lead")}</p>
                <Transition fallback=|| view! { <p class="muted">{t!("app.loading")}</p> }>
                    {move || Suspend::new(async move {
                        match data.await {
                            Ok((_, Ok(days))) if days.is_empty() => view! { <p class="muted">{t!("jobs.no_archives")}</p> }.into_any(),
                            Ok((_, Ok(days))) => view! {
                                <table data-testid="archives">
                                    <thead><tr><th>{t!("jobs.day")}</th><th class="num">{t!("jobs.bytes")}</th><th></th></tr></thead>
                                    <tbody>
                                        {days.into_iter().map(|d| {
                                            let href = format!("/api/admin/archives/{}", d.day);
                                            view! {
                                                <tr data-testid="archive-row">
                                                    <td>{d.day.clone()}</td>
                                                    <td class="num">{number(d.bytes)}</td>
                                                    <td><a href=href download=format!("usage-{}.jsonl.gz", d.day)>{t!("jobs.download")}</a></td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any(),
                            Ok((_, Err(e))) | Err(e) => view! { <ErrorView error=e/> }.into_any(),
                        }
                    })}
                </Transition>
            </section>
        }/>
    }
}

fn job_row(j: JobView, run: Post<RunJob>) -> impl IntoView {
    let name = j.name.clone();
    let lead = job_lead(&j.name);
    let last = j.last_run.clone().map(|r| {
        let (class, label) = match r.outcome {
            JobOutcome::Running => ("badge", t!("jobs.running")),
            JobOutcome::Ok => ("badge ok", t!("jobs.ok")),
            JobOutcome::Failed => ("badge bad", t!("jobs.failed")),
        };
        let took = r
            .finished_at
            .map(|f| millis(u64::try_from(f - r.started_at).unwrap_or(0)));
        let text = r.error.clone().or(r.detail.clone()).unwrap_or_default();
        view! {
            <span class=class data-testid="job-outcome">{label}</span>
            " " {when(r.started_at)}
            {took.map(|t| view! { " · " {t} })}
            {r.manual.then(|| view! { " · " {t!("jobs.manual")} })}
            <div class="muted small" data-testid="job-detail">{text}</div>
        }
    });
    view! {
        <tr data-testid="job-row" data-job=j.name.clone()>
            <td><code>{j.name.clone()}</code><div class="muted small">{lead}</div></td>
            <td data-label=t!("jobs.schedule")>
                <code>{j.schedule.clone()}</code>
                {(!j.enabled).then(|| view! { " " <span class="badge">{t!("jobs.off")}</span> })}
            </td>
            <td data-label=t!("jobs.next")>{j.next_run.map(when).unwrap_or_else(|| "—".into())}</td>
            <td data-label=t!("jobs.last")>{last.map_or_else(|| view! { <span class="muted">{t!("jobs.never")}</span> }.into_any(), IntoAny::into_any)}</td>
            <td data-label=t!("jobs.last_success")>{j.last_success.map(when).unwrap_or_else(|| "—".into())}</td>
            <td>
                <PostForm action=run>
                    <input type="hidden" name="name" value=name/>
                    <button type="submit" data-testid="job-run" disabled=move || run.pending().get()>{t!("jobs.run_now")}</button>
                </PostForm>
            </td>
        </tr>
    }
}
