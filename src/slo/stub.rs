//! The stub SLO source: synthetic, deterministic SLIs per gate from `[slo.stub]`, healthy by default, so the
//! service and its tests run with no Prometheus. `[slo.stub.gates.<gate>]` overrides drive a breach
//! (`latency_p95_ms = 2000`), silence (`silent = true` → `no_data`) or a frozen exporter (`stale = true`: the
//! newest sample is an hour old).

use futures_util::future::{self, LocalBoxFuture};
use serde_json::json;

use super::{raw_text, Gathered, RawAnswers, SloQuery, SloSource};
use super::{Observation, ReasonCode, Sample};
use crate::config::StubSettings;

pub struct StubSource {
    settings: StubSettings,
}

impl StubSource {
    pub fn new(settings: StubSettings) -> Self {
        Self { settings }
    }

    fn observe(&self, query: &SloQuery) -> Observation {
        let s = &self.settings;
        let gate = s.gates.get(&query.gate).cloned().unwrap_or_default();
        let at_ms = query.at.timestamp_millis();
        let gap = gate.gaps > 0.0
            && unit_noise(s.seed ^ 4, &query.gate, &query.model_id, at_ms) < gate.gaps;
        if gate.silent || gap {
            let none = Sample::Missing(ReasonCode::NoData);
            return Observation {
                latency_p95_ms: none,
                error_rate: none,
                errors: Some(none),
                requests: none,
                newest: none,
            };
        }
        let jittered = |base: f64, salt: u64| {
            let unit = unit_noise(s.seed ^ salt, &query.gate, &query.model_id, at_ms);
            base * (1.0 + s.jitter * (2.0 * unit - 1.0))
        };
        let requests = jittered(gate.requests.unwrap_or(s.requests), 3).round();
        let rate = jittered(gate.error_rate.unwrap_or(s.error_rate), 2).clamp(0.0, 1.0);
        let errors = Sample::Value((rate * requests).round());
        let requests = Sample::Value(requests);
        let age_seconds = if gate.stale { 3600.0 } else { 0.0 };
        Observation {
            latency_p95_ms: Sample::Value(jittered(
                gate.latency_p95_ms.unwrap_or(s.latency_p95_ms),
                1,
            )),
            error_rate: Observation::rate_of(errors, requests),
            errors: Some(errors),
            requests,
            newest: Sample::Value(at_ms as f64 / 1000.0 - age_seconds),
        }
    }
}

/// A number in [0, 1) that depends only on its inputs (FNV-1a), so a stub run can be replayed exactly.
fn unit_noise(seed: u64, gate: &str, model: &str, at_ms: i64) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for byte in gate
        .bytes()
        .chain([0])
        .chain(model.bytes())
        .chain(at_ms.to_le_bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

impl SloSource for StubSource {
    fn gather(&self, query: SloQuery) -> LocalBoxFuture<'static, Gathered> {
        let observation = self.observe(&query);
        let metric = |name: &str| {
            format!(
                "stub:{name}{{gate=\"{}\",model=\"{}\"}}[{}]",
                query.gate, query.model_id, query.window
            )
        };
        let gathered = Gathered {
            raw: RawAnswers {
                latency: raw_text(observation.latency_p95_ms),
                error_rate: raw_text(observation.error_rate),
                errors: observation.errors.map(raw_text).unwrap_or_default(),
                requests: raw_text(observation.requests),
                newest: raw_text(observation.newest),
            },
            query: json!({
                "source": "stub",
                "latency": metric("latency_p95_ms"),
                "errors": metric("errors"),
                "requests": metric("requests"),
                "newest": metric("newest_sample_time"),
            }),
            observation,
        };
        Box::pin(future::ready(gathered))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::GateOverride;

    fn source(gates: BTreeMap<String, GateOverride>) -> StubSource {
        StubSource::new(StubSettings {
            latency_p95_ms: 250.0,
            error_rate: 0.002,
            requests: 1000.0,
            jitter: 0.1,
            seed: 7,
            gates,
        })
    }

    fn query(gate: &str, ms: i64) -> SloQuery {
        SloQuery {
            model_id: "m".into(),
            gate: gate.into(),
            window: "300s".into(),
            since: "300s".into(),
            at: chrono::DateTime::from_timestamp_millis(ms).expect("time"),
            budget: std::time::Duration::from_secs(10),
        }
    }

    #[test]
    fn values_are_healthy_jittered_and_reproducible() {
        let stub = source(BTreeMap::new());
        for ms in 0..50 {
            let o = stub.observe(&query("production", ms * 1000));
            let latency = o.latency_p95_ms.value().expect("value");
            assert!((225.0..=275.0).contains(&latency), "{latency}");
            assert!(o.error_rate.value().expect("value") <= 0.0025);
            assert_eq!(o, stub.observe(&query("production", ms * 1000)));
        }
        assert_ne!(
            stub.observe(&query("production", 1)),
            stub.observe(&query("production", 2))
        );
    }

    #[test]
    fn gate_overrides_drive_a_breach_or_silence() {
        let mut gates = BTreeMap::new();
        gates.insert(
            "slow".to_string(),
            GateOverride {
                latency_p95_ms: Some(2000.0),
                ..GateOverride::default()
            },
        );
        gates.insert(
            "dark".to_string(),
            GateOverride {
                silent: true,
                ..GateOverride::default()
            },
        );
        let stub = source(gates);
        assert!(
            stub.observe(&query("slow", 0))
                .latency_p95_ms
                .value()
                .expect("value")
                > 1500.0
        );
        assert_eq!(
            stub.observe(&query("dark", 0)).requests,
            Sample::Missing(ReasonCode::NoData)
        );
    }

    #[test]
    fn a_flaky_gate_finds_no_data_on_about_its_fraction_of_checks() {
        let mut gates = BTreeMap::new();
        gates.insert(
            "flaky".to_string(),
            GateOverride {
                gaps: 0.3,
                ..GateOverride::default()
            },
        );
        let stub = source(gates);
        let missing = (0..1000)
            .filter(|n| {
                stub.observe(&query("flaky", n * 1000))
                    .requests
                    .value()
                    .is_none()
            })
            .count();
        assert!((200..400).contains(&missing), "{missing} of 1000");
    }

    #[test]
    fn errors_are_counts_of_the_requests_and_a_frozen_gate_is_an_hour_old() {
        let mut gates = BTreeMap::new();
        gates.insert(
            "frozen".to_string(),
            GateOverride {
                stale: true,
                ..GateOverride::default()
            },
        );
        let stub = source(gates);
        let o = stub.observe(&query("production", 5000));
        let (k, n) = (
            o.errors.and_then(Sample::value).expect("errors"),
            o.requests.value().expect("requests"),
        );
        assert!(k.fract() == 0.0 && k <= n);
        assert_eq!(o.newest, Sample::Value(5.0));
        assert_eq!(
            stub.observe(&query("frozen", 5000)).newest,
            Sample::Value(5.0 - 3600.0)
        );
    }
}
