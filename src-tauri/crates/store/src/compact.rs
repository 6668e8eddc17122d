//! Requests stored compactly: each distinct part is kept once in the `blobs` table, and a turn keeps a small tree of references to its parts.
//!
//! Agents resend the whole conversation with every request (OpenClaw: a 48 KB
//! system prompt, 10 KB of tools and the whole history, at every step of a
//! tool loop), so storing each request as sent grows with the square of a
//! session's length. Instead a request object is stored as a [`Node`]: small
//! members inline, each element of a large array (the messages, the tools)
//! and every other large member as a reference to a blob. Blobs are
//! content-addressed by the SHA-256 of their JSON text and written once, so a
//! request costs one reference per message plus whatever is new in it. Values
//! of [`SPLIT_MIN`] bytes and more (a long system message, an image) are
//! themselves stored as a node over their parts, long strings as
//! [`chunk::pieces`], so a prompt with other skills appended to it shares all
//! but its tail with the previous one.
//!
//! Nothing here knows a dialect: any JSON object is compacted. Anything else,
//! and any text that `serde_json` would not read back as a `Value`, is stored
//! verbatim and reads back exactly as it did before compaction existed.
//!
//! Parts keep the exact text the client sent (they are never re-serialised),
//! so the rebuilt value is the one `serde_json` parses from the original text:
//! the same numbers to the last bit, the same key order, the same outcome for
//! a duplicated key.
//!
//! Invariant: a blob always reads back as the JSON value whose text has its
//! hash, whichever encoding it was stored in. So a blob found by its hash can
//! be used wherever that text appears.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use rusqlite::{params, Connection, OptionalExtension};
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::chunk;

/// Members of fewer bytes stay inline: a reference would save little and
/// cost a row.
const INLINE_MAX: usize = 256;

/// Values of at least this many bytes are stored as a node over their parts
/// rather than whole, so that a large value that differs a little from one
/// already stored (a prompt with other skills appended) shares the rest.
const SPLIT_MIN: usize = 8 * 1024;

/// Longer chains of blob references than this mean a damaged file (a
/// cycle): a blob refers to another only for a value nested in it, and
/// `serde_json` limits a request's nesting to 128 levels.
const MAX_CHAIN: usize = 160;

/// How a stored text is read back: `turns.request_encoding` and
/// `blobs.encoding` hold [`Encoding::column_value`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// The text itself: for a turn, the request as sent (perhaps not even
    /// JSON); for a blob, a JSON value.
    Verbatim,
    /// A [`Node`] whose references are resolved to rebuild the value.
    Node,
}

impl Encoding {
    pub(crate) fn column_value(self) -> i64 {
        match self {
            Encoding::Verbatim => 0,
            Encoding::Node => 1,
        }
    }

    pub(crate) fn from_column(value: i64) -> Option<Encoding> {
        match value {
            0 => Some(Encoding::Verbatim),
            1 => Some(Encoding::Node),
            _ => None,
        }
    }
}

/// The stored shape of a compacted value. Every form is tagged, so no request
/// content can be taken for a reference. Numbers are `blobs.id`s.
#[derive(Debug, Serialize, Deserialize)]
enum Node<'a> {
    /// `{"v": …}`: the value itself, as sent.
    #[serde(rename = "v", borrow)]
    Inline(&'a RawValue),
    /// `{"b": 12}`: the value of blob 12.
    #[serde(rename = "b")]
    Blob(i64),
    /// `{"a": [12, 13]}`: an array of these blobs' values.
    #[serde(rename = "a")]
    Array(Vec<i64>),
    /// `{"o": [["key", node], …]}`: an object with these members, in order.
    #[serde(rename = "o")]
    Object(Vec<(String, Node<'a>)>),
    /// `{"s": [12, 13]}`: a string, these blobs' strings concatenated.
    #[serde(rename = "s")]
    Text(Vec<i64>),
}

// ---------------------------------------------------------------------------
// Writing

/// What to keep in `turns.request_json` for `request`, and its encoding.
///
/// Runs on the writer thread inside the turn's savepoint, so the blobs it adds
/// are undone with the turn should the turn fail.
pub(crate) fn encode_request<'t>(
    conn: &Connection,
    request: &'t str,
) -> rusqlite::Result<(Encoding, Cow<'t, str>)> {
    let verbatim = Ok((Encoding::Verbatim, Cow::Borrowed(request)));
    if !reads_back_as_object(request) {
        return verbatim;
    }
    let Some(members) = members(request) else {
        return verbatim;
    };
    let mut encoder = Encoder {
        conn,
        references: 0,
    };
    let mut nodes = Vec::with_capacity(members.len());
    for (key, value) in members {
        nodes.push((key, encoder.member(value)?));
    }
    // A small request with nothing worth a reference is smaller as it is.
    if encoder.references == 0 {
        return verbatim;
    }
    match serde_json::to_string(&Node::Object(nodes)) {
        Ok(text) => Ok((Encoding::Node, Cow::Owned(text))),
        Err(e) => {
            tracing::warn!(error = %e, "could not write a compact request; storing it as sent");
            verbatim
        }
    }
}

struct Encoder<'c> {
    conn: &'c Connection,
    /// Blob references made so far.
    references: usize,
}

