//! Prompt tokenization that only tokenizes what is new.
//!
//! An agent's conversation grows a few messages per request, so most of a
//! long prompt was tokenized before, often in a request a moment ago. A
//! Hugging Face tokenizer first cuts the text at its added tokens
//! (`<|im_start|>`, `<|im_end|>`, `<tool_call>`, …) and then normalizes,
//! pre-tokenizes and runs BPE on each stretch between them on its own. So
//! the ids of a prompt are the ids of its stretches, in order, with the
//! added tokens' ids between them, and a stretch seen before (the same
//! message, the same tools block) has the same ids again.
//!
//! [`SegmentCache`] cuts the rendered prompt where the tokenizer would
//! (leftmost-longest match over the added tokens), looks each stretch up
//! by its text (hashed, then compared in full, so a hit is always the same
//! text) and tokenizes only the stretches it has not seen. Unlike a prefix
//! cache per session, a change early in the prompt (the skills injected
//! into the system message) costs only that stretch, and the system
//! prompt and tools are shared by every session.
//!
//! It is exact only for tokenizers whose added tokens match on the raw
//! text with no stripping (`normalized`, `lstrip`, `rstrip` and
//! `single_word` all false, as in Qwen's, Llama's and Mistral's files);
//! [`SegmentCache::new`] refuses others, and also checks itself against
//! the plain encoder on a probe text before it is used.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::{PolicyError, PolicyTokenizer};

/// Stretches shorter than this are tokenized every time: a lookup would
/// cost about as much, and the cache stays small.
const MIN_CACHED_BYTES: usize = 32;

/// The added tokens as the tokenizer matches them: by first byte, longest
/// first.
#[derive(Debug)]
struct Splitter {
    by_first_byte: HashMap<u8, Vec<(String, u32)>>,
}

impl Splitter {
    /// `None` when an added token does not match on the raw text exactly.
    fn new(tokenizer: &PolicyTokenizer) -> Option<Splitter> {
        let inner = tokenizer.inner();
        if inner.get_added_vocabulary().get_encode_special_tokens() {
            return None;
        }
        let mut by_first_byte: HashMap<u8, Vec<(String, u32)>> = HashMap::new();
        for (id, token) in inner.get_added_tokens_decoder() {
            if token.normalized || token.lstrip || token.rstrip || token.single_word {
                return None;
            }
            let first = *token.content.as_bytes().first()?;
            by_first_byte
                .entry(first)
                .or_default()
                .push((token.content, id));
        }
        for candidates in by_first_byte.values_mut() {
            candidates.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        }
        Some(Splitter { by_first_byte })
    }

    /// The text as stretches and added tokens, in order.
    fn split<'t>(&self, text: &'t str) -> Vec<Piece<'t>> {
        let bytes = text.as_bytes();
        let mut pieces = Vec::new();
        let (mut start, mut at) = (0, 0);
        while at < bytes.len() {
            let found = self.by_first_byte.get(&bytes[at]).and_then(|candidates| {
                candidates
                    .iter()
                    .find(|(content, _)| bytes[at..].starts_with(content.as_bytes()))
            });
            match found {
                Some((content, id)) => {
                    if start < at {
                        pieces.push(Piece::Text(&text[start..at]));
                    }
                    pieces.push(Piece::Added(*id));
                    at += content.len();
                    start = at;
                }
                None => at += 1,
            }
        }
        if start < bytes.len() {
            pieces.push(Piece::Text(&text[start..]));
        }
        pieces
    }
}

enum Piece<'t> {
    Text(&'t str),
    Added(u32),
}

/// Two generations of stretches: new ones go to `current`; when it is
/// full it becomes `previous` and the old `previous` is dropped, so what
/// is still in use survives (a hit in `previous` moves it back).
#[derive(Debug, Default)]
struct Generations {
    current: HashMap<Box<str>, Arc<[u32]>>,
    previous: HashMap<Box<str>, Arc<[u32]>>,
    current_bytes: usize,
}

