//! Token counting for requests whose upstream reported no usage.
//!
//! The encodings are OpenAI's (o200k_base for the gpt-4o, gpt-4.1, gpt-5 and o-series families,
//! cl100k_base otherwise) as tiktoken-rs defines them; the tests below hold every count to
//! tiktoken-rs's own `encode_ordinary`. tiktoken-rs's `CoreBPE` is built to encode and decode: it
//! keeps each of o200k's 200k tokens three times (encoder, decoder, sorted list: about 28 MB of
//! heap) and merges a piece in time quadratic in its length. Counting needs less. The build script
//! takes the tokens out of tiktoken-rs once, in rank order, into two tables compiled into the
//! binary; an [`Encoding`] adds a hash index of ranks (about 1 MB for o200k) and merges long
//! pieces with a heap, so a prompt that is one megabyte-long word takes milliseconds, not hours.
//!
//! A [`Tokenizer`] is owned by the token-counting thread (`Services::settle_off_runtime`); it
//! builds each encoding's index the first time a model of that family needs counting.

use fancy_regex::Regex;
use hashbrown::{DefaultHashBuilder, HashTable};
use serde_json::Value;
use std::cell::OnceCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::BuildHasher;

type Rank = u32;

/// Pieces longer than this merge with a heap instead of repeated scans.
const LONG_PIECE: usize = 64;

/// The encoding a model's tokens are counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Cl100k,
    O200k,
}

impl Kind {
    pub fn of(model: &str) -> Kind {
        let m = model.to_ascii_lowercase();
        let o200k = ["gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4", "chatgpt-4o"];
        if o200k.iter().any(|p| m.starts_with(p)) {
            Kind::O200k
        } else {
            Kind::Cl100k
        }
    }

    /// The encoding's ordinary tokens, from the build script: their bytes concatenated in rank
    /// order, and each one's end offset (little-endian u32).
    fn tables(self) -> (&'static [u8], &'static [u8]) {
        match self {
            Kind::Cl100k => (
                include_bytes!(concat!(env!("OUT_DIR"), "/cl100k.bytes")),
                include_bytes!(concat!(env!("OUT_DIR"), "/cl100k.ends")),
            ),
            Kind::O200k => (
                include_bytes!(concat!(env!("OUT_DIR"), "/o200k.bytes")),
                include_bytes!(concat!(env!("OUT_DIR"), "/o200k.ends")),
            ),
        }
    }

    /// The pre-tokenizer: how text is split into pieces before they are merged.
    fn pattern(self) -> String {
        match self {
            Kind::Cl100k => concat!(
                r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|",
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
            )
            .to_string(),
            Kind::O200k => [
                r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
                r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
                r"\p{N}{1,3}",
                r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
                r"\s*[\r\n]+",
                r"\s+(?!\S)",
                r"\s+",
            ]
            .join("|"),
        }
    }
}

/// One encoding, held for counting only.
pub struct Encoding {
    split: Regex,
    /// Every token's bytes, in rank order.
    bytes: &'static [u8],
    /// Token `r` ends at the little-endian u32 at `ends[4 * r..]` and starts where `r - 1` ends.
    ends: &'static [u8],
    /// Ranks, hashed by their tokens' bytes.
    index: HashTable<Rank>,
    hasher: DefaultHashBuilder,
}

impl Encoding {
    pub fn build(kind: Kind) -> anyhow::Result<Encoding> {
        let (bytes, ends) = kind.tables();
        let n = ends.len() / 4;
        let hasher = DefaultHashBuilder::default();
        let mut index = HashTable::with_capacity(n);
        for r in 0..n as Rank {
            let token = token_at(bytes, ends, r);
            index.insert_unique(hasher.hash_one(token), r, |&other| {
                hasher.hash_one(token_at(bytes, ends, other))
            });
        }
        Ok(Encoding {
            split: Regex::new(&kind.pattern())?,
            bytes,
            ends,
            index,
            hasher,
        })
    }

    fn rank(&self, piece: &[u8]) -> Option<Rank> {
        self.index
            .find(self.hasher.hash_one(piece), |&r| {
                token_at(self.bytes, self.ends, r) == piece
            })
            .copied()
    }