impl Encoder<'_> {
    /// A member of an object: inline if small, an array of blobs if an
    /// array (a conversation's messages, a tool list), else one blob.
    fn member<'a>(&mut self, value: &'a RawValue) -> rusqlite::Result<Node<'a>> {
        let text = value.get();
        if text.len() < INLINE_MAX {
            return Ok(Node::Inline(value));
        }
        if text.starts_with('[') {
            if let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(text) {
                return Ok(Node::Array(self.store_all(items)?));
            }
        }
        Ok(Node::Blob(self.store(text, true)?))
    }

    fn store_all(&mut self, items: Vec<&RawValue>) -> rusqlite::Result<Vec<i64>> {
        items
            .into_iter()
            .map(|item| self.store(item.get(), true))
            .collect()
    }

    /// Stores the JSON `text` as a blob unless one with its hash exists, and
    /// returns the blob's id. With `may_split`, a long value is stored as a
    /// node over its parts.
    fn store(&mut self, text: &str, may_split: bool) -> rusqlite::Result<i64> {
        self.references += 1;
        let hash: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        if let Some(id) = find_blob(self.conn, &hash)? {
            return Ok(id);
        }
        if may_split && text.len() >= SPLIT_MIN {
            if let Some(node) = self.split(text)? {
                if let Ok(body) = serde_json::to_string(&node) {
                    return insert_blob(self.conn, &hash, Encoding::Node, &body);
                }
            }
        }
        insert_blob(self.conn, &hash, Encoding::Verbatim, text)
    }

    /// A long value as a node over its parts, or `None` to store it whole.
    /// Every part is strictly shorter than the value, so no node can refer
    /// to itself.
    fn split<'a>(&mut self, text: &'a str) -> rusqlite::Result<Option<Node<'a>>> {
        match text.as_bytes().first() {
            Some(b'{') => {
                let Some(members) = members(text) else {
                    return Ok(None);
                };
                let references = self.references;
                let mut nodes = Vec::with_capacity(members.len());
                for (key, value) in members {
                    nodes.push((key, self.member(value)?));
                }
                // Only small members: as a node it would just be longer.
                if self.references == references {
                    return Ok(None);
                }
                Ok(Some(Node::Object(nodes)))
            }
            Some(b'[') => match serde_json::from_str::<Vec<&RawValue>>(text) {
                Ok(items) => Ok(Some(Node::Array(self.store_all(items)?))),
                Err(_) => Ok(None),
            },
            Some(b'"') => {
                let Ok(string) = serde_json::from_str::<String>(text) else {
                    return Ok(None);
                };
                let pieces = chunk::pieces(&string);
                // One piece is the whole string: storing it as a piece of
                // itself would be a cycle.
                if pieces.len() < 2 {
                    return Ok(None);
                }
                let mut ids = Vec::with_capacity(pieces.len());
                for piece in pieces {
                    let Ok(piece) = serde_json::to_string(piece) else {
                        return Ok(None);
                    };
                    ids.push(self.store(&piece, false)?);
                }
                Ok(Some(Node::Text(ids)))
            }
            _ => Ok(None),
        }
    }
}

fn find_blob(conn: &Connection, hash: &[u8; 32]) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM blobs WHERE hash = ?1")?
        .query_row([&hash[..]], |row| row.get(0))
        .optional()
}

fn insert_blob(
    conn: &Connection,
    hash: &[u8; 32],
    encoding: Encoding,
    body: &str,
) -> rusqlite::Result<i64> {
    // The encoder looks a hash up before it stores it, so a conflict cannot
    // happen; were there one, the row already there reads back as the same
    // value (see the invariant above), so it is used rather than failing.
    let inserted = conn
        .prepare_cached(
            "INSERT INTO blobs (hash, encoding, body) VALUES (?1, ?2, ?3)
             ON CONFLICT (hash) DO NOTHING",
        )?
        .execute(params![&hash[..], encoding.column_value(), body])?;
    if inserted == 1 {
        return Ok(conn.last_insert_rowid());
    }
    find_blob(conn, hash)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

/// Whether `text` is a JSON object that `serde_json::from_str::<Value>`
/// accepts, the parse the reader uses for a verbatim request.
///
/// The raw-text parse the encoder splits with is more lenient (it has no
/// nesting limit and accepts lone surrogates and numbers beyond `f64`); a
/// request only it accepts must stay verbatim to read back as it always has.
fn reads_back_as_object(text: &str) -> bool {
    matches!(
        serde_json::from_str::<Checked>(text),
        Ok(Checked { object: true })
    )
}

/// A JSON value put through the same parse as `Value` (each string decoded,
/// each number converted, the same nesting limit) without building it.
struct Checked {
    object: bool,
}

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

const SCALAR: Checked = Checked { object: false };

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(SCALAR)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(SCALAR)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(SCALAR)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(SCALAR)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(SCALAR)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(SCALAR)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(SCALAR)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked { object: true })
    }
}

