//! The one gate every request passes before a handler (SPEC §2), in this order: the `Host` check
//! (DNS rebinding), CORS preflight, the `/mcp` Origin check, the API key, the rate limit; then CORS headers
//! on the way out. Handlers receive the authenticated [`Caller`] as an extractor.

mod client;
mod origins;
mod rate_limit;
mod streams;

use std::future::{ready, Ready};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse};

pub use client::TrustedProxies;
pub use origins::SitePolicy;
pub use rate_limit::RateLimiter;
pub use streams::{StreamLimits, StreamPermit};

use super::AppState;
use super::{auth, errors};
use crate::auth::{Auth, AuthError, Caller};
use crate::mcp::jsonrpc;
use origins::{OriginVerdict, RequestSite};

/// Everything the gate decides with, built once from the settings.
pub struct Guard {
    pub auth: Auth,
    pub site: SitePolicy,
    pub proxies: TrustedProxies,
    pub limiter: Option<RateLimiter>,
    /// `Origin: null` may read `/sse`: keys are configured (they still gate it) or the operator opted in.
    pub null_origin_reads: bool,
    pub streams: StreamLimits,
}

/// Who an admitted request is charged to (rate limit, stream cap, session quota): the key's fingerprint,
/// or the client's address in keyless mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKey(pub String);

/// What a browser client may send: the transport's headers, the 2026-07-28 revision's `Mcp-Method` and
/// `Mcp-Name` included, so a page speaking it is not refused at preflight.
const ALLOW_HEADERS: &str =
    "X-API-Key, Authorization, Content-Type, Last-Event-ID, Mcp-Session-Id, \
                             MCP-Protocol-Version, Mcp-Method, Mcp-Name";
const EXPOSE_HEADERS: &str = "Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate, Retry-After";

/// Routes by what the gate asks of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Mcp,
    Sse,
    /// `/`, `/probe`, the scripts, the favicon, `/healthz`, `/readyz`: no key, no rate limit.
    Public,
    /// `/metrics`: a key, but no rate limit (scrapers poll it).
    Metrics,
    /// Anything else (unknown paths included): a key and the rate limit.
    Other,
}

impl Route {
    /// The `route` label of the request metrics.
    fn label(self) -> &'static str {
        match self {
            Route::Mcp => "mcp",
            Route::Sse => "sse",
            Route::Public => "public",
            Route::Metrics => "metrics",
            Route::Other => "other",
        }
    }

    fn of(path: &str) -> Self {
        match path {
            "/mcp" => Route::Mcp,
            "/sse" => Route::Sse,
            "/" | "/probe" | "/sseClient.js" | "/cockpit.js" | "/favicon.svg" | "/favicon.ico"
            | "/healthz" | "/readyz" => Route::Public,
            "/metrics" => Route::Metrics,
            _ => Route::Other,
        }
    }

    fn needs_key(self) -> bool {
        self != Route::Public
    }

    fn rate_limited(self) -> bool {
        matches!(self, Route::Mcp | Route::Sse | Route::Other)
    }

    /// An error body in the route's own language: a JSON-RPC error object on `/mcp`, plain JSON elsewhere.
    fn error(self, status: StatusCode, code: i64, name: &str, message: String) -> HttpResponse {
        if self == Route::Mcp {
            errors::rpc(status, code, message)
        } else {
            errors::plain(status, name, message)
        }
    }
}

/// Methods a cross-site page must never send us (a form or a `text/plain` fetch needs no preflight).
fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A request from another site's page: a foreign or `null` Origin, or a browser saying `cross-site`
/// about an Origin that is not on the allow-list.
fn cross_site(verdict: OriginVerdict, headers: &HeaderMap) -> bool {
    let fetch_site_cross = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    match verdict {
        OriginVerdict::Foreign | OriginVerdict::Null => true,
        OriginVerdict::Absent => fetch_site_cross,
        OriginVerdict::Allowed => false,
    }
}

/// The `?key=` of an EventSource request.
fn query_key(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "key")
        .map(|(_, value)| value.into_owned())
}

fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// Why a request does not reach its handler; rendered in the route's own error language.
#[derive(Debug, PartialEq)]
enum Rejection {
    ForeignHost,
    ForeignOrigin,
    Unauthorized(AuthError),
    RateLimited(Duration),
    /// The client already holds as many event streams as it may.
    TooManyStreams,
    /// Not an error: a CORS preflight is answered by the gate itself.
    Preflight,
}

