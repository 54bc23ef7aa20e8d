//! Channels and model routing: a public model name resolves through `model_mapping` into an
//! ordered list of upstream model names; each resolves to the enabled channels serving it and the
//! caller's user group (a channel naming groups serves only theirs), higher `priority` first,
//! weighted-random within a priority. Failing channels are cooled down (a circuit breaker) and
//! tried again once the cooldown passes. The table is an immutable snapshot, swapped whole after
//! every change.

pub mod repo;

use crate::Error;
use crate::now_ms;
use rand::Rng as _;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use types::ChannelKind;

/// A channel's health on this instance: the circuit (failures in a row, open until), and its
/// answers over the last hour in minute buckets (requests, failures, time to headers).
#[derive(Debug)]
pub struct Health {
    failures: AtomicU32,
    open_until_ms: AtomicI64,
    /// When the last half-open trial call was let through (unix ms).
    trial_at_ms: AtomicI64,
    minutes: [Minute; 60],
}

#[derive(Default, Debug)]
struct Minute {
    /// The minute (unix ms / 60,000) the counts are of.
    at: AtomicI64,
    requests: AtomicU64,
    failures: AtomicU64,
    latency_ms: AtomicU64,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            failures: AtomicU32::new(0),
            open_until_ms: AtomicI64::new(0),
            trial_at_ms: AtomicI64::new(0),
            minutes: std::array::from_fn(|_| Minute::default()),
        }
    }
}

impl Health {
    /// Counts one attempt on the channel: whether it answered well, and how long it took to.
    /// A few relaxed atomics; a bucket is reset by whoever first sees it belongs to a past minute
    /// (a count racing that reset may be lost: this is a gauge, not a ledger).
    pub fn record(&self, ok: bool, took: Duration) {
        let minute = now_ms() / 60_000;
        let b = &self.minutes[minute.rem_euclid(60) as usize];
        let seen = b.at.load(Ordering::Relaxed);
        if seen != minute
            && b.at
                .compare_exchange(seen, minute, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            b.requests.store(0, Ordering::Relaxed);
            b.failures.store(0, Ordering::Relaxed);
            b.latency_ms.store(0, Ordering::Relaxed);
        }
        b.requests.fetch_add(1, Ordering::Relaxed);
        if !ok {
            b.failures.fetch_add(1, Ordering::Relaxed);
        }
        b.latency_ms.fetch_add(
            u64::try_from(took.as_millis()).unwrap_or(u64::MAX / 2),
            Ordering::Relaxed,
        );
    }

    /// Whether the circuit is open at `now` (unix ms).
    pub fn is_open(&self, now: i64) -> bool {
        self.open_until_ms.load(Ordering::Relaxed) > now
    }

    /// The last hour's figures and the circuit, as the admin console shows them.
    pub fn view(&self, channel_id: i64) -> types::ChannelHealth {
        let now = now_ms();
        let minute = now / 60_000;
        let (mut requests, mut failures, mut latency) = (0u64, 0u64, 0u64);
        for b in &self.minutes {
            let at = b.at.load(Ordering::Relaxed);
            if at > minute - 60 && at <= minute {
                requests += b.requests.load(Ordering::Relaxed);
                failures += b.failures.load(Ordering::Relaxed);
                latency += b.latency_ms.load(Ordering::Relaxed);
            }
        }
        let open_until = self.open_until_ms.load(Ordering::Relaxed);
        types::ChannelHealth {
            channel_id,
            requests,
            failures,
            mean_latency_ms: latency.checked_div(requests),
            failures_in_a_row: self.failures.load(Ordering::Relaxed),
            cooldown_ms: u64::try_from(open_until - now).unwrap_or(0),
            last_probe: None,
        }
    }
}

/// How a chat channel's upstream takes a request: the field of the output bound, and whether a
/// stream may ask for usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wire {
    pub chat_bound: &'static str,
    pub stream_usage: bool,
}

impl Wire {
    /// The kind's defaults.
    pub fn of(kind: ChannelKind) -> Wire {
        Wire {
            chat_bound: kind.bound_field().as_str(),
            stream_usage: true,
        }
    }
}

