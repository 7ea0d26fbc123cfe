//! What a `GET /sse` asks for: `topic` (repeatable), `Last-Event-ID` (header, or `lastEventId` in the
//! query). A `key` parameter is the gate's business (EventSource cannot send headers).

use crate::events::{TopicError, TopicFilter};

pub struct SseRequest {
    pub filters: Vec<TopicFilter>,
    pub last_event_id: Option<i64>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RequestError {
    NoTopic,
    Topic(String),
    LastEventId(String),
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::NoTopic => f.write_str(
                "a `topic` is required, e.g. /sse?topic=job/* or /sse?topic=job/<jobId>",
            ),
            RequestError::Topic(message) => f.write_str(message),
            RequestError::LastEventId(value) => {
                write!(f, "Last-Event-ID must be a non-negative integer (an event's `id:`), got `{value}`")
            }
        }
    }
}

const MAX_TOPICS: usize = 32;

impl SseRequest {
    pub fn parse(query: &str, last_event_id_header: Option<&str>) -> Result<Self, RequestError> {
        let too_many = || RequestError::Topic(format!("at most {MAX_TOPICS} topics per stream"));
        let mut filters = Vec::new();
        let mut topics = 0;
        let mut last_event_id = last_event_id_header.map(str::to_string);
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "topic" => {
                    // Counted as they come, repeats included: thousands of topics cost nothing to refuse.
                    topics += 1;
                    if topics > MAX_TOPICS {
                        return Err(too_many());
                    }
                    let filter = TopicFilter::parse(&value)
                        .map_err(|e: TopicError| RequestError::Topic(e.to_string()))?;
                    if !filters.contains(&filter) {
                        filters.push(filter);
                    }
                }
                "lastEventId" if last_event_id.is_none() => {
                    last_event_id = Some(value.into_owned());
                }
                _ => {}
            }
        }
        if filters.is_empty() {
            return Err(RequestError::NoTopic);
        }
        let last_event_id = match last_event_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                text.parse::<i64>()
                    .ok()
                    .filter(|id| *id >= 0)
                    .ok_or_else(|| RequestError::LastEventId(text.chars().take(40).collect()))?,
            ),
        };
        Ok(Self {
            filters,
            last_event_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_repeat_and_the_header_wins_over_the_query_id() {
        let request = SseRequest::parse(
            "topic=job/*&topic=ops%2Fdeploys&topic=job/*&lastEventId=3&key=k",
            Some("9"),
        )
        .expect("valid");
        assert_eq!(request.filters.len(), 2);
        assert_eq!(request.last_event_id, Some(9));
    }

    #[test]
    fn the_topic_cap_counts_every_topic_given() {
        let at_cap = "topic=job/*&".repeat(MAX_TOPICS);
        assert!(SseRequest::parse(&at_cap, None).is_ok());
        let over = "topic=job/*&".repeat(4000);
        assert!(matches!(
            SseRequest::parse(&over, None),
            Err(RequestError::Topic(m)) if m.contains("at most 32")
        ));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        assert_eq!(
            SseRequest::parse("", None).err(),
            Some(RequestError::NoTopic)
        );
        assert!(matches!(
            SseRequest::parse("topic=job/a;b", None),
            Err(RequestError::Topic(_))
        ));
        assert!(matches!(
            SseRequest::parse("topic=*&lastEventId=-1", None),
            Err(RequestError::LastEventId(_))
        ));
    }
}
