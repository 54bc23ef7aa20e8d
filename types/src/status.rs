//! The status page: the service's health and what the gateway has seen of each public model.

use serde::{Deserialize, Serialize};

/// `GET /api/status`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Every check that calls depend on passes: the database answers, and at least one public
    /// model (when there are any) is not down.
    pub healthy: bool,
    /// Checks that failed without stopping calls: `redis` (limits are kept per instance),
    /// `usage_writer` (call logs wait in memory), `models` (some, not all, models are down).
    pub degraded: Vec<String>,
    /// Each check, passed or not, with what it found.
    pub checks: Vec<StatusCheck>,
    /// Unix ms of this reading.
    pub checked_at: i64,
    pub models: Vec<ModelStatus>,
}

/// One check behind `healthy` and `degraded`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCheck {
    /// `database`, `redis`, `usage_writer` or `models`.
    pub name: String,
    pub ok: bool,
    /// Whether its failure makes the service unhealthy (else degraded).
    pub critical: bool,
    /// What it found, in English (`2 of 5 models down: a, b`).
    pub detail: String,
}

/// What the latest probes said of the channels that serve a model (probes older than an hour
/// are not counted).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeFigures {
    /// Enabled channels that serve the model.
    pub channels: u32,
    /// Of them, those whose latest probe answered.
    pub ok: u32,
    /// Of them, those whose latest probe failed.
    pub failing: u32,
    /// Unix ms of the newest of these probes.
    pub at: Option<i64>,
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
    /// Unix ms of the start of the last minute with a call, within the last hour.
    pub last_call_at: Option<i64>,
    pub probes: ProbeFigures,
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

/// The newer evidence decides. When a probe of the model's channels is newer than its last
/// call (or there was no call in the last hour), the probes do: every channel failing →
/// `down`, some → `degraded`, none → `operational`. Otherwise the last hour's calls do:
/// `operational` at 99% success or more, `degraded` from 90%, `down` below. Neither calls nor
/// probes: `idle`.
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
    /// The state from the last hour's calls and the latest probes (see [`ModelState`]).
    pub fn combined(
        hour: &HealthFigures,
        last_call_at: Option<i64>,
        probes: &ProbeFigures,
    ) -> ModelState {
        let probed = probes.ok + probes.failing;
        let probes_newer = match (probes.at, last_call_at) {
            (Some(p), Some(c)) => p >= c,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if probed == 0 || !probes_newer {
            return ModelState::of(hour);
        }
        if probes.ok == 0 && probes.failing >= probes.channels {
            ModelState::Down
        } else if probes.failing > 0 {
            ModelState::Degraded
        } else {
            ModelState::Operational
        }
    }

    /// The state from calls alone.
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

    fn probes(channels: u32, ok: u32, failing: u32, at: Option<i64>) -> ProbeFigures {
        ProbeFigures {
            channels,
            ok,
            failing,
            at,
        }
    }

    #[test]
    fn the_newer_of_calls_and_probes_decides() {
        let quiet = figures(0, 0);
        let good = figures(100, 0);
        // No calls: the probes decide; nothing at all is idle.
        assert_eq!(
            ModelState::combined(&quiet, None, &probes(2, 0, 2, Some(5))),
            ModelState::Down
        );
        assert_eq!(
            ModelState::combined(&quiet, None, &probes(2, 1, 1, Some(5))),
            ModelState::Degraded
        );
        assert_eq!(
            ModelState::combined(&quiet, None, &probes(2, 2, 0, Some(5))),
            ModelState::Operational
        );
        assert_eq!(
            ModelState::combined(&quiet, None, &ProbeFigures::default()),
            ModelState::Idle
        );
        // One of two channels probed, and failing: the other is unknown, so not down.
        assert_eq!(
            ModelState::combined(&quiet, None, &probes(2, 0, 1, Some(5))),
            ModelState::Degraded
        );
        // Probes newer than the last good call: they decide.
        assert_eq!(
            ModelState::combined(&good, Some(4), &probes(1, 0, 1, Some(5))),
            ModelState::Down
        );
        // Calls newer than a failed probe: the calls decide.
        assert_eq!(
            ModelState::combined(&good, Some(6), &probes(1, 0, 1, Some(5))),
            ModelState::Operational
        );
        assert_eq!(
            ModelState::combined(&figures(10, 10), Some(6), &probes(1, 1, 0, Some(5))),
            ModelState::Down
        );
    }
}