pub struct Channel {
    pub id: i64,
    pub name: String,
    pub kind: ChannelKind,
    pub wire: Wire,
    pub upstream: Upstream,
    pub models: Vec<String>,
    /// The user groups whose keys it serves; empty: every group.
    pub groups: Vec<String>,
    pub priority: i64,
    pub weight: u32,
    /// A stream's wait for the first byte.
    pub first_byte_timeout: Duration,
    /// A non-stream call's wait for its answer to begin.
    pub answer_timeout: Duration,
    /// The longest silence between two pieces of an answer.
    pub idle_timeout: Duration,
    pub enabled: bool,
    pub client: reqwest::Client,
    pub health: Arc<Health>,
}

impl Channel {
    /// Whether the channel takes calls of `group`'s users: it names the group, or none.
    pub fn serves_group(&self, group: &str) -> bool {
        self.groups.is_empty() || self.groups.iter().any(|g| g == group)
    }
}

/// A route of an upstream API: what the gateway sends a request to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completions,
    Embeddings,
    /// Anthropic's Messages API.
    Messages,
    /// Anthropic's token counting (`/messages/count_tokens`).
    CountTokens,
    /// OpenAI's Responses API.
    Responses,
}

impl Endpoint {
    const ALL: [Endpoint; 6] = [
        Endpoint::Chat,
        Endpoint::Completions,
        Endpoint::Embeddings,
        Endpoint::Messages,
        Endpoint::CountTokens,
        Endpoint::Responses,
    ];

    /// The path after a channel's base URL.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::Messages => "/messages",
            Endpoint::CountTokens => "/messages/count_tokens",
            Endpoint::Responses => "/responses",
        }
    }

    /// The route's short name, as usage rows and metrics record it.
    pub fn surface(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat",
            Endpoint::Completions => "completions",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Messages => "messages",
            Endpoint::CountTokens => "count_tokens",
            Endpoint::Responses => "responses",
        }
    }

    /// The route as a client names it (`/v1` and the path), for messages.
    pub fn route(self) -> &'static str {
        match self {
            Endpoint::Chat => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
            Endpoint::Embeddings => "/v1/embeddings",
            Endpoint::Messages => "/v1/messages",
            Endpoint::CountTokens => "/v1/messages/count_tokens",
            Endpoint::Responses => "/v1/responses",
        }
    }
}

/// How a channel serves a request that came in on some route: the same route upstream, or
/// converted to another protocol and back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Both ends speak the same protocol: the request goes up as it came (its model renamed).
    Native,
    /// An Anthropic Messages request sent to an OpenAI chat route, its answer converted back.
    MessagesViaChat,
    /// A Responses API request sent to an OpenAI chat route, its answer converted back.
    ResponsesViaChat,
}

/// What a channel of `kind` does with a request that came in on `inbound`; `None` when it
/// cannot serve it at all. Known from the kind alone, so a model whose channels cannot serve a
/// route is refused on that route before anything is reserved or sent.
pub fn plan(kind: ChannelKind, inbound: Endpoint) -> Option<Plan> {
    use ChannelKind::{Anthropic, Azure, Gemini, OpenAi, OpenAiCompatible};
    match (kind, inbound) {
        (
            OpenAi | OpenAiCompatible | Azure,
            Endpoint::Chat | Endpoint::Completions | Endpoint::Embeddings,
        ) => Some(Plan::Native),
        (OpenAi | OpenAiCompatible | Azure, Endpoint::Messages) => Some(Plan::MessagesViaChat),
        (OpenAi | Azure, Endpoint::Responses) => Some(Plan::Native),
        (OpenAiCompatible, Endpoint::Responses) => Some(Plan::ResponsesViaChat),
        // Gemini's own protocol under the chat route: the relay speaks chat, and the adapter
        // (`proxy::gemini`) converts it on the way up and back.
        (Gemini, Endpoint::Chat) => Some(Plan::Native),
        (Gemini, Endpoint::Messages) => Some(Plan::MessagesViaChat),
        (Gemini, Endpoint::Responses) => Some(Plan::ResponsesViaChat),
        (Anthropic, Endpoint::Messages | Endpoint::CountTokens) => Some(Plan::Native),
        _ => None,
    }
}

