//! The web assets, embedded in the binary: the cockpit page at `/` (its script at `/cockpit.js`), the kit's
//! SSE probe at `/probe` (also shipped as `docs/mcp/sse_probe.html`), the client library at `/sseClient.js`
//! and the icon. Public (no key): the pages hold no data; they ask the API with the key the operator types in.

use actix_web::http::header;
use actix_web::HttpResponse;

const COCKPIT: &str = include_str!("../../dashboard/index.html");
const PROBE: &str = include_str!("../../docs/mcp/sse_probe.html");
const CLIENT: &str = include_str!("../../dashboard/sseClient.js");
const COCKPIT_SCRIPT: &str = include_str!("../../dashboard/cockpit.js");
const FAVICON: &str = include_str!("../../dashboard/favicon.svg");

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(body)
}

/// A page with actions: no other site may frame it (clickjacking an Abort button).
fn page(body: &'static str) -> HttpResponse {
    let mut response = asset("text/html; charset=utf-8", body);
    let headers = response.headers_mut();
    headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("frame-ancestors 'none'"),
    );
    response
}

pub async fn cockpit() -> HttpResponse {
    page(COCKPIT)
}

pub async fn probe() -> HttpResponse {
    page(PROBE)
}

/// The icon, as SVG at both names (browsers ask for `/favicon.ico` unless a page links another).
pub async fn favicon() -> HttpResponse {
    asset("image/svg+xml", FAVICON)
}

pub async fn client() -> HttpResponse {
    asset("application/javascript; charset=utf-8", CLIENT)
}

pub async fn cockpit_script() -> HttpResponse {
    asset("application/javascript; charset=utf-8", COCKPIT_SCRIPT)
}
