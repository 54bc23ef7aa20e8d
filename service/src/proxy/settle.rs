//! Settling a served call: the exact cost charged once, and its usage row.

use super::sse::UpstreamUsage;
use crate::Services;
use crate::billing::{Quote, Reservation, Usage};
use crate::usage::{ErrorClass, UsageRecord, UsageSource};
use bytes::Bytes;
use serde_json::Value;
use std::time::{Duration, Instant};

/// What settling a served request needs.
pub(super) struct Call {
    pub(super) svc: Services,
    pub(super) reservation: Reservation,
    /// The key's tokens-per-minute reservation, when it has a limit.
    pub(super) tokens: Option<crate::ratelimit::quota::TokenHold>,
    pub(super) quote: Quote,
    /// The client's body, read again only when its prompt must be counted.
    pub(super) request: Bytes,
    pub(super) log: UsageRecord,
    pub(super) started: Instant,
    /// The output bound the upstream was sent (what the reservation covers).
    pub(super) bound: u64,
    /// The call's place among its key's calls in flight, given back when the call is settled.
    pub(super) slot: Option<crate::ratelimit::concurrency::Slot>,
}

impl Call {
    /// Charges the exact cost, once, and queues the usage row. Without upstream usage the
    /// tokens are counted on the token-counting thread: loading a tokenizer table or counting a
    /// long prompt never stalls the runtime.
    pub(super) fn settle(
        self,
        usage: Option<UpstreamUsage>,
        generated: &str,
        complete: bool,
        error_class: Option<ErrorClass>,
        ttft: Option<Duration>,
    ) {
        match usage {
            Some(u) => {
                self.finish(u, UsageSource::Upstream, error_class, ttft);
            }
            None => {
                let generated = generated.to_string();
                let svc = self.svc.clone();
                svc.settle_off_runtime(move |tokenizer| {
                    let u = counted(tokenizer, &self.log.model, &self.request, &generated);
                    let source = if complete {
                        UsageSource::Estimated
                    } else {
                        UsageSource::Partial
                    };
                    self.finish(u, source, error_class, ttft);
                });
            }
        }
    }

    /// The call's usage by the gateway's own count (the client's request and `generated`), taken
    /// on the token-counting thread: for an answer that must report usage the upstream did not.
    pub(super) async fn count(&self, generated: &str) -> Usage {
        let (model, request, generated) = (
            self.log.model.clone(),
            self.request.clone(),
            generated.to_string(),
        );
        let rough = Usage {
            prompt: request.len().div_ceil(4) as u64,
            completion: generated.len().div_ceil(4) as u64,
            ..Usage::default()
        };
        self.svc
            .with_tokenizer(move |t| counted(t, &model, &request, &generated))
            .await
            .unwrap_or(rough)
    }

    /// Settles with usage the gateway counted ([`Call::count`]) and reported to the client.
    pub(super) fn settle_counted(
        self,
        u: Usage,
        error_class: Option<ErrorClass>,
        ttft: Option<Duration>,
    ) {
        self.finish(u, UsageSource::Estimated, error_class, ttft);
    }

    fn finish(
        self,
        mut u: Usage,
        source: UsageSource,
        mut error_class: Option<ErrorClass>,
        ttft: Option<Duration>,
    ) {
        // An upstream that went past the bound it was sent: the client paid for the bound, and
        // the excess is the upstream's (the metric and the row's class tell the operator).
        if u.completion > self.bound {
            tracing::warn!(model = %self.log.model, bound = self.bound, produced = u.completion, "the upstream ignored the output bound; charged at the bound");
            u.completion = self.bound;
            let d = &mut u.detail;
            for part in [&mut d.reasoning, &mut d.image_output, &mut d.audio_output] {
                *part = (*part).min(self.bound);
            }
            error_class = Some(ErrorClass::UpstreamOverBound);
        }
        let cost = self.quote.cost(&u);
        // Charged for the day the usage row is dated, which the drift check compares it with.
        self.reservation.settle(cost, self.log.created_at);
        if let Some(hold) = self.tokens {
            hold.settle(u.prompt + u.completion);
        }
        let mut log = self.log;
        log.prompt_tokens = u.prompt;
        log.completion_tokens = u.completion;
        log.cached_tokens = u.cached;
        log.detail = u.detail;
        log.cost = cost;
        log.price_version = Some(self.quote.version());
        log.usage_source = source;
        log.error_class = error_class;
        log.latency_ms = self.started.elapsed().as_millis() as u64;
        log.ttft_ms = ttft.map(|d| d.as_millis() as u64);
        crate::usage::log_call(&self.svc, log);
        // The call is over: its place among the key's calls in flight is free.
        drop(self.slot);
    }
}

/// The usage of a call by the gateway's own count: the prompt of the client's `request` and the
/// `generated` text.
fn counted(
    tokenizer: &super::tokens::Tokenizer,
    model: &str,
    request: &[u8],
    generated: &str,
) -> Usage {
    Usage {
        prompt: tokenizer.prompt_tokens(
            model,
            &serde_json::from_slice(request).unwrap_or(Value::Null),
        ),
        completion: tokenizer.count(model, generated),
        ..Usage::default()
    }
}