/// The `anthropic-version` sent when the client names none.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A channel's addresses and credentials, checked and parsed once, when the channel is written
/// and when the routing table loads, instead of formatting and parsing a URL for every request.
/// (reqwest still parses each response's URL again, about 2% of the gateway's CPU under load:
/// its redirect layer runs even with redirects off.)
pub struct Upstream {
    /// Each [`Endpoint`]'s URL, where the channel's kind has that route (and it does not name
    /// the model: see `deployments`).
    urls: [Option<reqwest::Url>; 6],
    /// Azure's deployment URLs: the base (`…/openai/deployments`) and the `api-version`, the
    /// deployment (the upstream model) put between them for each call.
    deployments: Option<(reqwest::Url, String)>,
    /// Gemini's models (`…/models`): each call goes to `{model}:generateContent` or
    /// `{model}:streamGenerateContent?alt=sse` under it.
    gemini: Option<reqwest::Url>,
    /// The credentials as the kind sends them (`Authorization: Bearer` or `x-api-key`), marked
    /// sensitive; none when the channel has no key.
    auth: Option<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    /// Anthropic's API: every request names its version (the client's, when it sends one, is
    /// put in its place by the relay).
    anthropic: bool,
}

impl Upstream {
    /// Checks (by the config's rules: `config::channels`) and parses a channel's address and
    /// key.
    pub fn new(
        kind: ChannelKind,
        base_url: &str,
        api_key: &str,
        api_version: Option<&str>,
        allow_metadata: bool,
    ) -> Result<Upstream, Error> {
        use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
        crate::config::channels::check_base_url(base_url, allow_metadata)?;
        if let Some(v) = api_version {
            crate::config::channels::check_api_version(kind, v)?;
        }
        let base = base_url.trim_end_matches('/');
        let parse = |text: String| {
            reqwest::Url::parse(&text)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| {
                    Error::invalid("base_url", "must be an http:// or https:// URL with a host")
                })
        };
        let mut urls: [Option<reqwest::Url>; 6] = Default::default();
        let mut deployments = None;
        let gemini = match kind {
            ChannelKind::Gemini => Some(parse(format!("{base}/models"))?),
            _ => None,
        };
        for e in Endpoint::ALL {
            if plan(kind, e) != Some(Plan::Native) || kind == ChannelKind::Gemini {
                continue; // not a route of this kind's API
            }
            urls[e as usize] = Some(match (kind, api_version) {
                // Azure's v1 API: OpenAI's routes under `/openai/v1`, the deployment as the model.
                (ChannelKind::Azure, None) => parse(format!("{base}/openai/v1{}", e.path()))?,
                // Azure's Responses API names the deployment in the body too.
                (ChannelKind::Azure, Some(v)) if e == Endpoint::Responses => {
                    parse(format!("{base}/openai/responses?api-version={v}"))?
                }
                (ChannelKind::Azure, Some(v)) => {
                    deployments =
                        Some((parse(format!("{base}/openai/deployments"))?, v.to_string()));
                    continue;
                }
                _ => parse(format!("{base}{}", e.path()))?,
            });
        }
        let mut auth = None;
        if !api_key.is_empty() {
            crate::config::channels::check_api_key(api_key)?;
            let (name, text) = match kind {
                ChannelKind::Anthropic => {
                    (HeaderName::from_static("x-api-key"), api_key.to_string())
                }
                ChannelKind::Azure => (HeaderName::from_static("api-key"), api_key.to_string()),
                ChannelKind::Gemini => (
                    HeaderName::from_static("x-goog-api-key"),
                    api_key.to_string(),
                ),
                ChannelKind::OpenAi | ChannelKind::OpenAiCompatible => {
                    (AUTHORIZATION, format!("Bearer {api_key}"))
                }
            };
            let mut v = HeaderValue::from_str(&text)
                .map_err(|e| Error::Internal(anyhow::anyhow!("a checked key: {e}")))?;
            v.set_sensitive(true);
            auth = Some((name, v));
        }
        Ok(Upstream {
            urls,
            deployments,
            gemini,
            auth,
            anthropic: kind == ChannelKind::Anthropic,
        })
    }

    /// A POST to the channel's `endpoint` for the upstream `model` (a `stream` or not), with its
    /// credentials; an error when the channel's kind has no such route (routing never sends one
    /// there: [`plan`]).
    pub fn post(
        &self,
        client: &reqwest::Client,
        endpoint: Endpoint,
        model: &str,
        stream: bool,
    ) -> Result<reqwest::RequestBuilder, Error> {
        let url = match (
            &self.urls[endpoint as usize],
            &self.deployments,
            &self.gemini,
        ) {
            (Some(url), _, _) => url.clone(),
            (None, _, Some(models)) if endpoint == Endpoint::Chat => {
                let mut url = models.clone();
                let action = if stream {
                    "streamGenerateContent"
                } else {
                    "generateContent"
                };
                url.path_segments_mut()
                    .map_err(|()| Error::Internal(anyhow::anyhow!("a base URL without a path")))?
                    .push(&format!("{model}:{action}"));
                if stream {
                    url.set_query(Some("alt=sse"));
                }
                url
            }
            (None, Some((base, version)), _) if plan(ChannelKind::Azure, endpoint).is_some() => {
                let mut url = base.clone();
                url.path_segments_mut()
                    .map_err(|()| Error::Internal(anyhow::anyhow!("a base URL without a path")))?
                    .push(model)
                    .extend(endpoint.path().split('/').filter(|s| !s.is_empty()));
                url.query_pairs_mut().append_pair("api-version", version);
                url
            }
            _ => {
                return Err(Error::Internal(anyhow::anyhow!(
                    "a channel without the route {}",
                    endpoint.path()
                )));
            }
        };
        // Header by header: cloning a map for every request would allocate on the hot path.
        let mut request = client.post(url);
        if let Some((name, value)) = &self.auth {
            request = request.header(name.clone(), value.clone());
        }
        if self.anthropic {
            request = request.header(
                "anthropic-version",
                reqwest::header::HeaderValue::from_static(ANTHROPIC_VERSION),
            );
        }
        Ok(request)
    }
}

