//! The envelope on the queue and its `status` block (upstream §5).
//!
//! Fields the sidecar does not interpret are kept verbatim (`extra`), so an
//! envelope passes through this sidecar without losing data. The payload is
//! never looked into: it stays the raw JSON text it arrived as ([`Payload`]),
//! copied once on parse and written back as is, so its size and shape cost no
//! tree of values per message.

use std::fmt;
use std::time::SystemTime;

use asya_contract::headers::STATUS_DEADLINE_AT;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A payload as the raw JSON text it arrived in.
pub type Payload = Box<RawValue>;

/// `value` as a [`Payload`] (for payloads the sidecar builds itself).
pub fn payload_of(value: &impl Serialize) -> Payload {
    // Serialising a Value-like payload cannot fail; `null` is the harmless fallback.
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// Header holding the RFC3339 time of the first attempt at the current actor.
pub const FIRST_ATTEMPT_HEADER: &str = "x-asya-first-attempt";

/// `{prev, curr, next}`. Upstream's legacy `{actors, current}` (envelopes still in flight
/// from before a migration) is read too and converted: `actors[current]` is `curr`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RouteWire")]
pub struct Route {
    #[serde(default)]
    pub prev: Vec<String>,
    #[serde(default)]
    pub curr: String,
    #[serde(default)]
    pub next: Vec<String>,
}

/// A route as it may arrive: the current shape, or the legacy one.
#[derive(Deserialize)]
struct RouteWire {
    prev: Option<Vec<String>>,
    curr: Option<String>,
    next: Option<Vec<String>>,
    actors: Option<Vec<String>>,
    current: Option<Value>,
}

impl TryFrom<RouteWire> for Route {
    type Error = String;

    fn try_from(w: RouteWire) -> Result<Route, String> {
        let modern = w.prev.is_some() || w.curr.is_some() || w.next.is_some();
        let Some(actors) = w.actors.filter(|_| !modern) else {
            return Ok(Route {
                prev: w.prev.unwrap_or_default(),
                curr: w.curr.unwrap_or_default(),
                next: w.next.unwrap_or_default(),
            });
        };
        let current = match w.current {
            None => 0,
            Some(v) => v
                .as_u64()
                .and_then(|c| usize::try_from(c).ok())
                .filter(|c| *c <= actors.len())
                .ok_or_else(|| {
                    format!(
                        "legacy route.current must be an integer from 0 to {} (an index into \
                         route.actors), got {v}",
                        actors.len()
                    )
                })?,
        };
        // `current == len(actors)`: the route is exhausted (upstream's end of the line).
        Ok(Route {
            prev: actors[..current].to_vec(),
            curr: actors.get(current).cloned().unwrap_or_default(),
            next: actors
                .get(current + 1..)
                .map(<[String]>::to_vec)
                .unwrap_or_default(),
        })
    }
}

impl Route {
    /// `prev += [curr]`, `curr = targets[0]`, `next = targets[1..]`.
    pub fn shift_to(&self, targets: &[String]) -> Route {
        let mut prev = self.prev.clone();
        if !self.curr.is_empty() {
            prev.push(self.curr.clone());
        }
        Route {
            prev,
            curr: targets.first().cloned().unwrap_or_default(),
            next: targets.iter().skip(1).cloned().collect(),
        }
    }
}

/// One message.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    pub route: Route,
    pub headers: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Map<String, Value>>,
    pub payload: Payload,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

// By hand rather than derived: `#[serde(flatten)]` buffers every field, which a raw payload
// cannot go through, and costs a copy of the whole envelope.
impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an envelope object {id, route, payload, ...}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let (mut id, mut parent_id, mut route, mut headers, mut status, mut payload) =
            (None, None, None, None, None, None);
        let mut extra = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "id" => id = Some(map.next_value::<String>()?),
                "parent_id" => parent_id = map.next_value::<Option<String>>()?,
                "route" => route = Some(map.next_value::<Route>()?),
                "headers" => headers = map.next_value::<Option<Map<String, Value>>>()?,
                "status" => status = map.next_value::<Option<Map<String, Value>>>()?,
                "payload" => payload = Some(map.next_value::<Payload>()?),
                _ => {
                    extra.insert(key, map.next_value::<Value>()?);
                }
            }
        }
        Ok(Envelope {
            id: id.ok_or_else(|| de::Error::missing_field("id"))?,
            parent_id,
            route: route.ok_or_else(|| de::Error::missing_field("route"))?,
            headers: headers.unwrap_or_default(),
            status,
            payload: payload.ok_or_else(|| de::Error::missing_field("payload"))?,
            extra,
        })
    }
}

