//! The Prometheus SLO source (SPEC §8): instant queries `POST /api/v1/query` (form body, `time` pinned to the
//! check's due time, a `timeout` below the canary's interval) over awc with rustls, a hard client timeout and
//! a response size limit. Every outcome maps to a finite value or a no-decision `reasonCode`; nothing the
//! server or the network does is an error that reaches the canary.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use awc::error::{PayloadError, SendRequestError};
use futures_util::future::{self, LocalBoxFuture, Shared};
use futures_util::FutureExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};

use super::{Gathered, RawAnswers, Reachability, SloQuery, SloSource};
use super::{Observation, ReasonCode, Sample};
use crate::clock;
use crate::config::{ConfigError, PrometheusSettings};

/// Longest a readiness probe of Prometheus may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How the error rate is asked for.
enum ErrorQuery {
    /// Errors in the window, judged out of the requests with a confidence interval.
    Counts(String),
    /// A user's ratio query (`PROM_QUERY_ERR`), judged as a point value.
    Ratio(String),
}

pub struct PrometheusSource {
    endpoint: String,
    ready: String,
    token: Option<String>,
    latency: String,
    errors: ErrorQuery,
    requests: String,
    freshness: String,
    timeout: Duration,
    max_bytes: usize,
    client: awc::Client,
    probe_client: awc::Client,
    /// Queries being asked now, by (rendered query, time in ms): a second canary asking the very same
    /// question at the same due time (the freshness query of one gate, say) shares the first one's answer.
    in_flight: Rc<RefCell<HashMap<(String, i64), Asked>>>,
}

/// One query's value or reason, and the raw text behind it.
type Answer = (Sample, String);
/// An answer on its way, for every check that asks the same question.
type Asked = Shared<LocalBoxFuture<'static, Answer>>;

/// What `PROM_BEARER` holds: the token, with or without the scheme.
fn token_of(bearer: &str) -> Option<String> {
    let bearer = bearer.trim();
    let token = match bearer.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => bearer,
    };
    (!token.is_empty()).then(|| token.to_string())
}