pub use types::ChannelView;

pub use crate::config::channels::ChannelInput;

/// One place to send a request: a channel and the model name it knows.
#[derive(Clone)]
pub struct Candidate {
    pub channel: Arc<Channel>,
    pub upstream_model: String,
}

#[derive(Default)]
pub struct Table {
    pub channels: Vec<Arc<Channel>>,
    pub mappings: HashMap<String, Vec<String>>,
}

impl Table {
    /// A public model this table can route: mapped, or named by a channel.
    pub fn serves(&self, model: &str) -> bool {
        self.mappings.contains_key(model)
            || self
                .channels
                .iter()
                .any(|c| c.models.iter().any(|m| m == model))
    }

    /// The enabled channels a call of `group`'s user for the public `model` may go to, each once.
    pub fn channels_of(&self, model: &str, group: &str) -> Vec<&Arc<Channel>> {
        let direct = [model.to_string()];
        let targets: &[String] = self.mappings.get(model).map_or(&direct[..], Vec::as_slice);
        self.channels
            .iter()
            .filter(|c| {
                c.enabled && c.serves_group(group) && c.models.iter().any(|m| targets.contains(m))
            })
            .collect()
    }
}

pub struct Routing {
    table: RwLock<Arc<Table>>,
    health: Mutex<HashMap<i64, Arc<Health>>>,
    cooldown: Duration,
    threshold: u32,
    /// `gateway.allow_metadata_upstreams`.
    pub allow_metadata: bool,
}