impl Rejection {
    fn response(self, route: Route) -> HttpResponse {
        let forbidden = |name, message: &str| {
            route.error(
                StatusCode::FORBIDDEN,
                jsonrpc::FORBIDDEN,
                name,
                message.into(),
            )
        };
        match self {
            Rejection::ForeignHost => forbidden(
                "forbidden_host",
                "Forbidden: on a loopback bind the server answers only to loopback host names; add this \
                 name to COCKPIT_ALLOWED_HOSTS",
            ),
            Rejection::ForeignOrigin => forbidden(
                "forbidden_origin",
                "Forbidden: requests from this Origin are not allowed; add the page's origin to \
                 COCKPIT_ALLOWED_ORIGINS",
            ),
            Rejection::Unauthorized(error) => {
                let message = match (error, route) {
                    (AuthError::Wrong, _) => "Unauthorized: the API key is not valid",
                    (AuthError::Missing, Route::Sse) => {
                        "Unauthorized: send the API key as X-API-Key, Authorization: Bearer, or ?key= on /sse"
                    }
                    (AuthError::Missing, _) => {
                        "Unauthorized: send the API key as `X-API-Key: <key>` or `Authorization: Bearer <key>` \
                         (a key in the URL is accepted on /sse only)"
                    }
                };
                let mut response = route.error(
                    StatusCode::UNAUTHORIZED,
                    jsonrpc::UNAUTHORIZED,
                    "unauthorized",
                    message.into(),
                );
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(auth::CHALLENGE),
                );
                response
            }
            Rejection::RateLimited(wait) => {
                let seconds = retry_after_seconds(wait).max(1);
                let mut response = route.error(
                    StatusCode::TOO_MANY_REQUESTS,
                    jsonrpc::RATE_LIMITED,
                    "rate_limited",
                    format!("Too many requests: over the rate limit; retry after {seconds} s"),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                response
            }
            Rejection::TooManyStreams => {
                let mut response = route.error(
                    StatusCode::TOO_MANY_REQUESTS,
                    jsonrpc::RATE_LIMITED,
                    "too_many_streams",
                    "Too many open streams: this client already holds as many event streams as \
                     security.max_streams_per_client allows; close one first"
                        .into(),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                response
            }
            Rejection::Preflight => HttpResponse::NoContent()
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    "GET, POST, DELETE, OPTIONS",
                ))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
                .finish(),
        }
    }
}

fn add_cors(headers: &mut HeaderMap, origin: &HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
}

impl Guard {
    /// Decides about one request; `Ok` carries the caller and who it is charged to (for routes that need a
    /// key) to hand to the handler.
    fn admit(
        &self,
        req: &ServiceRequest,
        route: Route,
        cors_allowed: bool,
        client_ip: Option<IpAddr>,
        verdict: OriginVerdict,
    ) -> Result<Option<(Caller, ClientKey)>, Rejection> {
        let is_preflight = req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if is_preflight {
            return Err(if cors_allowed {
                Rejection::Preflight
            } else {
                Rejection::ForeignOrigin
            });
        }
        // A foreign page never gets a stream or a tool call.
        let streams_or_tools = matches!(route, Route::Mcp | Route::Sse);
        if streams_or_tools && matches!(verdict, OriginVerdict::Foreign | OriginVerdict::Null) {
            return Err(Rejection::ForeignOrigin);
        }
        if changes_state(req.method()) && cross_site(verdict, req.headers()) {
            return Err(Rejection::ForeignOrigin);
        }
        let ip_key = || {
            format!(
                "ip:{}",
                client_ip.map(|ip| ip.to_string()).unwrap_or_default()
            )
        };
        let caller = if route.needs_key() {
            let presented = auth::presented_key(req.request())
                .map(String::from)
                .or_else(|| {
                    (route == Route::Sse)
                        .then(|| query_key(req.query_string()))
                        .flatten()
                });
            match self.auth.check(presented.as_deref()) {
                Ok(caller) => Some(caller),
                Err(error) => {
                    // Failed attempts count against the address, so keys cannot be guessed at line rate.
                    self.limit(&ip_key())?;
                    return Err(Rejection::Unauthorized(error));
                }
            }
        } else {
            None
        };
        let client = match &caller {
            Some(c) if !self.auth.keyless() => c.actor.clone(),
            _ => ip_key(),
        };
        if route.rate_limited() {
            self.limit(&client)?;
        }
        Ok(caller.map(|caller| (caller, ClientKey(client))))
    }

    fn limit(&self, client: &str) -> Result<(), Rejection> {
        self.charge(&ClientKey(client.to_string()), 1)
            .map_err(Rejection::RateLimited)
    }

    /// A place for one more long-lived event stream of this client (`/sse`, or `GET /mcp` when `on_mcp`), or the
    /// 429 that says it holds too many, in the route's own error language.
    pub(crate) fn stream_permit(
        &self,
        client: &ClientKey,
        on_mcp: bool,
    ) -> Result<StreamPermit, Box<HttpResponse>> {
        let route = if on_mcp { Route::Mcp } else { Route::Sse };
        self.streams
            .acquire(&client.0)
            .ok_or_else(|| Box::new(Rejection::TooManyStreams.response(route)))
    }

