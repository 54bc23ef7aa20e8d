//! Usage logs: one row per client request (see [`sink`] for how rows reach the database), and
//! the reads of them: call logs, daily usage, the ledger, exports, the status page.

mod export;
mod health;
mod read;
mod record;
pub(crate) mod repo;
pub mod sink;
pub mod status;

pub use export::{CSV_HEADER, CsvStream, all_calls_csv, my_calls_csv};
pub use health::{purge_health, service_status};
pub use read::{MAX_DAYS, all_calls, daily, key_usage, logs, my_calls, my_ledger, user_ledger};
pub use record::UsageRecord;
pub use sink::{FINAL_RETRIES_FOR, UsageSink};
pub use types::{ErrorClass, UsageSource};

use crate::Services;
use crate::state::Background;

/// Starts the usage writer (it takes the queue's receiving end, once; later calls do nothing).
pub fn start(svc: &Services, bg: &mut Background) {
    if let Some(queue) = svc.take_usage_queue() {
        let stop = bg.stopped();
        bg.spawn(sink::writer(svc.db.clone(), queue, stop));
    }
}

/// Logs a `/v1` call: its metrics now (labels bounded by the catalog), its row through the
/// batch writer.
pub fn log_call(svc: &Services, r: UsageRecord) {
    use crate::metrics::{OTHER, status_class};
    let m = &svc.metrics;
    let prices = svc.prices();
    let table = svc.routing.snapshot();
    let model = if prices.prices.contains_key(&r.model) || table.serves(&r.model) {
        r.model.as_str()
    } else {
        OTHER
    };
    let channel = match r.channel_id {
        None => "none",
        Some(id) => table
            .channels
            .iter()
            .find(|c| c.id == id)
            .map_or(OTHER, |c| c.name.as_str()),
    };
    if r.error_class == Some(ErrorClass::UpstreamOverBound) {
        m.bound_ignored.with_label_values(&[channel]).inc();
    }
    m.calls
        .with_label_values(&[
            model,
            channel,
            status_class(r.status),
            r.surface,
            r.upstream_kind.map_or("none", types::ChannelKind::as_str),
        ])
        .inc();
    if r.prompt_tokens > 0 {
        m.tokens
            .with_label_values(&[model, "prompt"])
            .inc_by(r.prompt_tokens);
    }
    if r.completion_tokens > 0 {
        m.tokens
            .with_label_values(&[model, "completion"])
            .inc_by(r.completion_tokens);
    }
    if r.cached_tokens > 0 {
        m.tokens
            .with_label_values(&[model, "cached"])
            .inc_by(r.cached_tokens);
    }
    for (kind, n) in [
        ("cache_write", r.detail.cache_write()),
        ("reasoning", r.detail.reasoning),
    ] {
        if n > 0 {
            m.tokens.with_label_values(&[model, kind]).inc_by(n);
        }
    }
    if r.cost > 0 {
        m.cost_units
            .with_label_values(&[model])
            .inc_by(u64::try_from(r.cost).unwrap_or(0));
    }
    m.call_duration
        .with_label_values(&[model])
        .observe(r.latency_ms as f64 / 1000.0);
    if let Some(t) = r.ttft_ms {
        m.ttft
            .with_label_values(&[model])
            .observe(t as f64 / 1000.0);
    }
    if r.attempts > 1 {
        m.fallbacks
            .with_label_values(&[model])
            .inc_by(u64::from(r.attempts - 1));
    }
    match r.error_class {
        Some(ErrorClass::Failed(types::ErrorKind::InsufficientQuota)) => m
            .refusals
            .with_label_values(&["insufficient_balance"])
            .inc(),
        Some(ErrorClass::Failed(types::ErrorKind::RateLimited)) if r.attempts == 0 => {
            m.refusals.with_label_values(&["rate_limited"]).inc()
        }
        _ => {}
    }
    svc.usage.record(r);
}