impl Routing {
    /// A routing table whose circuit opens after `threshold` failures in a row for `cooldown`,
    /// taking channels at metadata addresses only when `allow_metadata`.
    pub fn new(cooldown: Duration, threshold: u32, allow_metadata: bool) -> Routing {
        Routing {
            table: RwLock::new(Arc::new(Table::default())),
            health: Mutex::new(HashMap::new()),
            cooldown,
            threshold: threshold.max(1),
            allow_metadata,
        }
    }

    pub fn snapshot(&self) -> Arc<Table> {
        self.table
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn health_of(&self, channel_id: i64) -> Arc<Health> {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(channel_id)
            .or_default()
            .clone()
    }

    pub fn install(&self, table: Table) {
        *self
            .table
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(table);
    }

    /// Every model name a client can ask for: mapped names and names channels serve directly.
    pub fn public_models(&self) -> Vec<String> {
        let t = self.snapshot();
        let mut names: Vec<String> = t.mappings.keys().cloned().collect();
        for ch in t.channels.iter().filter(|c| c.enabled) {
            names.extend(ch.models.iter().cloned());
        }
        names.sort();
        names.dedup();
        names
    }

    /// Where to send a call of `group`'s user for `model`, in the order to try: the enabled
    /// channels that serve the group. Cooling channels go last (probed if all fail).
    pub fn candidates(&self, model: &str, group: &str) -> Result<Vec<Candidate>, Error> {
        self.candidates_for(model, group, None)
    }

    /// [`Routing::candidates`] for a call of a session (`affinity`: a prompt cache key, a
    /// Messages `metadata.user_id`, a chat `user`): among channels of equal priority, the
    /// session's calls go first to the same one while it is healthy (weighted rendezvous
    /// hashing: no shared state, and the same on every instance), so prompt caches hit and a
    /// provider's encrypted reasoning stays with the account that made it. The others follow in
    /// the same way, so failover still works.
    pub fn candidates_for(
        &self,
        model: &str,
        group: &str,
        affinity: Option<&str>,
    ) -> Result<Vec<Candidate>, Error> {
        let t = self.snapshot();
        let direct = [model.to_string()];
        let targets: &[String] = t.mappings.get(model).map_or(&direct[..], Vec::as_slice);
        let now = now_ms();
        let mut ready = Vec::new();
        let mut cooling = Vec::new();
        let mut rng = rand::rng();
        let session = affinity.filter(|a| !a.is_empty()).map(fnv1a);
        for target in targets {
            let mut serving: Vec<&Arc<Channel>> = t
                .channels
                .iter()
                .filter(|c| {
                    c.enabled && c.serves_group(group) && c.models.iter().any(|m| m == target)
                })
                .collect();
            // Higher priority first; weighted random order within a priority.
            let mut keyed: Vec<(i64, f64, &Arc<Channel>)> = serving
                .drain(..)
                .map(|c| {
                    let u: f64 = match session {
                        Some(h) => unit(h, c.id),
                        None => rng.random_range(f64::EPSILON..1.0),
                    };
                    (c.priority, u.powf(1.0 / f64::from(c.weight)), c)
                })
                .collect();
            keyed.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)));
            for (_, _, c) in keyed {
                let cand = Candidate {
                    channel: c.clone(),
                    upstream_model: target.clone(),
                };
                if self.admits(c, now) {
                    ready.push(cand)
                } else {
                    cooling.push(cand)
                }
            }
        }
        if ready.is_empty() && cooling.is_empty() {
            return Err(Error::NotFound("model"));
        }
        ready.extend(cooling);
        Ok(ready)
    }

    /// Whether `ch` takes calls at `now`: closed, or half-open (the cooldown over, the
    /// circuit not yet closed by a success) and this call is the one trial let through until
    /// the trial answers or its first-byte time runs out. Calls waiting behind a trial try the
    /// channel last.
    fn admits(&self, ch: &Channel, now: i64) -> bool {
        let h = &ch.health;
        let open_until = h.open_until_ms.load(Ordering::Relaxed);
        if open_until > now {
            return false;
        }
        if open_until == 0 || h.failures.load(Ordering::Relaxed) < self.threshold {
            return true;
        }
        let trial = i64::try_from(ch.first_byte_timeout.as_millis()).unwrap_or(i64::MAX / 4);
        let last = h.trial_at_ms.load(Ordering::Relaxed);
        now.saturating_sub(last) >= trial
            && h.trial_at_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    pub fn succeeded(&self, ch: &Channel) {
        ch.health.failures.store(0, Ordering::Relaxed);
        ch.health.open_until_ms.store(0, Ordering::Relaxed);
    }

    /// A probe's verdict (from this instance or another, at `at_ms`): a success closes the
    /// circuit; a failure opens it for the cooldown from the probe's time.
    pub fn probed(&self, ch: &Channel, ok: bool, at_ms: i64) {
        if ok {
            self.succeeded(ch);
            return;
        }
        ch.health
            .failures
            .fetch_max(self.threshold, Ordering::Relaxed);
        let until = at_ms + i64::try_from(self.cooldown.as_millis()).unwrap_or(i64::MAX / 4);
        if ch.health.open_until_ms.fetch_max(until, Ordering::Relaxed) < until {
            tracing::warn!(channel = %ch.name, "channel failed its probe: circuit open");
        }
    }

    /// Counts a failure; `retry_after` (from a 429) cools the channel down at once.
    pub fn failed(&self, ch: &Channel, retry_after: Option<Duration>) {
        let n = ch.health.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let cool = match retry_after {
            Some(d) => Some(d.min(Duration::from_secs(3600))),
            None if n >= self.threshold => Some(self.cooldown),
            None => None,
        };
        if let Some(d) = cool {
            let until = now_ms() + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4);
            ch.health.open_until_ms.store(until, Ordering::Relaxed);
            tracing::warn!(channel = %ch.name, cooldown_ms = d.as_millis() as u64, "channel cooling down");
        }
    }
}

