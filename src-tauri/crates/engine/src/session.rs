//! Which conversation a request belongs to, and when a conversation ends.
//!
//! Clients may name their session (`X-Session-Id`); most agents do not, so a
//! stable key is derived from the conversation itself. A session ends when the
//! client says so or after a quiet period; the tracker reports both so the
//! store and the event bus learn about them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where a session key came from, stored with the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    Header,
    Body,
    /// An agent's own session id found in the conversation (OpenClaw's `sessionId=`).
    Agent,
    /// A hash of the conversation's opening (system prompt and first user message).
    Conversation,
    /// Nothing to go on: the request is a session of its own.
    Request,
}

impl KeySource {
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Header => "header",
            KeySource::Body => "body",
            KeySource::Agent => "agent",
            KeySource::Conversation => "conversation",
            KeySource::Request => "request",
        }
    }
}

/// The session a request was assigned to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionTurn {
    pub session_id: String,
    pub key: String,
    pub key_source: KeySource,
    pub turn_index: u32,
    /// This request opened the session.
    pub is_new: bool,
}

/// A session that has ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndedSession {
    pub session_id: String,
    pub key: String,
}

struct LiveSession {
    id: String,
    next_turn: u32,
    last_seen: Instant,
}

pub struct SessionTracker {
    live: Mutex<HashMap<String, LiveSession>>,
    idle_timeout: Duration,
}

impl SessionTracker {
    pub fn new(idle_timeout: Duration) -> SessionTracker {
        SessionTracker {
            live: Mutex::new(HashMap::new()),
            idle_timeout,
        }
    }

    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Assigns a request to its session, opening one if needed. A session
    /// that has been quiet past the timeout is replaced by a new one even if
    /// the sweeper has not reached it yet; the old one is returned as ended.
    pub fn observe(
        &self,
        key: &str,
        source: KeySource,
        now: Instant,
    ) -> (SessionTurn, Option<EndedSession>) {
        let mut live = self.lock();
        let mut expired = None;
        if let Some(session) = live.get(key) {
            if now.saturating_duration_since(session.last_seen) >= self.idle_timeout {
                expired = live.remove(key).map(|s| EndedSession {
                    session_id: s.id,
                    key: key.to_string(),
                });
            }
        }
        let is_new = !live.contains_key(key);
        let session = live.entry(key.to_string()).or_insert_with(|| LiveSession {
            id: new_session_id(),
            next_turn: 0,
            last_seen: now,
        });
        session.last_seen = now;
        let turn_index = session.next_turn;
        session.next_turn += 1;
        let turn = SessionTurn {
            session_id: session.id.clone(),
            key: key.to_string(),
            key_source: source,
            turn_index,
            is_new,
        };
        (turn, expired)
    }

    /// Ends a session now (the client sent `X-Session-Done`).
    pub fn end(&self, key: &str) -> Option<EndedSession> {
        self.lock().remove(key).map(|s| EndedSession {
            session_id: s.id,
            key: key.to_string(),
        })
    }

    /// Ends every session quiet for longer than the timeout.
    pub fn sweep(&self, now: Instant) -> Vec<EndedSession> {
        let mut live = self.lock();
        let idle: Vec<String> = live
            .iter()
            .filter(|(_, s)| now.saturating_duration_since(s.last_seen) >= self.idle_timeout)
            .map(|(k, _)| k.clone())
            .collect();
        idle.into_iter()
            .filter_map(|key| {
                live.remove(&key).map(|s| EndedSession {
                    session_id: s.id,
                    key,
                })
            })
            .collect()
    }

    /// Ends everything (shutdown).
    pub fn drain(&self) -> Vec<EndedSession> {
        self.lock()
            .drain()
            .map(|(key, s)| EndedSession {
                session_id: s.id,
                key,
            })
            .collect()
    }

    pub fn live_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, LiveSession>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every update is a single insert or remove), so poisoning is ignored.
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Time-ordered ids (UUIDv7), so `sessions list` sorts naturally.
pub fn new_session_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_one_session_with_counted_turns() {
        let tracker = SessionTracker::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let (a, _) = tracker.observe("k", KeySource::Header, t0);
        let (b, _) = tracker.observe("k", KeySource::Header, t0 + Duration::from_secs(5));
        let (c, _) = tracker.observe("other", KeySource::Conversation, t0);
        assert!(a.is_new && !b.is_new && c.is_new);
        assert_eq!(a.session_id, b.session_id);
        assert_ne!(a.session_id, c.session_id);
        assert_eq!((a.turn_index, b.turn_index), (0, 1));
    }

    #[test]
    fn quiet_sessions_end_and_the_key_starts_a_new_one() {
        let tracker = SessionTracker::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let (first, _) = tracker.observe("k", KeySource::Header, t0);
        tracker.observe("busy", KeySource::Header, t0 + Duration::from_secs(50));
        let ended = tracker.sweep(t0 + Duration::from_secs(61));
        assert_eq!(
            ended,
            vec![EndedSession {
                session_id: first.session_id.clone(),
                key: "k".into()
            }]
        );
        let (second, expired) =
            tracker.observe("k", KeySource::Header, t0 + Duration::from_secs(62));
        assert!(second.is_new && expired.is_none());
        assert_ne!(first.session_id, second.session_id);
        assert_eq!(tracker.live_count(), 2);
    }

    #[test]
    fn a_late_request_replaces_an_expired_session_before_the_sweep() {
        let tracker = SessionTracker::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let (first, _) = tracker.observe("k", KeySource::Header, t0);
        let (second, expired) =
            tracker.observe("k", KeySource::Header, t0 + Duration::from_secs(11));
        assert_eq!(expired.map(|e| e.session_id), Some(first.session_id));
        assert!(second.is_new);
    }

    #[test]
    fn done_ends_the_session() {
        let tracker = SessionTracker::new(Duration::from_secs(60));
        let (turn, _) = tracker.observe("k", KeySource::Header, Instant::now());
        assert_eq!(
            tracker.end("k").map(|e| e.session_id),
            Some(turn.session_id)
        );
        assert_eq!(tracker.end("k"), None);
    }
}