    /// Takes `cost` more tokens from the client's bucket (the gate took one per request; a batch costs one
    /// per element); `Err` is the time to wait.
    pub fn charge(&self, client: &ClientKey, cost: u32) -> Result<(), Duration> {
        match &self.limiter {
            Some(limiter) if cost > 0 => limiter
                .take(&client.0, cost, Instant::now())
                .inspect_err(|_| crate::metrics::METRICS.rate_limited.inc()),
            _ => Ok(()),
        }
    }
}

/// The 429 of a `/mcp` request whose batch costs more than the client's bucket holds.
pub(crate) fn mcp_rate_limited(wait: Duration) -> HttpResponse {
    Rejection::RateLimited(wait).response(Route::Mcp)
}

/// Counts a request and its time to the response head.
fn observe(route: Route, status: StatusCode, started: Instant) {
    let metrics = &crate::metrics::METRICS;
    metrics
        .http_requests
        .with_label_values(&[route.label(), status.as_str()])
        .inc();
    metrics
        .http_duration
        .with_label_values(&[route.label()])
        .observe(started.elapsed().as_secs_f64());
}

/// The middleware (`actix_web::middleware::from_fn`).
pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(actix_web::error::ErrorInternalServerError(
            "application state missing",
        ));
    };
    let guard = &state.guard;
    // The path the router matches (percent-decoded: `/%6Dcp` is `/mcp`), never the raw one.
    let route = Route::of(req.match_info().as_str());
    let started = Instant::now();
    let site = guard
        .proxies
        .client_site(req.peer_addr().map(|a| a.ip()), req.headers());
    if !guard.site.host_allowed(site.host.as_deref()) {
        let response = Rejection::ForeignHost.response(route);
        return Ok(req.into_response(response).map_into_right_body());
    }
    let origin = req.headers().get(header::ORIGIN).cloned();
    let verdict = match &origin {
        None => OriginVerdict::Absent,
        Some(value) => guard.site.judge_origin(&RequestSite {
            origin: Some(value.to_str().unwrap_or("\u{0}")),
            scheme: &site.scheme,
            host: site.host.as_deref(),
        }),
    };
    // `Origin: null` (a file page, a sandboxed frame on any site) may read `/sse` only when keys gate it or
    // the operator opted in; everywhere else it is foreign.
    let verdict = match verdict {
        OriginVerdict::Null if route == Route::Sse && guard.null_origin_reads => {
            OriginVerdict::Allowed
        }
        other => other,
    };
    let cors_origin = match verdict {
        OriginVerdict::Allowed => origin.as_ref(),
        _ => None,
    };
    match guard.admit(&req, route, cors_origin.is_some(), site.ip, verdict) {
        Err(rejection) => {
            let mut response = rejection.response(route);
            if let Some(origin) = cors_origin {
                add_cors(response.headers_mut(), origin);
            }
            observe(route, response.status(), started);
            Ok(req.into_response(response).map_into_right_body())
        }
        Ok(caller) => {
            if let Some((caller, client)) = caller {
                req.extensions_mut().insert(caller);
                req.extensions_mut().insert(client);
            }
            let cors_origin = cors_origin.cloned();
            let mut response = next.call(req).await?;
            if let Some(origin) = &cors_origin {
                add_cors(response.headers_mut(), origin);
            }
            observe(route, response.status(), started);
            Ok(response.map_into_left_body())
        }
    }
}

/// What the gate put into an admitted request's extensions.
fn admitted<T: Clone + 'static>(req: &HttpRequest) -> Ready<Result<T, actix_web::Error>> {
    ready(
        req.extensions()
            .get::<T>()
            .cloned()
            .ok_or_else(|| actix_web::error::ErrorInternalServerError("request not admitted")),
    )
}

/// Handlers of key-protected routes take the caller the gate admitted.
impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        admitted(req)
    }
}

/// ... and who the request is charged to.
impl FromRequest for ClientKey {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        admitted(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_classified_as_spec_2_says() {
        assert!(!Route::of("/healthz").needs_key() && !Route::of("/readyz").rate_limited());
        assert!(Route::of("/metrics").needs_key() && !Route::of("/metrics").rate_limited());
        assert!(Route::of("/mcp").needs_key() && Route::of("/sse").rate_limited());
        assert!(Route::of("/secret").needs_key());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_seconds(Duration::from_secs(3)), 3);
    }

    #[test]
    fn only_sse_reads_a_key_from_the_query() {
        assert_eq!(query_key("topic=job/*&key=k%201").as_deref(), Some("k 1"));
        assert_eq!(query_key("topic=job/*"), None);
    }
}