/// FNV-1a of a session key: stable across processes and versions (the standard library's hasher
/// promises neither).
fn fnv1a(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A session's draw for a channel, in (0, 1): the key's hash and the channel's id mixed
/// (splitmix64), the top 53 bits as a fraction.
fn unit(session: u64, channel_id: i64) -> f64 {
    let mut z = session ^ (channel_id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// An HTTP client for one channel: no redirects (SSRF), TCP_NODELAY, bounded connect time.
pub fn client(connect_timeout: Duration) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .map_err(|e| Error::Internal(anyhow::anyhow!("building an HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(id: i64, priority: i64, weight: u32) -> Arc<Channel> {
        Arc::new(Channel {
            id,
            name: format!("c{id}"),
            kind: ChannelKind::OpenAiCompatible,
            wire: Wire::of(ChannelKind::OpenAiCompatible),
            upstream: Upstream::new(
                ChannelKind::OpenAiCompatible,
                "http://127.0.0.1:1/v1",
                "",
                None,
                false,
            )
            .expect("an upstream"),
            models: vec!["m".into()],
            groups: Vec::new(),
            priority,
            weight,
            first_byte_timeout: Duration::from_secs(1),
            answer_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            enabled: true,
            client: client(Duration::from_secs(1)).expect("a client"),
            health: Arc::new(Health::default()),
        })
    }

    fn routing(channels: Vec<Arc<Channel>>) -> Routing {
        let r = Routing::new(Duration::from_secs(30), 1, false);
        r.install(Table {
            channels,
            mappings: HashMap::new(),
        });
        r
    }

    fn first(r: &Routing, session: &str) -> i64 {
        r.candidates_for("m", "default", Some(session))
            .expect("candidates")[0]
            .channel
            .id
    }

    #[test]
    fn a_session_sticks_to_one_channel_among_equals_and_fails_over() {
        let r = routing(vec![channel(1, 0, 1), channel(2, 0, 1), channel(3, 0, 1)]);
        let mut shares = HashMap::new();
        for n in 0..300 {
            let session = format!("session-{n}");
            let chosen = first(&r, &session);
            for _ in 0..5 {
                assert_eq!(first(&r, &session), chosen, "{session} moved");
            }
            *shares.entry(chosen).or_insert(0) += 1;
        }
        // Sessions spread over the equals.
        for id in [1, 2, 3] {
            let share = shares.get(&id).copied().unwrap_or(0);
            assert!((60..=140).contains(&share), "{shares:?}");
        }
        // The session's channel cools down: its calls go elsewhere, and come back after.
        let chosen = first(&r, "session-0");
        let table = r.snapshot();
        let ch = table
            .channels
            .iter()
            .find(|c| c.id == chosen)
            .expect("the channel");
        r.failed(ch, Some(Duration::from_secs(60)));
        let list = r
            .candidates_for("m", "default", Some("session-0"))
            .expect("candidates");
        assert_ne!(list[0].channel.id, chosen);
        assert_eq!(
            list.last().map(|c| c.channel.id),
            Some(chosen),
            "tried last"
        );
        r.succeeded(ch);
        assert_eq!(first(&r, "session-0"), chosen);
    }

    #[test]
    fn sessions_follow_weights_and_priorities() {
        let r = routing(vec![
            channel(1, 0, 3),
            channel(2, 0, 1),
            channel(3, -1, 100),
        ]);
        let heavy = (0..400)
            .filter(|n| first(&r, &format!("s{n}")) == 1)
            .count();
        assert!(
            (240..=360).contains(&heavy),
            "{heavy} of 400 on the weight-3 channel"
        );
        // A lower priority is never first while a higher one is ready.
        assert!((0..100).all(|n| first(&r, &format!("s{n}")) != 3));
        // No session: the order is drawn at random, as before.
        assert!(r.candidates_for("m", "default", None).is_ok());
        assert!(r.candidates_for("m", "default", Some("")).is_ok());
    }

    #[test]
    fn a_half_open_circuit_lets_one_trial_through_at_a_time() {
        let r = Routing::new(Duration::from_millis(1), 1, false);
        r.install(Table {
            channels: vec![channel(1, 5, 1), channel(2, 0, 1)],
            mappings: HashMap::new(),
        });
        let table = r.snapshot();
        let flaky = &table.channels[0];
        r.failed(flaky, None);
        std::thread::sleep(Duration::from_millis(5));
        let order = |r: &Routing| -> Vec<i64> {
            r.candidates("m", "default")
                .expect("candidates")
                .iter()
                .map(|c| c.channel.id)
                .collect()
        };
        // The cooldown is over: one call tries the channel first; the calls behind it, while
        // its trial is out, go elsewhere first.
        assert_eq!(order(&r), [1, 2]);
        assert_eq!(order(&r), [2, 1]);
        assert_eq!(order(&r), [2, 1]);
        // The trial answered: closed, every call tries it first again.
        r.succeeded(flaky);
        assert_eq!(order(&r), [1, 2]);
        assert_eq!(order(&r), [1, 2]);
    }

    #[test]
    fn a_channel_naming_groups_serves_only_their_users() {
        let vip = Arc::new(Channel {
            groups: vec!["vip".into(), "team".into()],
            ..Arc::into_inner(channel(2, 9, 1)).expect("one owner")
        });
        let r = routing(vec![channel(1, 0, 1), vip]);
        let ids = |group: &str| -> Vec<i64> {
            r.candidates("m", group)
                .expect("candidates")
                .iter()
                .map(|c| c.channel.id)
                .collect()
        };
        assert_eq!(
            ids("vip"),
            [2, 1],
            "the vip channel, first by priority, then the open one"
        );
        assert_eq!(ids("team"), [2, 1]);
        assert_eq!(ids("default"), [1], "not a group the channel names");
        assert_eq!(r.snapshot().channels_of("m", "default").len(), 1);
        assert_eq!(r.snapshot().channels_of("m", "vip").len(), 2);
        // Only the group's channel serves a model: other groups find no route.
        let only = Arc::new(Channel {
            groups: vec!["vip".into()],
            ..Arc::into_inner(channel(3, 0, 1)).expect("one owner")
        });
        let r = routing(vec![only]);
        assert!(r.candidates("m", "vip").is_ok());
        assert!(matches!(
            r.candidates("m", "default"),
            Err(Error::NotFound("model"))
        ));
    }
}
