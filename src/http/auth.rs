//! Where HTTP requests carry an API key: `X-API-Key: K` or `Authorization: Bearer K` (the gate also takes
//! `?key=` on `/sse`, for EventSource). Checking a key is `crate::auth`'s.

use actix_web::HttpRequest;

/// The key from `X-API-Key` or `Authorization: Bearer`; an empty `X-API-Key` does not hide a bearer token.
pub fn presented_key(req: &HttpRequest) -> Option<&str> {
    let headers = req.headers();
    let api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|key| !key.is_empty());
    if api_key.is_some() {
        return api_key;
    }
    let auth = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The `WWW-Authenticate` challenge of every 401.
pub const CHALLENGE: &str = "Bearer realm=\"mcp-cockpit\", charset=\"UTF-8\"";
