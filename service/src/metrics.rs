//! Every metric Tollgate exports, declared once. Labels are bounded: route templates, never raw
//! paths, user ids or key ids.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    /// Per proxied request, the time until the response head minus the time spent waiting on
    /// upstreams: what the gateway itself adds (auth, routing, billing, relaying).
    pub gateway_overhead: HistogramVec,
    pub db_connections: IntGaugeVec,
    pub db_connections_max: IntGauge,
    /// Requests whose reservation did not fit the instance's credit grant and waited for a top-up
    /// from the database (the grant is sized so that, under steady load, almost none do).
    pub credit_waits: IntCounter,
    /// Usage rows not written: refused by the database for their content, beyond the queue and
    /// its overflow, or still held when a shutdown outlasted the database's outage.
    pub usage_rows_dropped: IntCounter,
    /// Units served that could not be charged: usage beyond a reservation, or served from a
    /// grant that was taken over, when the balance was already spent elsewhere.
    pub credit_uncollected: IntCounter,
    /// 1 while the per-key limits are counted locally because Redis is unreachable.
    pub ratelimit_degraded: IntGauge,
    /// Requests refused by a key's limit, by limit (`requests`, `tokens`).
    pub ratelimit_refusals: IntCounterVec,
    /// Scheduled job runs by job and outcome (`ok`, `failed`, `unclaimed`: the lease table did
    /// not answer).
    pub job_runs: IntCounterVec,
    pub job_duration: HistogramVec,
    /// Unix seconds of each job's latest successful run on this instance.
    pub job_last_success: IntGaugeVec,
    /// `/v1` calls by public model, channel and status class (`2xx`, `4xx`, `5xx`).
    pub calls: IntCounterVec,
    /// Tokens by public model and kind (`prompt`, `completion`, `cached`).
    pub tokens: IntCounterVec,
    /// Units (1e-6 USD) charged, by public model.
    pub cost_units: IntCounterVec,
    /// A call's whole time (upstream included), by public model.
    pub call_duration: HistogramVec,
    /// Time to the first token of streamed calls, by public model.
    pub ttft: HistogramVec,
    /// Upstream attempts beyond the first, by public model.
    pub fallbacks: IntCounterVec,
    /// Every upstream attempt, by channel and outcome: `answered` (2xx), `refused` (4xx),
    /// `failed` (429, 5xx), `unreachable` (no connection: nothing was sent), `timeout` and
    /// `broken` (the request was sent and no answer came: work the upstream may have done and
    /// billed that no client paid for).
    pub upstream_attempts: IntCounterVec,
    /// Database lookups of `/v1` keys not in the cache, by result (`found`, `unknown`).
    pub key_lookups: IntCounterVec,
    /// Calls refused before any upstream, by reason (`insufficient_balance`, `rate_limited`).
    pub refusals: IntCounterVec,
    /// Streams being relayed now.
    pub open_streams: IntGauge,
    /// Accounts holding a credit grant on this instance (set at scrape).
    pub open_grants: IntGauge,
    /// Usage rows waiting for the batch writer (set at scrape).
    pub usage_queue_depth: IntGauge,
    /// 1 while a channel's circuit is open (set at scrape), by channel.
    pub circuit_open: IntGaugeVec,
    /// Calls whose upstream produced more than the output bound it was sent, by channel.
    pub bound_ignored: IntCounterVec,
    /// What the last ledger check found: Σ |balance − Σ ledger amounts| + Σ |reserved − Σ
    /// ledger holds| over every user (set by the instance that ran the check).
    pub ledger_drift: IntGauge,
    /// Alert delivery attempts by target (webhook, email) and outcome (sent, retrying, failed).
    pub alert_deliveries: IntCounterVec,
}

/// The label of a model or channel name outside the catalog: labels stay bounded whatever
/// names clients send.
pub const OTHER: &str = "other";

/// Increments a gauge while alive (an open stream, …).
pub struct GaugeGuard(IntGauge);