    fn pair_rank(&self, piece: &[u8]) -> Rank {
        self.rank(piece).unwrap_or(Rank::MAX)
    }

    /// The number of tokens `text` encodes to (special tokens read as ordinary text).
    pub fn count(&self, text: &str) -> u64 {
        let mut tokens = 0;
        let mut done = 0;
        for m in self.split.find_iter(text) {
            match m {
                Ok(m) => {
                    tokens += self.piece_tokens(m.as_str().as_bytes());
                    done = m.end();
                }
                // The splitter gave up (its backtracking limit): the rest is estimated.
                Err(_) => return tokens + rough(&text[done..]),
            }
        }
        tokens
    }

    fn piece_tokens(&self, piece: &[u8]) -> u64 {
        if piece.len() <= 1 || self.rank(piece).is_some() {
            piece.len().min(1) as u64
        } else if piece.len() <= LONG_PIECE {
            self.merge_by_scan(piece)
        } else {
            self.merge_by_heap(piece)
        }
    }

    /// Byte-pair merging: while two neighbouring tokens join into a token of the vocabulary,
    /// join the pair whose joined rank is lowest (the leftmost of equals). Returns the tokens left.
    fn merge_by_scan(&self, piece: &[u8]) -> u64 {
        // starts[k]: where token k starts; the last entry is the piece's end.
        let mut starts: Vec<usize> = (0..=piece.len()).collect();
        // joined[k]: the rank of tokens k and k + 1 joined, Rank::MAX when that is no token.
        let mut joined: Vec<Rank> = (0..piece.len() - 1)
            .map(|k| self.pair_rank(&piece[k..k + 2]))
            .collect();
        while let Some(k) = joined
            .iter()
            .enumerate()
            .filter(|(_, r)| **r != Rank::MAX)
            .min_by_key(|(k, r)| (**r, *k))
            .map(|(k, _)| k)
        {
            starts.remove(k + 1);
            joined.remove(k);
            if k < joined.len() {
                joined[k] = self.pair_rank(&piece[starts[k]..starts[k + 2]]);
            }
            if k > 0 {
                joined[k - 1] = self.pair_rank(&piece[starts[k - 1]..starts[k + 1]]);
            }
        }
        (starts.len() - 1) as u64
    }

    /// The same merging in O(n log n): the tokens are a linked list over their start offsets and
    /// the candidate pairs a min-heap of (rank, start, end); a pair whose tokens have changed since
    /// it was pushed is skipped when it comes up. (A pair's bytes fix its rank, and token
    /// boundaries only ever disappear, so a pair that still spans `start..end` is still current.)
    fn merge_by_heap(&self, piece: &[u8]) -> u64 {
        let n = piece.len();
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<Option<usize>> = (0..n).map(|s| s.checked_sub(1)).collect();
        let mut alive = vec![true; n];
        let mut heap = BinaryHeap::with_capacity(n);
        for s in 0..n - 1 {
            if let Some(r) = self.rank(&piece[s..s + 2]) {
                heap.push(Reverse((r, s, s + 2)));
            }
        }
        let mut tokens = n;
        while let Some(Reverse((_, start, end))) = heap.pop() {
            let mid = next[start];
            if !alive[start] || mid >= n || next[mid] != end {
                continue;
            }
            alive[mid] = false;
            next[start] = end;
            tokens -= 1;
            if end < n {
                prev[end] = Some(start);
                let after = next[end];
                if let Some(r) = self.rank(&piece[start..after]) {
                    heap.push(Reverse((r, start, after)));
                }
            }
            if let Some(before) = prev[start]
                && let Some(r) = self.rank(&piece[before..end])
            {
                heap.push(Reverse((r, before, end)));
            }
        }
        tokens as u64
    }
}

fn token_at<'a>(bytes: &'a [u8], ends: &[u8], rank: Rank) -> &'a [u8] {
    let end_of = |r: usize| {
        let at = 4 * r;
        u32::from_le_bytes([ends[at], ends[at + 1], ends[at + 2], ends[at + 3]]) as usize
    };
    let r = rank as usize;
    let start = if r == 0 { 0 } else { end_of(r - 1) };
    &bytes[start..end_of(r)]
}

