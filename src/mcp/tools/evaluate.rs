//! `evaluate_slo`: runs a gate's SLO queries once and judges them against a policy, changing nothing — a
//! preflight before `start_canary`, or a what-if with other thresholds.

use serde::Deserialize;
use serde_json::{json, Value};

use super::args::{invalid, parse};
use super::{Call, ToolContext, ToolError};
use crate::canary::policy::{self, PolicyPatch};
use crate::canary::rules::{self, Sample};
use crate::canary::Gather;
use crate::clock;
use crate::ids::Ident;
use crate::slo::SloQuery;

pub(super) const EXAMPLE: &str = r#"{"gate":"production","modelId":"lukhas-v2","sloPolicy":{"latency_p95_ms":800,"error_rate":0.01}}"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct EvaluateArgs {
    gate: Ident,
    model_id: Option<Ident>,
    #[serde(default)]
    slo_policy: PolicyPatch,
}

pub async fn evaluate_slo(ctx: &ToolContext, call: Call<'_>) -> Result<Value, ToolError> {
    let arguments = call.arguments;
    let args: EvaluateArgs = parse(arguments, EXAMPLE)?;
    let model = args.model_id.as_ref().map_or("*", Ident::as_str);
    let policy = policy::effective(&ctx.policies, model, args.gate.as_str(), &args.slo_policy)
        .map_err(|e| invalid(&format!("sloPolicy.{}", e.field), e.problem, EXAMPLE))?;
    let at = clock::now();
    // No canary yet: the whole window, as if one had run that long.
    let started = at - chrono::Duration::from_std(policy.window).unwrap_or_default();
    let query = SloQuery::canary_era(
        (model, args.gate.as_str()),
        policy.window,
        started,
        at,
        policy.interval,
    );
    let gathered = ctx.poller.send(Gather(query)).await?;
    let observed = gathered.observation;
    let due_unix = at.timestamp_millis() as f64 / 1000.0;
    let check = rules::judge(&policy, &observed, false, due_unix);
    let interval = observed
        .errors
        .and_then(Sample::value)
        .zip(observed.requests.value())
        .and_then(|(k, n)| rules::wilson(k, n, policy.confidence));
    let raw = gathered.raw;
    Ok(json!({
        "gate": args.gate.as_str(),
        "modelId": args.model_id.as_ref().map(Ident::as_str),
        "evaluatedAt": clock::rfc3339(at),
        "verdict": check.verdict.as_str(),
        "reasonCode": check.reason.as_str(),
        "values": {
            "latency_p95_ms": observed.latency_p95_ms.value(),
            "error_rate": observed.error_rate.value(),
            "errors": observed.errors.and_then(Sample::value),
            "requests": observed.requests.value(),
            "error_rate_lower": interval.map(|i| i.lower),
            "error_rate_upper": interval.map(|i| i.upper),
            "newest_sample_at": observed.newest.value(),
        },
        "raw": {"latency": raw.latency, "errorRate": raw.error_rate, "errors": raw.errors, "requests": raw.requests, "newest": raw.newest},
        "thresholds": {
            "latency_p95_ms": policy.latency_p95_ms,
            "error_rate": policy.error_rate,
            "criticalFactor": policy.critical_factor,
            "minRequests": policy.min_requests,
            "confidence": policy.confidence,
            "maxStaleness": policy::show_duration(policy.max_staleness),
        },
        "query": gathered.query,
    }))
}