/// An object's members as raw text, in order, duplicated keys included: the
/// reader inserts them in the same order, which ends as parsing the whole
/// object does (the last value wins, in the first one's place).
fn members(text: &str) -> Option<Vec<(String, &RawValue)>> {
    serde_json::from_str::<Members<'_>>(text).ok().map(|m| m.0)
}

struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MembersVisitor)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(member) = map.next_entry::<String, &'de RawValue>()? {
            members.push(member);
        }
        Ok(Members(members))
    }
}

// ---------------------------------------------------------------------------
// Reading

/// Why a compact request could not be rebuilt.
#[derive(Debug)]
pub(crate) enum DecodeError {
    Query(rusqlite::Error),
    /// The stored text does not follow the format: a damaged file.
    Invalid(String),
}

impl From<rusqlite::Error> for DecodeError {
    fn from(e: rusqlite::Error) -> Self {
        DecodeError::Query(e)
    }
}

/// Rebuilds compact requests. It remembers every blob it has read, since
/// the turns of a session share most of theirs: use one per read.
pub(crate) struct Decoder<'c> {
    conn: &'c Connection,
    values: HashMap<i64, Value>,
}

impl<'c> Decoder<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        Decoder {
            conn,
            values: HashMap::new(),
        }
    }

    /// The value of a request stored in [`Encoding::Node`].
    pub(crate) fn request(&mut self, text: &str) -> Result<Value, DecodeError> {
        self.node_text(text, 0)
    }

    /// `chain` counts the blobs being read above this node.
    fn node_text(&mut self, text: &str, chain: usize) -> Result<Value, DecodeError> {
        let node: Node<'_> = serde_json::from_str(text)
            .map_err(|e| DecodeError::Invalid(format!("not a compact node: {e}")))?;
        self.node(node, chain)
    }

    fn node(&mut self, node: Node<'_>, chain: usize) -> Result<Value, DecodeError> {
        match node {
            Node::Inline(raw) => parse(raw.get()),
            Node::Blob(id) => self.blob(id, chain),
            Node::Array(ids) => ids
                .into_iter()
                .map(|id| self.blob(id, chain))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Node::Object(members) => {
                let mut map = Map::with_capacity(members.len());
                for (key, node) in members {
                    map.insert(key, self.node(node, chain)?);
                }
                Ok(Value::Object(map))
            }
            Node::Text(ids) => {
                let mut text = String::new();
                for id in ids {
                    match self.blob(id, chain)? {
                        Value::String(piece) => text.push_str(&piece),
                        _ => {
                            return Err(DecodeError::Invalid(format!(
                                "blob {id} is used as a piece of text but is not a string"
                            )))
                        }
                    }
                }
                Ok(Value::String(text))
            }
        }
    }

    fn blob(&mut self, id: i64, chain: usize) -> Result<Value, DecodeError> {
        if let Some(value) = self.values.get(&id) {
            return Ok(value.clone());
        }
        if chain >= MAX_CHAIN {
            return Err(DecodeError::Invalid(
                "blob references nest too deeply (a cycle?)".to_owned(),
            ));
        }
        let (encoding, body): (i64, String) = self
            .conn
            .prepare_cached("SELECT encoding, body FROM blobs WHERE id = ?1")?
            .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?
            .ok_or_else(|| DecodeError::Invalid(format!("blob {id} is missing")))?;
        let value = match Encoding::from_column(encoding) {
            Some(Encoding::Verbatim) => parse(&body)?,
            Some(Encoding::Node) => self.node_text(&body, chain + 1)?,
            None => {
                return Err(DecodeError::Invalid(format!(
                    "blob {id} has unknown encoding {encoding}"
                )))
            }
        };
        self.values.insert(id, value.clone());
        Ok(value)
    }
}

fn parse(text: &str) -> Result<Value, DecodeError> {
    serde_json::from_str(text).map_err(|e| DecodeError::Invalid(format!("stored JSON: {e}")))
}

#[cfg(test)]
#[path = "compact_tests.rs"]
mod tests;
