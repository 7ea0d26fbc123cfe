//! `/healthz`: the process answers. `/readyz`: the database takes writes and its migrations are applied;
//! its body also names the backend (`sqlite` or `postgres`) and says whether Prometheus answers.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;
use crate::canary::Probe;
use crate::slo::Reachability;

/// `/metrics` (needs the key when keys are configured; never rate limited).
pub async fn metrics(_caller: crate::auth::Caller) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render())
}

pub async fn alive() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Prometheus is reported but never fails readiness: during an outage operators still need the cockpit to
/// abort canaries (SPEC §12).
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let prometheus = match state.slo.send(Probe).await {
        Ok(Reachability::NotApplicable) => "not configured (stub SLO source)".to_string(),
        Ok(Reachability::Up) => "ok".to_string(),
        Ok(Reachability::Unknown) => "unknown: not probed yet".to_string(),
        Ok(Reachability::Down(_)) => "unreachable (the server log has the cause)".to_string(),
        Err(_) => "unknown: the poller is stopping".to_string(),
    };
    let backend = state.store.backend();
    match state.store.check_writable().await {
        Ok(()) => HttpResponse::Ok().json(json!({
            "ready": true,
            "database": "ok",
            "backend": backend,
            "prometheus": prometheus
        })),
        // The cause (it names files and paths) goes to the log only: this route needs no key.
        Err(e) => {
            log::warn!("not ready: {e}");
            HttpResponse::ServiceUnavailable().json(json!({
                "ready": false,
                "database": "not writable (the server log has the cause)",
                "backend": backend,
                "prometheus": prometheus
            }))
        }
    }
}
