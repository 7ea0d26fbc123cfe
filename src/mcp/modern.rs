//! The stateless 2026-07-28 revision ("modern"), served beside the handshake-era revisions on the same
//! `/mcp`. A modern request carries its protocol version and the client's capabilities in `_meta` and
//! mirrors its version, method and name in headers that must agree with the body; there is no
//! `initialize`, no session and no GET stream (`server/discover` and `subscriptions/listen` take their
//! places); every result says `resultType`, and list and read results carry cache hints.

use base64::Engine;
use serde_json::{json, Map, Value};

use super::jsonrpc::{self, RpcError};

/// The one modern revision we speak.
pub const VERSION: &str = "2026-07-28";
/// The headers disagree with the body, or one it needs is missing.
pub const HEADER_MISMATCH: i64 = -32020;
/// Serving the request needs a capability the client did not declare; `data.requiredCapabilities` names it.
pub const MISSING_CAPABILITY: i64 = -32021;
/// The requested protocol version is not one we speak; `data.supported` lists those we do.
pub const UNSUPPORTED_VERSION: i64 = -32022;

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// Tags every message of a `subscriptions/listen` stream with the id of the request that opened it.
pub const META_SUBSCRIPTION: &str = "io.modelcontextprotocol/subscriptionId";

/// Methods whose request mirrors `params.name` or `params.uri` in the `Mcp-Name` header.
const NAMED: [(&str, &str); 6] = [
    ("tools/call", "name"),
    ("resources/read", "uri"),
    ("prompts/get", "name"),
    ("tasks/get", "taskId"),
    ("tasks/update", "taskId"),
    ("tasks/cancel", "taskId"),
];

/// What a modern request mirrors in its HTTP headers.
#[derive(Debug, Default, Clone, Copy)]
pub struct Headers<'a> {
    pub protocol_version: Option<&'a str>,
    pub method: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// Every revision we speak, newest first, as `server/discover` and a version refusal list them.
pub fn supported_versions() -> Vec<&'static str> {
    std::iter::once(VERSION)
        .chain(super::SUPPORTED_VERSIONS)
        .collect()
}

/// Whether a single message is served the modern way: its `_meta` names a protocol version, or its
/// `MCP-Protocol-Version` header names the modern revision.
pub fn is_modern(message: &Value, headers: &Headers<'_>) -> bool {
    headers.protocol_version == Some(VERSION)
        || meta(message).is_some_and(|m| m.contains_key(META_VERSION))
}

fn meta(message: &Value) -> Option<&Map<String, Value>> {
    message.get("params")?.get("_meta")?.as_object()
}

fn example() -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"_meta":{{"{META_VERSION}":"{VERSION}","{META_CAPABILITIES}":{{}}}}}}}}"#
    )
}

fn invalid(why: &str) -> RpcError {
    RpcError::new(
        jsonrpc::INVALID_PARAMS,
        format!("Invalid params: {why}; a valid request: {}", example()),
    )
}

fn mismatch(why: String) -> RpcError {
    RpcError::new(HEADER_MISMATCH, format!("Header mismatch: {why}"))
}

/// The refusal of a protocol version we do not speak, naming those we do.
pub fn unsupported(requested: &str) -> RpcError {
    let requested: String = requested.chars().take(40).collect();
    RpcError::new(
        UNSUPPORTED_VERSION,
        format!(
            "Unsupported protocol version `{requested}`; supported: {}",
            supported_versions().join(", ")
        ),
    )
    .with_data(json!({"supported": supported_versions(), "requested": requested}))
}