fn tls_config(ca_file: &str) -> Result<rustls::ClientConfig, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    // The system's roots (unreadable ones are skipped), then the operator's own CA.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if !ca_file.is_empty() {
        let bad = |problem: String| ConfigError::new("COCKPIT_PROM_CA_FILE", problem);
        let certs = CertificateDer::pem_file_iter(ca_file)
            .map_err(|e| bad(format!("cannot read {ca_file}: {e}")))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("{ca_file} is not PEM certificates: {e}")))?;
        if certs.is_empty() {
            return Err(bad(format!("{ca_file} holds no certificate")));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| bad(format!("{ca_file}: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::new("PROM_URL", format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A Prometheus source with its settings checked and its TLS configuration loaded, ready to be connected on
/// the thread that will run it (awc clients are not `Send`).
pub struct PrometheusSpec {
    settings: PrometheusSettings,
    tls: Arc<rustls::ClientConfig>,
}

impl PrometheusSpec {
    pub fn prepare(s: &PrometheusSettings) -> Result<Self, ConfigError> {
        Ok(Self {
            settings: s.clone(),
            tls: Arc::new(tls_config(&s.ca_file)?),
        })
    }

    pub fn connect(self) -> PrometheusSource {
        let s = self.settings;
        let base = s.url.trim().trim_end_matches('/');
        let timeout = s.timeout_seconds;
        let tls = self.tls;
        let client_with = |limit: Duration| {
            awc::Client::builder()
                .connector(
                    awc::Connector::new()
                        .rustls_0_23(tls.clone())
                        .timeout(limit),
                )
                .timeout(limit)
                .disable_redirects()
                .finish()
        };
        PrometheusSource {
            endpoint: format!("{base}/api/v1/query"),
            ready: format!("{base}/-/ready"),
            token: token_of(secrecy::ExposeSecret::expose_secret(&s.bearer)),
            latency: s.latency_query.clone(),
            errors: if s.error_rate_query.trim().is_empty() {
                ErrorQuery::Counts(s.errors_query.clone())
            } else {
                ErrorQuery::Ratio(s.error_rate_query.clone())
            },
            requests: s.requests_query.clone(),
            freshness: s.freshness_query.clone(),
            timeout,
            max_bytes: s.max_response_bytes,
            client: client_with(timeout),
            // Its own connections: a readiness probe never waits behind, or holds up, a canary's check.
            probe_client: client_with(timeout.min(PROBE_TIMEOUT)),
            in_flight: Rc::default(),
        }
    }
}

/// The reasons a query can come back without a value: their series exist at 0 from the start.
pub fn prime_metrics() {
    for reason in ReasonCode::NO_VALUE {
        crate::metrics::METRICS
            .prometheus_errors
            .with_label_values(&[reason.as_str()]);
    }
}

/// Query metrics: latency by outcome, no-value reasons, and whether Prometheus answered at all.
fn record_query(sample: Sample, took: Duration) {
    let metrics = &crate::metrics::METRICS;
    let outcome = match sample {
        Sample::Value(_) => "value",
        Sample::Missing(reason) => {
            metrics
                .prometheus_errors
                .with_label_values(&[reason.as_str()])
                .inc();
            "no_value"
        }
    };
    metrics
        .prometheus_queries
        .with_label_values(&[outcome])
        .observe(took.as_secs_f64());
    let unreachable = matches!(
        sample,
        Sample::Missing(ReasonCode::HttpError | ReasonCode::QueryTimeout)
    );
    metrics.prometheus_up.set(i64::from(!unreachable));
}

/// Substitutes the validated `$__gate`, `$__window`, `$__since` and `$__model`, and nothing else.
pub fn render(template: &str, query: &SloQuery) -> String {
    template
        .replace("$__gate", &query.gate)
        .replace("$__window", &query.window)
        .replace("$__since", &query.since)
        .replace("$__model", &query.model_id)
}

/// What the error-rate warning of `start_canary` says when a ratio query is configured.
pub const RATIO_WARNING: &str = "PROM_QUERY_ERR is set: the error rate is a ratio, judged as a point value \
    with no confidence interval, so a handful of requests can pass or fail a check; unset it to judge error \
    counts (COCKPIT_PROM_QUERY_ERRORS out of COCKPIT_PROM_QUERY_REQ)";

/// A sample's text as Prometheus writes it (`"0.25"`, `"NaN"`, `"+Inf"`).
fn sample_of(text: &str) -> Sample {
    match text.trim() {
        "NaN" => Sample::Missing(ReasonCode::Nan),
        "+Inf" | "-Inf" | "Inf" => Sample::Missing(ReasonCode::Inf),
        other => match other.parse::<f64>() {
            Ok(v) if v.is_finite() => Sample::Value(v),
            Ok(v) if v.is_nan() => Sample::Missing(ReasonCode::Nan),
            Ok(_) => Sample::Missing(ReasonCode::Inf),
            Err(_) => Sample::Missing(ReasonCode::QueryError),
        },
    }
}

/// Whether a body is Prometheus's JSON envelope (`{"status": …}`), whatever the HTTP status it came with.
fn is_envelope(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|json| json["status"].is_string())
}

/// Longest raw text stored with a check, in characters.
const MAX_RAW_CHARS: usize = 500;

/// Maps an instant-query response body to a value or a reason, with the raw text to store (bounded: a
/// response can hold a megabyte in one string).
pub fn classify(body: &[u8]) -> (Sample, String) {
    let (sample, raw) = judge(body);
    let raw = match raw.char_indices().nth(MAX_RAW_CHARS) {
        Some((cut, _)) => format!("{}…", &raw[..cut]),
        None => raw,
    };
    (sample, raw)
}

fn judge(body: &[u8]) -> (Sample, String) {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return (
            Sample::Missing(ReasonCode::QueryError),
            "response is not JSON".into(),
        );
    };
    if json["status"] != "success" {
        // Prometheus's own error envelope (it comes with HTTP 400, 422 or 503): a query that timed out or was
        // cancelled is a timeout, anything else (bad_data, execution, …) an error in the query.
        let error = json["error"].as_str().unwrap_or("status is not success");
        let error_type = json["errorType"].as_str().unwrap_or("");
        let reason = match error_type {
            "timeout" | "canceled" => ReasonCode::QueryTimeout,
            _ => ReasonCode::QueryError,
        };
        return (Sample::Missing(reason), format!("{error_type}: {error}"));
    }
    let data = &json["data"];
    let value_text = |pair: &Value| pair.get(1).and_then(Value::as_str).map(str::to_string);
    let text = match data["resultType"].as_str() {
        Some("vector") => match data["result"].as_array().map(Vec::as_slice) {
            Some([]) => return (Sample::Missing(ReasonCode::NoData), "empty vector".into()),
            Some([one]) => value_text(&one["value"]),
            Some(many) => {
                return (
                    Sample::Missing(ReasonCode::MultiSeries),
                    format!("{} series", many.len()),
                )
            }
            None => None,
        },
        Some("scalar") => value_text(&data["result"]),
        Some(other) => {
            return (
                Sample::Missing(ReasonCode::QueryError),
                format!("{other} result, not a vector or scalar"),
            )
        }
        None => None,
    };
    match text {
        Some(text) => (sample_of(&text), text),
        None => (
            Sample::Missing(ReasonCode::QueryError),
            "malformed result".into(),
        ),
    }
}

impl PrometheusSource {
    /// One instant query, sent once however many checks ask it at the same time.
    fn ask(&self, promql: String, at: f64, budget: Duration) -> LocalBoxFuture<'static, Answer> {
        let key = (promql.clone(), (at * 1000.0).round() as i64);
        if let Some(asked) = self.in_flight.borrow().get(&key) {
            return Box::pin(asked.clone());
        }
        let answer = self.instant(promql, at, budget);
        let (in_flight, done) = (self.in_flight.clone(), key.clone());
        let shared = async move {
            let answer = answer.await;
            in_flight.borrow_mut().remove(&done);
            answer
        }
        .boxed_local()
        .shared();
        self.in_flight.borrow_mut().insert(key, shared.clone());
        Box::pin(shared)
    }

    /// One instant query: its value or reason, and the raw text.
    fn instant(
        &self,
        promql: String,
        at: f64,
        budget: Duration,
    ) -> LocalBoxFuture<'static, (Sample, String)> {
        let limit = self.timeout.min(budget);
        // Prometheus gives up a little before we do, so its own timeout error wins the race.
        let server_timeout = limit.mul_f64(0.9).max(Duration::from_millis(1));
        let form = [
            ("query", promql),
            ("time", format!("{at:.3}")),
            ("timeout", format!("{}ms", server_timeout.as_millis())),
        ];
        let mut request = self.client.post(&self.endpoint).timeout(limit);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let max_bytes = self.max_bytes;
        Box::pin(async move {
            let exchange = async {
                let mut response = match request.send_form(&form).await {
                    Ok(response) => response,
                    Err(SendRequestError::Timeout) => {
                        return (
                            Sample::Missing(ReasonCode::QueryTimeout),
                            "timeout".to_string(),
                        )
                    }
                    Err(e) => return (Sample::Missing(ReasonCode::HttpError), e.to_string()),
                };
                // The body is read whatever the status: Prometheus sends its errors as JSON with 4xx/5xx.
                // Only a status whose body is not Prometheus's envelope is the transport's fault.
                let status = response.status();
                match response.body().limit(max_bytes).await {
                    Ok(body) if status.is_success() || is_envelope(&body) => classify(&body),
                    Ok(_) => (
                        Sample::Missing(ReasonCode::HttpError),
                        format!("HTTP {status}"),
                    ),
                    Err(PayloadError::Overflow) => (
                        Sample::Missing(ReasonCode::QueryError),
                        format!("response over {max_bytes} bytes"),
                    ),
                    Err(e) => (Sample::Missing(ReasonCode::HttpError), e.to_string()),
                }
            };
            // A hard bound on the whole exchange, body included.
            let started = std::time::Instant::now();
            let answer = tokio::time::timeout(limit, exchange).await.unwrap_or((
                Sample::Missing(ReasonCode::QueryTimeout),
                "timeout".to_string(),
            ));
            record_query(answer.0, started.elapsed());
            answer
        })
    }
}