/// Token ids of prompt stretches, shared by all requests; see the module
/// documentation.
#[derive(Debug)]
pub struct SegmentCache {
    splitter: Splitter,
    generations: Mutex<Generations>,
    /// Bytes (text plus ids) one generation may hold.
    generation_bytes: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl SegmentCache {
    /// A cache holding up to about `2 × generation_bytes`, or `None` when
    /// `tokenizer` cannot be encoded stretch by stretch exactly.
    pub fn new(tokenizer: &PolicyTokenizer, generation_bytes: usize) -> Option<SegmentCache> {
        let cache = SegmentCache {
            splitter: Splitter::new(tokenizer)?,
            generations: Mutex::new(Generations::default()),
            generation_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        };
        // The probe puts every added token against letters, spaces,
        // newlines and the others, where a wrong cut would show.
        let mut probe = String::from("  Hello,\n world 12 ü ");
        let mut contents: Vec<&str> = cache
            .splitter
            .by_first_byte
            .values()
            .flatten()
            .map(|(content, _)| content.as_str())
            .collect();
        contents.sort_unstable();
        for (i, content) in contents.iter().take(64).enumerate() {
            probe.push_str(content);
            probe.push_str(["x", " y", "\n", "", "  \n z", "é"][i % 6]);
            probe.push_str(contents[(i + 1) % contents.len()]);
        }
        probe.push_str(" tail\n");
        let plain = tokenizer.encode(&probe).ok()?;
        let cut = cache.encode(tokenizer, &probe).ok()?;
        if plain != cut {
            tracing::warn!("this tokenizer does not encode stretch by stretch exactly; prompts are tokenized whole");
            return None;
        }
        cache.clear();
        Some(cache)
    }

    /// The ids of `text`, the same as [`PolicyTokenizer::encode`] gives.
    pub fn encode(&self, tokenizer: &PolicyTokenizer, text: &str) -> Result<Vec<u32>, PolicyError> {
        let pieces = self.splitter.split(text);
        let mut ids = Vec::with_capacity(text.len() / 3);
        let mut fresh: Vec<(&str, Arc<[u32]>)> = Vec::new();
        for piece in pieces {
            let stretch = match piece {
                Piece::Added(id) => {
                    ids.push(id);
                    continue;
                }
                Piece::Text(stretch) => stretch,
            };
            if stretch.len() < MIN_CACHED_BYTES {
                ids.extend(tokenizer.encode(stretch)?);
                continue;
            }
            match self.lookup(stretch) {
                Some(known) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    ids.extend_from_slice(&known);
                }
                None => {
                    self.misses.fetch_add(1, Ordering::Relaxed);
                    let new: Arc<[u32]> = tokenizer.encode(stretch)?.into();
                    ids.extend_from_slice(&new);
                    fresh.push((stretch, new));
                }
            }
        }
        if !fresh.is_empty() {
            self.store(fresh);
        }
        Ok(ids)
    }

    /// Stretches found and stretches tokenized since the start.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Forgets every stretch.
    pub fn clear(&self) {
        *self.lock() = Generations::default();
        self.hits.store(0, Ordering::Relaxed);
        self.misses.store(0, Ordering::Relaxed);
    }

    fn lookup(&self, stretch: &str) -> Option<Arc<[u32]>> {
        let mut generations = self.lock();
        if let Some(ids) = generations.current.get(stretch) {
            return Some(ids.clone());
        }
        let (key, ids) = generations.previous.remove_entry(stretch)?;
        generations.current_bytes += key.len() + ids.len() * 4;
        generations.current.insert(key, ids.clone());
        Some(ids)
    }

    fn store(&self, fresh: Vec<(&str, Arc<[u32]>)>) {
        let mut generations = self.lock();
        for (stretch, ids) in fresh {
            let size = stretch.len() + ids.len() * 4;
            if generations.current_bytes + size > self.generation_bytes {
                let full = std::mem::take(&mut generations.current);
                generations.previous = full;
                generations.current_bytes = 0;
            }
            if size <= self.generation_bytes {
                generations.current_bytes += size;
                generations.current.insert(stretch.into(), ids);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
