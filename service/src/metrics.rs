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
                "Requests refused by a key's requests or tokens per minute",
            ),
            &["limit"],
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
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}
