//! The status page: the service's health and what the gateway has seen of each public model.

use serde::{Deserialize, Serialize};

/// `GET /api/status`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// The database answers (without it no call is served).
    pub healthy: bool,
    /// Parts the gateway is running without (`redis`): calls are served, limits are local.
    pub degraded: Vec<String>,
    /// Unix ms of this reading.
    pub checked_at: i64,
    pub models: Vec<ModelStatus>,
}

/// One public model, from the calls of the last hour and the last 24 hours.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelStatus {
    pub model: String,
    pub state: ModelState,
    /// The last 60 minutes.
    pub hour: HealthFigures,
    /// The last 24 hours.
    pub day: HealthFigures,
    /// The 24 hours up to now, oldest first (the first partial), one entry per hour.
    pub hours: Vec<HourHealth>,
}

/// Calls that reached an upstream or failed for want of one; client errors (4xx, a client
/// hanging up) say nothing of a model and are left out.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthFigures {
    pub requests: u64,
    /// Answered 5xx, or a stream the upstream cut.
    pub failures: u64,
    /// Mean over the calls that did not fail.
    pub avg_latency_ms: Option<u64>,
    /// Mean time to the first token of the streams that did not fail.
    pub avg_ttft_ms: Option<u64>,
}

impl HealthFigures {
    /// The share of calls that did not fail, in basis points (10000 = 100%); `None` without
    /// calls.
    pub fn success_bp(&self) -> Option<u64> {
        (self.requests > 0)
            .then(|| (self.requests - self.failures.min(self.requests)) * 10_000 / self.requests)
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourHealth {
    /// Unix ms of the hour's start.
    pub hour: i64,
    pub requests: u64,
    pub failures: u64,
}

/// From the last hour: `operational` at 99% success or more, `degraded` from 90%, `down`
/// below; `idle` without calls.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelState {
    Operational,
    Degraded,
    Down,
    Idle,
}

impl ModelState {
    pub fn of(hour: &HealthFigures) -> ModelState {
        match hour.success_bp() {
            None => ModelState::Idle,
            Some(bp) if bp >= 9_900 => ModelState::Operational,
            Some(bp) if bp >= 9_000 => ModelState::Degraded,
            Some(_) => ModelState::Down,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(requests: u64, failures: u64) -> HealthFigures {
        HealthFigures {
            requests,
            failures,
            ..HealthFigures::default()
        }
    }

    #[test]
    fn a_models_state_follows_its_success_rate() {
        assert_eq!(ModelState::of(&figures(0, 0)), ModelState::Idle);
        assert_eq!(ModelState::of(&figures(100, 1)), ModelState::Operational);
        assert_eq!(ModelState::of(&figures(100, 2)), ModelState::Degraded);
        assert_eq!(ModelState::of(&figures(100, 10)), ModelState::Degraded);
        assert_eq!(ModelState::of(&figures(100, 11)), ModelState::Down);
        assert_eq!(ModelState::of(&figures(3, 3)), ModelState::Down);
        assert_eq!(figures(3, 1).success_bp(), Some(6_666));
        assert_eq!(figures(0, 0).success_bp(), None);
    }
}