/// About four bytes a token: only for text the encoder cannot take.
fn rough(text: &str) -> u64 {
    text.len().div_ceil(4) as u64
}

/// The encodings, each built the first time it is needed. Owned by one thread.
#[derive(Default)]
pub struct Tokenizer {
    cl100k: OnceCell<Option<Encoding>>,
    o200k: OnceCell<Option<Encoding>>,
}

impl Tokenizer {
    fn encoding(&self, kind: Kind) -> Option<&Encoding> {
        let cell = match kind {
            Kind::Cl100k => &self.cl100k,
            Kind::O200k => &self.o200k,
        };
        cell.get_or_init(|| {
            Encoding::build(kind)
                .inspect_err(|e| tracing::error!(?kind, error = %e, "building a tokenizer failed; token counts are estimated from bytes"))
                .ok()
        })
        .as_ref()
    }

    pub fn count(&self, model: &str, text: &str) -> u64 {
        if text.is_empty() {
            return 0;
        }
        match self.encoding(Kind::of(model)) {
            Some(e) => e.count(text),
            None => rough(text),
        }
    }

    /// Prompt tokens of a request body, counted locally: chat or Messages messages (plus
    /// OpenAI's per-message framing: 3 tokens a message and 3 for the reply) with a Messages
    /// `system` and the tools' definitions, a completion prompt, or embedding input.
    pub fn prompt_tokens(&self, model: &str, body: &Value) -> u64 {
        let mut text = String::new();
        let mut framing = 0;
        if let Some(messages) = body.get("messages").and_then(Value::as_array) {
            if let Some(system) = body.get("system") {
                push_text(system, &mut text);
            }
            for m in messages {
                push_text(m, &mut text);
            }
            if let Some(tools) = body.get("tools") {
                push_text(tools, &mut text);
            }
            framing = 3 * messages.len() as u64 + 3;
        } else if let Some(p) = body.get("prompt") {
            push_text(p, &mut text);
        } else if let Some(i) = body.get("input") {
            // A Responses request's `instructions` are part of its prompt.
            if let Some(instructions) = body.get("instructions") {
                push_text(instructions, &mut text);
            }
            push_text(i, &mut text);
        }
        self.count(model, &text) + framing
    }
}