/// Checks a modern request before anything runs: its `_meta`, then each header against the body. Every
/// refusal is HTTP 400.
pub fn admit(message: &Value, method: &str, headers: &Headers<'_>) -> Result<(), RpcError> {
    let meta = meta(message);
    let Some(requested) = meta.and_then(|m| m.get(META_VERSION)) else {
        return Err(invalid(&format!(
            "`params._meta[\"{META_VERSION}\"]` is required in protocol {VERSION}"
        )));
    };
    let Some(requested) = requested.as_str() else {
        return Err(invalid(&format!(
            "`params._meta[\"{META_VERSION}\"]` must be a string"
        )));
    };
    if requested != VERSION {
        return Err(unsupported(requested));
    }
    if !meta
        .and_then(|m| m.get(META_CAPABILITIES))
        .is_some_and(Value::is_object)
    {
        return Err(invalid(&format!(
            "`params._meta[\"{META_CAPABILITIES}\"]` (an object, `{{}}` for none) is required in protocol {VERSION}"
        )));
    }
    agrees("MCP-Protocol-Version", headers.protocol_version, requested)?;
    agrees("Mcp-Method", headers.method, method)?;
    let Some((_, field)) = NAMED.iter().find(|(named, _)| *named == method) else {
        return Ok(());
    };
    let body = message["params"][field].as_str().unwrap_or_default();
    match headers.name.map(decode) {
        Some(Some(header)) if header == body => Ok(()),
        Some(Some(header)) => Err(mismatch(format!(
            "Mcp-Name `{}` is not the body's `{}`",
            clip(&header),
            clip(body)
        ))),
        Some(None) => Err(mismatch("Mcp-Name is not valid `=?base64?…?=` text".into())),
        None => Err(mismatch(format!(
            "the Mcp-Name header (`params.{field}`) is required for {method}"
        ))),
    }
}

/// A header that must be present and say what the body says.
fn agrees(name: &str, header: Option<&str>, body: &str) -> Result<(), RpcError> {
    match header {
        Some(header) if header == body => Ok(()),
        Some(header) => Err(mismatch(format!(
            "{name} `{}` is not the body's `{body}`",
            clip(header)
        ))),
        None => Err(mismatch(format!(
            "the {name} header (`{body}`) is required"
        ))),
    }
}

fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}

