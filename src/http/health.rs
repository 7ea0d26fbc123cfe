//! `/healthz`: the process answers. `/readyz`: the database takes writes and its migrations are applied.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;
use crate::storage;

pub async fn alive() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match storage::blocking(&state.pool, storage::check_writable).await {
        Ok(()) => HttpResponse::Ok().json(json!({"ready": true, "database": "ok"})),
        Err(e) => {
            log::warn!("not ready: {e}");
            HttpResponse::ServiceUnavailable()
                .json(json!({"ready": false, "database": e.to_string()}))
        }
    }
}