impl GaugeGuard {
    pub fn new(g: &IntGauge) -> Self {
        g.inc();
        Self(g.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// `2xx`, `4xx`, `5xx`, … of an HTTP status.
pub fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

impl Metrics {
    pub fn new(db_max_connections: u32) -> Self {
        let registry =
            Registry::new_custom(Some("tollgate".into()), None).expect("valid metric prefix");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route template, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency until the response head",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["route", "method"],
        )
        .expect("valid metric");
        let gateway_overhead = HistogramVec::new(
            HistogramOpts::new(
                "gateway_overhead_seconds",
                "Latency the gateway adds to a proxied request: time until the response head \
                 minus time waiting on upstreams",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
            ]),
            &["route"],
        )
        .expect("valid metric");
        let db_connections = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections by state"),
            &["state"],
        )
        .expect("valid metric");
        let db_connections_max = IntGauge::new(
            "db_pool_max_connections",
            "Configured maximum of database connections",
        )
        .expect("valid metric");
        db_connections_max.set(i64::from(db_max_connections));
        let credit_waits = IntCounter::new(
            "credit_waits_total",
            "Requests that waited for the database to top up their account's credit grant",
        )
        .expect("valid metric");
        let credit_uncollected = IntCounter::new(
            "credit_uncollected_units_total",
            "Units (1e-6 USD) served that the balance could not cover when they were charged",
        )
        .expect("valid metric");
        let usage_rows_dropped = IntCounter::new(
            "usage_rows_dropped_total",
            "Usage log rows that were not written (each is also logged as an error)",
        )
        .expect("valid metric");
        let ratelimit_degraded = IntGauge::new(
            "ratelimit_degraded",
            "1 while per-key rate limits are counted locally because Redis is unreachable",
        )
        .expect("valid metric");
        let ratelimit_refusals = IntCounterVec::new(
            Opts::new(
                "ratelimit_refusals_total",
                "Requests refused by a key's requests or tokens per minute, or its calls in flight \
                 (limit: requests, tokens, concurrency)",
            ),
            &["limit"],
        )
        .expect("valid metric");
        let job_runs = IntCounterVec::new(
            Opts::new(
                "job_runs_total",
                "Scheduled job runs by job and outcome (ok, failed, unclaimed)",
            ),
            &["job", "outcome"],
        )
        .expect("valid metric");
        let job_duration = HistogramVec::new(
            HistogramOpts::new("job_duration_seconds", "How long scheduled job runs took")
                .buckets(vec![0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0]),
            &["job"],
        )
        .expect("valid metric");
        let job_last_success = IntGaugeVec::new(
            Opts::new(
                "job_last_success_timestamp_seconds",
                "When each job last ended well on this instance (unix seconds)",
            ),
            &["job"],
        )
        .expect("valid metric");
        let bound_ignored = IntCounterVec::new(
            Opts::new(
                "upstream_bound_ignored_total",
                "Calls whose upstream produced more output than the bound it was sent (ended or \
                 charged at the bound), by channel",
            ),
            &["channel"],
        )
        .expect("valid metric");
        let ledger_drift = IntGauge::new(
            "ledger_drift_units",
            "Units by which balances and holds differ from the sums of their ledgers, as the last \
             ledger check on this instance found (0: they agree)",
        )
        .expect("valid metric");
        let alert_deliveries = IntCounterVec::new(
            Opts::new(
                "alert_deliveries_total",
                "Alert delivery attempts by target (webhook, email) and outcome (sent; retrying: \
                 failed, tried again later; failed: given up after alerts.max_attempts)",
            ),
            &["target", "outcome"],
        )
        .expect("valid metric");
        let calls = IntCounterVec::new(
            Opts::new(
                "calls_total",
                "/v1 calls by public model, channel, status class, route called (chat, completions, \
                 embeddings, messages, responses) and the answering channel's kind (none: no \
                 channel was tried); names outside the catalog: other",
            ),
            &["model", "channel", "status", "surface", "kind"],
        )
        .expect("valid metric");
        let tokens = IntCounterVec::new(
            Opts::new(
                "tokens_total",
                "Tokens by public model and kind (prompt, completion, cached, cache_write, reasoning)",
            ),
            &["model", "kind"],
        )
        .expect("valid metric");
        let cost_units = IntCounterVec::new(
            Opts::new(
                "cost_units_total",
                "Units (1e-6 USD) charged, by public model",
            ),
            &["model"],
        )
        .expect("valid metric");
        let call_duration = HistogramVec::new(
            HistogramOpts::new(
                "call_duration_seconds",
                "A /v1 call's whole time, upstream included, by public model",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            ]),
            &["model"],
        )
        .expect("valid metric");
        let ttft = HistogramVec::new(
            HistogramOpts::new(
                "time_to_first_token_seconds",
                "Time to the first token of streamed calls, by public model",
            )
            .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0]),
            &["model"],
        )
        .expect("valid metric");
        let fallbacks = IntCounterVec::new(
            Opts::new(
                "fallbacks_total",
                "Upstream attempts beyond the first, by public model",
            ),
            &["model"],
        )
        .expect("valid metric");
        let upstream_attempts = IntCounterVec::new(
            Opts::new(
                "upstream_attempts_total",
                "Upstream attempts by channel and outcome (answered, refused, failed, unreachable, timeout, broken)",
            ),
            &["channel", "outcome"],
        )
        .expect("valid metric");
        let key_lookups = IntCounterVec::new(
            Opts::new(
                "key_lookups_total",
                "Database lookups of API keys not in the cache, by result (found, unknown)",
            ),
            &["result"],
        )
        .expect("valid metric");
        let refusals = IntCounterVec::new(
            Opts::new(
                "refusals_total",
                "Calls refused before any upstream, by reason (insufficient_balance, rate_limited)",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let open_streams =
            IntGauge::new("open_streams", "Streams being relayed now").expect("valid metric");
        let open_grants = IntGauge::new(
            "open_credit_grants",
            "Accounts holding a credit grant on this instance",
        )
        .expect("valid metric");
        let usage_queue_depth = IntGauge::new(
            "usage_queue_depth",
            "Usage rows waiting for the batch writer",
        )
        .expect("valid metric");
        let circuit_open = IntGaugeVec::new(
            Opts::new(
                "channel_circuit_open",
                "1 while a channel's circuit is open",
            ),
            &["channel"],
        )
        .expect("valid metric");
        let build_info = IntGaugeVec::new(
            Opts::new("build_info", "Build information; the value is always 1"),
            &["version", "profile"],
        )
        .expect("valid metric");
        let profile = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), profile])
            .set(1);
        for c in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(gateway_overhead.clone()),
            Box::new(db_connections.clone()),
            Box::new(db_connections_max.clone()),
            Box::new(credit_waits.clone()),
            Box::new(usage_rows_dropped.clone()),
            Box::new(credit_uncollected.clone()),
            Box::new(ratelimit_degraded.clone()),
            Box::new(ratelimit_refusals.clone()),
            Box::new(job_runs.clone()),
            Box::new(job_duration.clone()),
            Box::new(job_last_success.clone()),
            Box::new(calls.clone()),
            Box::new(tokens.clone()),
            Box::new(cost_units.clone()),
            Box::new(call_duration.clone()),
            Box::new(ttft.clone()),
            Box::new(fallbacks.clone()),
            Box::new(upstream_attempts.clone()),
            Box::new(key_lookups.clone()),
            Box::new(refusals.clone()),
            Box::new(open_streams.clone()),
            Box::new(open_grants.clone()),
            Box::new(usage_queue_depth.clone()),
            Box::new(circuit_open.clone()),
            Box::new(bound_ignored.clone()),
            Box::new(ledger_drift.clone()),
            Box::new(alert_deliveries.clone()),
            Box::new(build_info),
        ] {
            registry.register(c).expect("metric registered once");
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            gateway_overhead,
            db_connections,
            db_connections_max,
            credit_waits,
            usage_rows_dropped,
            credit_uncollected,
            ratelimit_degraded,
            ratelimit_refusals,
            job_runs,
            job_duration,
            job_last_success,
            calls,
            tokens,
            cost_units,
            call_duration,
            ttft,
            fallbacks,
            upstream_attempts,
            key_lookups,
            refusals,
            open_streams,
            open_grants,
            usage_queue_depth,
            circuit_open,
            bound_ignored,
            ledger_drift,
            alert_deliveries,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every metric the Grafana dashboard and the alert rules in `deploy/` query is exported.
    #[test]
    fn the_dashboard_and_alerts_name_only_exported_metrics() {
        let m = Metrics::new(4);
        // A series of each labelled family, so that every family is rendered.
        m.http_requests
            .with_label_values(&["/x", "GET", "200"])
            .inc();
        m.http_duration
            .with_label_values(&["/x", "GET"])
            .observe(0.1);
        m.gateway_overhead.with_label_values(&["/x"]).observe(0.1);
        m.db_connections.with_label_values(&["idle"]).set(1);
        m.ratelimit_refusals.with_label_values(&["requests"]).inc();
        m.job_runs.with_label_values(&["cleanup", "ok"]).inc();
        m.alert_deliveries
            .with_label_values(&["webhook", "sent"])
            .inc();
        m.job_duration.with_label_values(&["cleanup"]).observe(1.0);
        m.job_last_success.with_label_values(&["cleanup"]).set(1);
        m.calls
            .with_label_values(&["m", "c", "2xx", "chat", "openai"])
            .inc();
        m.tokens.with_label_values(&["m", "prompt"]).inc();
        m.cost_units.with_label_values(&["m"]).inc();
        m.call_duration.with_label_values(&["m"]).observe(1.0);
        m.ttft.with_label_values(&["m"]).observe(1.0);
        m.fallbacks.with_label_values(&["m"]).inc();
        m.upstream_attempts
            .with_label_values(&["c", "timeout"])
            .inc();
        m.key_lookups.with_label_values(&["unknown"]).inc();
        m.refusals.with_label_values(&["rate_limited"]).inc();
        m.circuit_open.with_label_values(&["c"]).set(0);
        m.bound_ignored.with_label_values(&["c"]).inc();
        let text = m.render();
        let exported: std::collections::HashSet<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
            .collect();
        for (file, body) in [
            ("deploy/alerts.yml", include_str!("../../deploy/alerts.yml")),
            (
                "deploy/grafana-dashboard.json",
                include_str!("../../deploy/grafana-dashboard.json"),
            ),
        ] {
            let mut named = 0;
            for (i, _) in body.match_indices("tollgate_") {
                let name: String = body[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                let family = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(&name);
                assert!(
                    exported.contains(family),
                    "{file} queries {name}, which is not exported"
                );
                named += 1;
            }
            assert!(named >= 8, "{file} names {named} metrics");
        }
    }
}