/// Why a body is not an envelope.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl Envelope {
    /// Parses and validates a body (`id` non-empty, `route` and `payload` present).
    pub fn parse(body: &[u8]) -> Result<Self, ParseError> {
        let env: Envelope = serde_json::from_slice(body)
            .map_err(|e| ParseError(format!("not an envelope: {e}")))?;
        if env.id.trim().is_empty() {
            return Err(ParseError("envelope id is empty".into()));
        }
        Ok(env)
    }

    /// The JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising maps of Values and raw JSON cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The status block, created when missing.
    pub fn status_mut(&mut self) -> &mut Map<String, Value> {
        self.status.get_or_insert_with(Map::new)
    }

    /// `status.<key>` as a string.
    /// `status.deadline_at` (the pipeline's deadline, [`STATUS_DEADLINE_AT`]), when the
    /// envelope carries a readable one.
    pub fn deadline_at(&self) -> Option<SystemTime> {
        self.status_str(STATUS_DEADLINE_AT).and_then(parse_rfc3339)
    }

    pub fn status_str(&self, key: &str) -> Option<&str> {
        self.status.as_ref()?.get(key)?.as_str()
    }

    /// `status.attempt` (1 when absent).
    pub fn attempt(&self) -> u32 {
        self.status
            .as_ref()
            .and_then(|s| s.get("attempt"))
            .and_then(Value::as_u64)
            .map(|a| a.clamp(1, u64::from(u32::MAX)) as u32)
            .unwrap_or(1)
    }

    /// Sets phase, reason (if any), actor and `updated_at`; stamps `created_at` once.
    pub fn stamp(&mut self, phase: &str, reason: Option<&str>, actor: &str) {
        let now = now_rfc3339();
        let s = self.status_mut();
        set(s, "phase", phase.into());
        match reason {
            Some(r) => set(s, "reason", r.into()),
            None => {
                s.remove("reason");
            }
        };
        set(s, "actor", actor.into());
        if !s.contains_key("created_at") {
            s.insert("created_at".into(), now.clone().into());
        }
        set(s, "updated_at", now.into());
    }

    /// Records a structured error in `status.error`.
    pub fn set_error(&mut self, error: Value) {
        self.status_mut().insert("error".into(), error);
    }
}

/// `map[key] = value`, overwriting in place when the key is there (the usual case for a
/// status block another actor stamped): no key string is allocated then. The key keeps
/// its position either way, as with `insert`.
pub fn set(map: &mut Map<String, Value>, key: &str, value: Value) {
    match map.get_mut(key) {
        Some(slot) => *slot = value,
        None => {
            map.insert(key.to_string(), value);
        }
    }
}

/// Now as whole-second RFC3339 UTC (`2026-11-23T20:00:00Z`).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Parses an RFC3339 timestamp.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).ok()
}