/// A header value as sent: plain, or `=?base64?<UTF-8 in base64>?=`; `None` when the encoding is broken.
fn decode(value: &str) -> Option<String> {
    let Some(encoded) = value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    else {
        return Some(value.to_string());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// The cockpit's icon (the dashboard's), inline so a client needs no second request or key to show it.
const ICON: &str = include_str!("../../dashboard/favicon.svg");

/// Who we are: in `initialize` and in every modern result's `_meta`.
pub fn server_info() -> Value {
    static ICON_URI: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let icon = ICON_URI.get_or_init(|| {
        format!(
            "data:image/svg+xml;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(ICON)
        )
    });
    json!({
        "name": "mcp-cockpit",
        "title": "MCP Cockpit",
        "version": env!("CARGO_PKG_VERSION"),
        "icons": [{"src": icon, "mimeType": "image/svg+xml", "sizes": ["any"]}]
    })
}

/// A modern result: `resultType`, our identity, and the cache hints of the methods that carry them (lists
/// that only change with a new binary may be kept five minutes by anyone; entities change live and are
/// the caller's).
pub fn complete(method: &str, mut result: Value) -> Value {
    let Some(fields) = result.as_object_mut() else {
        return result;
    };
    // A task (`resultType: "task"`) keeps its own.
    fields
        .entry("resultType")
        .or_insert_with(|| json!("complete"));
    let meta = fields.entry("_meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        meta.insert(META_SERVER_INFO.into(), server_info());
    }
    let hint = match method {
        "server/discover" | "tools/list" | "prompts/list" | "resources/templates/list" => {
            Some((300_000, "public"))
        }
        "resources/list" | "resources/read" => Some((0, "private")),
        _ => None,
    };
    if let Some((ttl, scope)) = hint {
        fields.insert("ttlMs".into(), json!(ttl));
        fields.insert("cacheScope".into(), json!(scope));
    }
    result
}

/// `server/discover`: the versions, capabilities and instructions a modern client needs, with no session.
pub fn discover(capabilities: Value, instructions: &str) -> Value {
    json!({
        "supportedVersions": supported_versions(),
        "capabilities": capabilities,
        "instructions": instructions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, params: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    }

    fn modern_meta() -> Value {
        json!({META_VERSION: VERSION, META_CAPABILITIES: {}})
    }

    const HEADERS: Headers<'static> = Headers {
        protocol_version: Some(VERSION),
        method: Some("tools/call"),
        name: Some("job_status"),
    };

    #[test]
    fn a_request_whose_headers_agree_with_its_body_is_admitted() {
        let call = request(
            "tools/call",
            json!({"name": "job_status", "_meta": modern_meta()}),
        );
        assert_eq!(admit(&call, "tools/call", &HEADERS), Ok(()));
        let encoded = Headers {
            name: Some("=?base64?am9iX3N0YXR1cw==?="),
            ..HEADERS
        };
        assert_eq!(
            admit(&call, "tools/call", &encoded),
            Ok(()),
            "base64 names decode"
        );
    }

    #[test]
    fn each_disagreement_is_named_with_its_code() {
        let call = request(
            "tools/call",
            json!({"name": "job_status", "_meta": modern_meta()}),
        );
        let code = |headers: Headers<'_>| admit(&call, "tools/call", &headers).map_err(|e| e.code);
        assert_eq!(
            code(Headers {
                name: Some("cancel_job"),
                ..HEADERS
            }),
            Err(HEADER_MISMATCH)
        );
        assert_eq!(
            code(Headers {
                name: None,
                ..HEADERS
            }),
            Err(HEADER_MISMATCH)
        );
        assert_eq!(
            code(Headers {
                method: Some("tools/list"),
                ..HEADERS
            }),
            Err(HEADER_MISMATCH)
        );
        assert_eq!(
            code(Headers {
                protocol_version: None,
                ..HEADERS
            }),
            Err(HEADER_MISMATCH)
        );
        assert_eq!(
            code(Headers {
                name: Some("=?base64?!!?="),
                ..HEADERS
            }),
            Err(HEADER_MISMATCH)
        );

        let old = request(
            "tools/call",
            json!({"name": "job_status", "_meta": {META_VERSION: "2030-01-01", META_CAPABILITIES: {}}}),
        );
        let refused = admit(&old, "tools/call", &HEADERS).expect_err("unsupported");
        assert_eq!(refused.code, UNSUPPORTED_VERSION);
        assert_eq!(refused.data.expect("data")["supported"][0], VERSION);

        let bare = request(
            "tools/call",
            json!({"name": "job_status", "_meta": {META_VERSION: VERSION}}),
        );
        let refused = admit(&bare, "tools/call", &HEADERS).expect_err("no capabilities");
        assert_eq!(refused.code, jsonrpc::INVALID_PARAMS);
        assert!(
            refused.message.contains(META_CAPABILITIES),
            "{}",
            refused.message
        );
    }

    #[test]
    fn results_say_complete_and_lists_carry_cache_hints() {
        let listed = complete("tools/list", json!({"tools": []}));
        assert_eq!(listed["resultType"], "complete");
        assert_eq!(listed["cacheScope"], "public");
        assert_eq!(listed["_meta"][META_SERVER_INFO]["name"], "mcp-cockpit");
        let icon = listed["_meta"][META_SERVER_INFO]["icons"][0]["src"]
            .as_str()
            .expect("icon");
        assert!(icon.starts_with("data:image/svg+xml;base64,"), "{icon}");
        let read = complete("resources/read", json!({"contents": []}));
        assert_eq!(
            (read["ttlMs"].as_u64(), read["cacheScope"].as_str()),
            (Some(0), Some("private"))
        );
        let called = complete("tools/call", json!({"content": []}));
        assert!(called.get("ttlMs").is_none());
    }
}