/// All text of a value: strings, `content`/`text` parts, arrays of them.
fn push_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(s);
        }
        Value::Array(a) => a.iter().for_each(|x| push_text(x, out)),
        Value::Object(o) => {
            for k in [
                "content",
                "text",
                "thinking",
                "arguments",
                "name",
                "description",
            ] {
                if let Some(x) = o.get(k) {
                    push_text(x, out);
                }
            }
            // Structured values the model reads as JSON text: a Messages tool call's input, a
            // tool's schema.
            for k in ["input", "input_schema", "parameters"] {
                if let Some(x) = o.get(k).filter(|x| x.is_object() || x.is_array()) {
                    if !out.is_empty() {
                        out.push('\n');
                    }
                    out.push_str(&x.to_string());
                }
            }
            if let Some(calls) = o.get("tool_calls") {
                push_text(calls, out);
            }
            if let Some(f) = o.get("function") {
                push_text(f, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Deterministic text built from fragments that stress the pre-tokenizer and the merges:
    /// scripts, marks, digits, contractions, whitespace runs, punctuation, special-token text.
    fn corpus(seed: u64, count: usize, max_fragments: usize) -> Vec<String> {
        const FRAGMENTS: &[&str] = &[
            "a",
            "e",
            "th",
            "ing",
            "Hello",
            "WORLD",
            "Zürich",
            "straße",
            "é",
            "e\u{301}",
            "中",
            "文",
            "日本語",
            "한국어",
            "Привет",
            "مرحبا",
            "١٢٣",
            "Ⅻ",
            "ℕ",
            "😀",
            "🇺🇸",
            "👩‍💻",
            " ",
            "  ",
            "   ",
            "\t",
            "\n",
            "\r\n",
            "\n\n",
            " \n ",
            "'s",
            "'LL",
            "'ve",
            "’",
            "0",
            "12",
            "345",
            "67890",
            ".",
            ",",
            "!",
            "?",
            "/",
            "//",
            "-",
            "_",
            "(",
            ")",
            "{",
            "}",
            "\"",
            "'",
            "<",
            ">",
            "<|endoftext|>",
            "fn main() {",
            "x += 1;",
            "http://example.com/a?b=c",
            "\u{0}",
            "\u{200b}",
            "ﬁ",
            "ǅ",
            "ＡＢＣ",
            "aaaaaaaa",
            "abababab",
            "🙂🙂🙂",
        ];
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..count)
            .map(|_| {
                let n = (next() as usize) % (max_fragments + 1);
                (0..n)
                    .map(|_| FRAGMENTS[(next() as usize) % FRAGMENTS.len()])
                    .collect()
            })
            .collect()
    }

    /// A long run of letters with no break, so it is one piece.
    fn long_word(seed: u64, len: usize) -> String {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                // A small alphabet makes many merges (and many equal pairs) possible.
                b"abcdeghilnorst"[((state >> 33) % 14) as usize] as char
            })
            .collect()
    }

    fn assert_counts_match_tiktoken(kind: Kind) {
        let ours = Encoding::build(kind).expect("build");
        let reference = match kind {
            Kind::Cl100k => tiktoken_rs::cl100k_base(),
            Kind::O200k => tiktoken_rs::o200k_base(),
        }
        .expect("tiktoken-rs");
        let mut texts = corpus(kind as u64 + 1, 400, 40);
        texts.extend(corpus(kind as u64 + 7, 20, 400));
        for (i, len) in [65, 100, 257, 1000, 3000].into_iter().enumerate() {
            texts.push(long_word(i as u64, len));
            texts.push(format!(" {}", long_word(i as u64 + 50, len).to_uppercase()));
        }
        texts.push("x".repeat(2000));
        texts.push(" ".repeat(300));
        texts.push("\n".repeat(300));
        for text in &texts {
            assert_eq!(
                ours.count(text),
                reference.encode_ordinary(text).len() as u64,
                "{kind:?} on {text:?}"
            );
        }
    }

    #[test]
    fn o200k_counts_match_tiktoken() {
        assert_counts_match_tiktoken(Kind::O200k);
    }

    #[test]
    fn cl100k_counts_match_tiktoken() {
        assert_counts_match_tiktoken(Kind::Cl100k);
    }

    #[test]
    fn a_huge_single_word_is_counted() {
        let ours = Encoding::build(Kind::O200k).expect("build");
        let word = long_word(3, 256 * 1024);
        let n = ours.count(&word);
        // Every token of this alphabet is at most a word's length and at least one byte.
        assert!(n > word.len() as u64 / 32 && n < word.len() as u64, "{n}");
    }

    #[test]
    fn counts_chat_prompts_with_framing() {
        let t = Tokenizer::default();
        let body = json!({"messages": [{"role": "user", "content": "Hello world"}]});
        assert_eq!(t.prompt_tokens("gpt-3.5-turbo", &body), 2 + 3 + 3);
        let parts = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "Hello world"}]}]});
        assert_eq!(t.prompt_tokens("gpt-3.5-turbo", &parts), 2 + 3 + 3);
        // A Messages request: its system, its tool calls' input and its tools count too.
        let messages = json!({"system": [{"type": "text", "text": "Hello"}],
            "messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "ls", "input": {"a": 1}}]}],
            "tools": [{"name": "ls", "input_schema": {"type": "object"}}]});
        let text = "Hello\nls\n{\"a\":1}\nls\n{\"type\":\"object\"}";
        assert_eq!(
            t.prompt_tokens("gpt-4o", &messages),
            t.count("gpt-4o", text) + 3 + 3
        );
        assert_eq!(t.count("gpt-4o-mini", ""), 0);
        assert_eq!(
            t.count("gpt-4o-mini", "The quick brown fox"),
            4,
            "o200k: The| quick| brown| fox"
        );
        assert_eq!(Kind::of("GPT-4o-mini"), Kind::O200k);
        assert_eq!(Kind::of("o3-mini"), Kind::O200k);
        assert_eq!(Kind::of("gpt-3.5-turbo"), Kind::Cl100k);
        assert_eq!(Kind::of("deepseek-chat"), Kind::Cl100k);
    }
}