/// A structured error `{type, mro, message, traceback}` made by the sidecar.
pub fn sidecar_error(kind: &str, message: impl Into<String>) -> Value {
    serde_json::json!({
        "type": kind,
        "mro": [],
        "message": message.into(),
        "traceback": "",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_passes_through_byte_for_byte() {
        let body = br#"{"id":"1","route":{"prev":[],"curr":"a","next":[]},"payload":{"z": 1,  "a":[1.50, "\u00e9"]}}"#;
        let env = Envelope::parse(body).unwrap();
        assert_eq!(env.payload.get(), r#"{"z": 1,  "a":[1.50, "\u00e9"]}"#);
        let back = String::from_utf8(env.to_bytes()).unwrap();
        assert!(
            back.contains(r#""payload":{"z": 1,  "a":[1.50, "\u00e9"]}"#),
            "{back}"
        );
        // Key order of the known fields and the extras is kept too.
        assert!(back.starts_with(r#"{"id":"1","route":"#), "{back}");
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let body =
            br#"{"id":"1","route":{"prev":[],"curr":"a","next":[]},"payload":1,"trace":{"x":1}}"#;
        let env = Envelope::parse(body).unwrap();
        let back: Value = serde_json::from_slice(&env.to_bytes()).unwrap();
        assert_eq!(back["trace"]["x"], 1);
    }

    #[test]
    fn missing_payload_or_empty_id_is_a_parse_error() {
        assert!(Envelope::parse(br#"{"id":"1","route":{"curr":"a"}}"#).is_err());
        assert!(Envelope::parse(br#"{"id":"","route":{"curr":"a"},"payload":1}"#).is_err());
        assert!(Envelope::parse(b"not json").is_err());
    }

    #[test]
    fn legacy_routes_are_converted() {
        let body = br#"{"id":"1","route":{"actors":["a","b","c"],"current":1},"payload":1}"#;
        let env = Envelope::parse(body).unwrap();
        assert_eq!(env.route.prev, vec!["a"]);
        assert_eq!(env.route.curr, "b");
        assert_eq!(env.route.next, vec!["c"]);
        // Written back in the current shape only.
        let back: Value = serde_json::from_slice(&env.to_bytes()).unwrap();
        assert_eq!(
            back["route"],
            serde_json::json!({"prev": ["a"], "curr": "b", "next": ["c"]})
        );
        // `current` defaults to 0; `current == len` is an exhausted route.
        let r: Route = serde_json::from_str(r#"{"actors":["a","b"]}"#).unwrap();
        assert_eq!((r.curr.as_str(), r.next.len()), ("a", 1));
        let r: Route = serde_json::from_str(r#"{"actors":["a","b"],"current":2}"#).unwrap();
        assert_eq!((r.prev.len(), r.curr.as_str()), (2, ""));
    }

    #[test]
    fn a_bad_legacy_route_is_a_parse_error_that_says_why() {
        for bad in [
            r#"{"actors":["a"],"current":5}"#,
            r#"{"actors":["a"],"current":-1}"#,
            r#"{"actors":["a"],"current":"x"}"#,
        ] {
            let body = format!(r#"{{"id":"1","route":{bad},"payload":1}}"#);
            let err = Envelope::parse(body.as_bytes()).unwrap_err().to_string();
            assert!(err.contains("legacy route.current"), "{err}");
        }
        let body = br#"{"id":"1","route":{"actors":"a"},"payload":1}"#;
        assert!(Envelope::parse(body).is_err());
    }

    #[test]
    fn route_shift_moves_curr_into_prev() {
        let r = Route {
            prev: vec!["a".into()],
            curr: "b".into(),
            next: vec!["c".into()],
        };
        let s = r.shift_to(&["h1".into(), "h2".into()]);
        assert_eq!(s.prev, vec!["a", "b"]);
        assert_eq!(s.curr, "h1");
        assert_eq!(s.next, vec!["h2"]);
    }

    #[test]
    fn timestamps_are_whole_seconds() {
        let t = now_rfc3339();
        assert!(t.ends_with('Z') && !t.contains('.'), "{t}");
        assert!(parse_rfc3339(&t).is_some());
    }

    #[test]
    fn set_overwrites_in_place_and_appends_a_new_key() {
        let mut m: Map<String, Value> =
            serde_json::from_str(r#"{"phase":"pending","actor":"a","x":1}"#).unwrap();
        set(&mut m, "actor", "b".into());
        set(&mut m, "updated_at", "t".into());
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"phase":"pending","actor":"b","x":1,"updated_at":"t"}"#
        );
    }
}