impl SloSource for PrometheusSource {
    fn gather(&self, query: SloQuery) -> LocalBoxFuture<'static, Gathered> {
        let at = query.at.timestamp_millis() as f64 / 1000.0;
        let (ratio, error_template) = match &self.errors {
            ErrorQuery::Counts(template) => (false, template),
            ErrorQuery::Ratio(template) => (true, template),
        };
        let [latency, errors, requests, freshness] = [
            &self.latency,
            error_template,
            &self.requests,
            &self.freshness,
        ]
        .map(|template| render(template, &query));
        let recorded = json!({
            "source": "prometheus",
            "time": clock::rfc3339(query.at),
            "latency": latency,
            if ratio { "errorRate" } else { "errors" }: errors,
            "requests": requests,
            "newest": freshness,
        });
        let ask = |promql: &String| self.ask(promql.clone(), at, query.budget);
        let answers = future::join4(ask(&latency), ask(&errors), ask(&requests), ask(&freshness));
        Box::pin(async move {
            let ((l, latency), (e, errors), (r, requests), (n, newest)) = answers.await;
            let (error_rate, counted) = if ratio {
                (e, None)
            } else {
                (Observation::rate_of(e, r), Some(e))
            };
            let observation = super::out_of_range(Observation {
                latency_p95_ms: l,
                error_rate,
                errors: counted,
                requests: r,
                newest: n,
            });
            let raw = if ratio {
                RawAnswers {
                    latency,
                    error_rate: errors,
                    errors: String::new(),
                    requests,
                    newest,
                }
            } else {
                RawAnswers {
                    latency,
                    error_rate: super::raw_text(error_rate),
                    errors,
                    requests,
                    newest,
                }
            };
            Gathered {
                observation,
                raw,
                query: recorded,
            }
        })
    }

    fn probe(&self) -> LocalBoxFuture<'static, Reachability> {
        let mut request = self
            .probe_client
            .get(&self.ready)
            .timeout(self.timeout.min(PROBE_TIMEOUT));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        Box::pin(async move {
            let reachability = match request.send().await {
                Ok(response) if response.status().is_success() => Reachability::Up,
                Ok(response) => Reachability::Down(format!("HTTP {}", response.status())),
                Err(e) => Reachability::Down(e.to_string()),
            };
            crate::metrics::METRICS
                .prometheus_up
                .set(i64::from(reachability == Reachability::Up));
            reachability
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(body: &str) -> Sample {
        classify(body.as_bytes()).0
    }

    #[test]
    fn every_response_shape_maps_to_a_value_or_a_reason() {
        let vector = |v: &str| {
            format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1,"{v}"]}}]}}}}"#
            )
        };
        assert_eq!(reason(&vector("650.5")), Sample::Value(650.5));
        assert_eq!(reason(&vector("NaN")), Sample::Missing(ReasonCode::Nan));
        assert_eq!(reason(&vector("+Inf")), Sample::Missing(ReasonCode::Inf));
        assert_eq!(reason(&vector("-Inf")), Sample::Missing(ReasonCode::Inf));
        assert_eq!(
            reason(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#),
            Sample::Missing(ReasonCode::NoData)
        );
        assert_eq!(
            reason(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"0.02"]}}"#),
            Sample::Value(0.02)
        );
        assert_eq!(
            reason(
                r#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}"#
            ),
            Sample::Missing(ReasonCode::MultiSeries)
        );
        for bad in [
            r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
            r#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#,
            "<html>gateway</html>",
            r#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1]}]}}"#,
        ] {
            assert_eq!(
                reason(bad),
                Sample::Missing(ReasonCode::QueryError),
                "{bad}"
            );
        }
    }

    #[test]
    fn prometheus_error_envelopes_are_told_apart_by_their_error_type() {
        let envelope = |kind: &str| {
            format!(
                r#"{{"status":"error","errorType":"{kind}","error":"query processing would load too many samples"}}"#
            )
        };
        for (kind, reason) in [
            ("bad_data", ReasonCode::QueryError),
            ("execution", ReasonCode::QueryError),
            ("timeout", ReasonCode::QueryTimeout),
            ("canceled", ReasonCode::QueryTimeout),
        ] {
            let (sample, raw) = classify(envelope(kind).as_bytes());
            assert_eq!(sample, Sample::Missing(reason), "{kind}");
            assert!(
                raw.contains("too many samples"),
                "the message is kept: {raw}"
            );
        }
        assert!(is_envelope(envelope("bad_data").as_bytes()));
        assert!(!is_envelope(b"<html>502 Bad Gateway</html>"));
    }

    #[test]
    fn only_the_four_variables_are_substituted() {
        let query = SloQuery {
            model_id: "lukhas-v2".into(),
            gate: "production".into(),
            window: "300s".into(),
            since: "42s".into(),
            at: clock::now(),
            budget: Duration::from_secs(10),
        };
        assert_eq!(
            render(
                r#"rate(x{gate="$__gate",model="$__model"}[$__window]) > $__since $__other"#,
                &query
            ),
            r#"rate(x{gate="production",model="lukhas-v2"}[300s]) > 42s $__other"#
        );
    }

    #[test]
    fn the_bearer_token_is_taken_with_or_without_its_scheme() {
        assert_eq!(token_of("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(token_of("abc").as_deref(), Some("abc"));
        assert_eq!(token_of(""), None);
    }
}
