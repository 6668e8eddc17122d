//! `metaclaw-bench-policy`: what inference through the policy and the RL
//! datums cost on this machine, for 32k-token turns, and what the proxy
//! adds in `rl` mode besides the sampler's own time (`proxy`, which runs
//! the release `metaclaw` binary). Each section measures one thing and
//! prints one Markdown table.
//!
//! The tokenizer is trained here, in-process, on generated text (a
//! byte-level BPE laid out like Qwen's: NFC, the Qwen split regex, ChatML
//! and tool markup as added tokens), so nothing is downloaded. Names given
//! on the command line pick sections (`metaclaw-bench-policy datums`); none
//! runs them all.

#[path = "../policy_proxy.rs"]
mod policy_proxy;
#[path = "../report.rs"]
mod report;
#[path = "../serve.rs"]
mod serve;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Context;
use metaclaw_policy::tokenizers::{
    self, models::bpe::BpeTrainerBuilder, models::bpe::BPE, models::TrainerWrapper,
    normalizers::unicode::NFC, pre_tokenizers::byte_level::ByteLevel,
    pre_tokenizers::sequence::Sequence, pre_tokenizers::split::Split,
    pre_tokenizers::split::SplitPattern, AddedToken, DecoderWrapper, ModelWrapper,
    NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper, SplitDelimiterBehavior,
    TokenizerBuilder,
};
use metaclaw_policy::{
    build_datums, parse_response, AdvantageConfig, ChatCodec, ChatInput, ChatTemplate,
    PolicyTokenizer, ScoredTurn, SpecialTokens,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use report::{show, thousands, Section, SectionFn};
use serde_json::{json, Value};

/// Tokens per turn: prompt plus response.
const TURN_TOKENS: usize = 32_768;
/// Of which the response (what the policy sampled).
const RESPONSE_TOKENS: usize = 4_096;
/// `rl.batch_size`'s default.
const BATCH: usize = 4;
const VOCAB: usize = 32_000;
const RUNS: usize = 15;

/// A ChatML template in the Qwen3 style (system, tools, tool calls, tool
/// responses, generation prompt), as the proxy renders for the policy.
const TEMPLATE: &str = r##"{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}{{- messages[0].content + '\n\n' }}{%- endif %}
    {{- "# Tools\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}{{- "\n" }}{{- tool | tojson }}{%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object within <tool_call></tool_call> XML tags.<|im_end|>\n" }}
{%- elif messages[0].role == 'system' %}
    {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- set content = message.content if message.content is string else '' %}
    {%- if message.role == "user" or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>assistant\n' + content }}
        {%- for tool_call in message.tool_calls or [] %}
            {%- set tool_call = tool_call.function %}
            {{- '\n<tool_call>\n{"name": "' + tool_call.name + '", "arguments": ' + tool_call.arguments | tojson + '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or messages[loop.index0 - 1].role != "tool" %}{{- '<|im_start|>user' }}{%- endif %}
        {{- '\n<tool_response>\n' + content + '\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != "tool" %}{{- '<|im_end|>\n' }}{%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}
"##;

const QWEN_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Generated text with the rough shape of agent conversations: prose from
/// a Zipf-distributed lexicon of made-up words, code lines, JSON, numbers.
struct TextGen {
    rng: StdRng,
    words: Vec<String>,
}

impl TextGen {
    fn new(seed: u64) -> TextGen {
        // The lexicon is the same for every generator; the text differs.
        let mut lexicon_rng = StdRng::seed_from_u64(7);
        let onsets = [
            "", "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
            "st", "tr", "pl", "ch", "sh", "th", "br", "gr",
        ];
        let vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "io"];
        let codas = ["", "", "n", "r", "s", "t", "l", "nd", "ng", "ck", "st"];
        let words = (0..20_000)
            .map(|_| {
                let syllables = lexicon_rng.random_range(1..=3);
                (0..syllables)
                    .map(|_| {
                        format!(
                            "{}{}{}",
                            onsets[lexicon_rng.random_range(0..onsets.len())],
                            vowels[lexicon_rng.random_range(0..vowels.len())],
                            codas[lexicon_rng.random_range(0..codas.len())]
                        )
                    })
                    .collect::<String>()
            })
            .collect();
        TextGen {
            rng: StdRng::seed_from_u64(seed),
            words,
        }
    }

    /// A word, frequent ones far more often (Zipf-like, s ≈ 1).
    fn word(&mut self) -> &str {
        let n = self.words.len() as f64;
        let rank = (n.powf(self.rng.random::<f64>()) - 1.0) as usize;
        &self.words[rank.min(self.words.len() - 1)]
    }

    fn sentence(&mut self) -> String {
        let len = self.rng.random_range(4..18);
        let mut s = String::new();
        for i in 0..len {
            let w = self.word().to_owned();
            if i == 0 {
                let mut chars = w.chars();
                if let Some(first) = chars.next() {
                    s.extend(first.to_uppercase());
                    s.push_str(chars.as_str());
                }
            } else {
                s.push(' ');
                s.push_str(&w);
            }
            if self.rng.random_bool(0.08) {
                s.push(',');
            }
        }
        s.push_str([".", ".", ".", "?", "!"][self.rng.random_range(0..5)]);
        s
    }

    fn code_line(&mut self) -> String {
        let (a, b, c) = (
            self.word().to_owned(),
            self.word().to_owned(),
            self.word().to_owned(),
        );
        let n = self.rng.random_range(0..10_000);
        match self.rng.random_range(0..4) {
            0 => format!("    let {a}_{b} = {c}({n}, \"{a}\")?;"),
            1 => format!("fn {a}({b}: &{c}) -> Result<{c}, Error> {{"),
            2 => format!("    if {a}.{b}.len() > {n} {{ return Err({c}); }}"),
            _ => format!("{{\"{a}\": \"{b}\", \"{c}\": {n}, \"ok\": true}}"),
        }
    }

    /// A paragraph: prose or a block of code.
    fn paragraph(&mut self) -> String {
        let lines = self.rng.random_range(2..8);
        if self.rng.random_bool(0.3) {
            let body: Vec<String> = (0..lines).map(|_| self.code_line()).collect();
            format!("```\n{}\n```", body.join("\n"))
        } else {
            let body: Vec<String> = (0..lines).map(|_| self.sentence()).collect();
            body.join(" ")
        }
    }
}

fn trained_tokenizer() -> anyhow::Result<(PolicyTokenizer, Duration, usize)> {
    let byte_level = ByteLevel::new(false, false, false);
    let split = Split::new(
        SplitPattern::Regex(QWEN_SPLIT.to_owned()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| anyhow::anyhow!("split regex: {e}"))?;
    let mut tokenizer = TokenizerBuilder::<
        ModelWrapper,
        NormalizerWrapper,
        PreTokenizerWrapper,
        PostProcessorWrapper,
        DecoderWrapper,
    >::new()
    .with_model(BPE::default().into())
    .with_normalizer(Some(NFC.into()))
    .with_pre_tokenizer(Some(
        Sequence::new(vec![split.into(), byte_level.into()]).into(),
    ))
    .with_post_processor(Some(byte_level.into()))
    .with_decoder(Some(byte_level.into()))
    .build()
    .map_err(|e| anyhow::anyhow!("tokenizer: {e}"))?;

    let mut gen = TextGen::new(1);
    let corpus: Vec<String> = (0..12_000).map(|_| gen.paragraph()).collect();
    let corpus_bytes = corpus.iter().map(String::len).sum();
    let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .map(|t| AddedToken::from(t, true))
        .to_vec();
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(VOCAB)
        .min_frequency(2)
        .show_progress(false)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect::<HashSet<char>>())
        .special_tokens(specials)
        .build()
        .into();
    let start = Instant::now();
    tokenizer
        .train(&mut trainer, corpus.iter())
        .map_err(|e| anyhow::anyhow!("training: {e}"))?;
    let trained_in = start.elapsed();
    tokenizer
        .add_tokens(
            [
                "<think>",
                "</think>",
                "<tool_call>",
                "</tool_call>",
                "<tool_response>",
                "</tool_response>",
            ]
            // Qwen marks its markup tokens not normalized, like the specials.
            .map(|t| AddedToken::from(t, false).normalized(false)),
        )
        .map_err(|e| anyhow::anyhow!("added tokens: {e}"))?;
    let tokenizer = PolicyTokenizer::from_tokenizer(tokenizers::Tokenizer::from(tokenizer))?;
    Ok((tokenizer, trained_in, corpus_bytes))
}

/// An agent conversation whose prompt is as close to `tokens` tokens as
/// whole rounds allow: a system prompt with tools, then rounds of user ask,
/// assistant tool call, tool output, assistant answer, and a last question.
fn long_conversation(codec: &ChatCodec, tokens: usize) -> anyhow::Result<Value> {
    let mut gen = TextGen::new(2);
    let tools: Vec<Value> = (0..8)
        .map(|i| {
            json!({"type": "function", "function": {
                "name": format!("tool_{i}_{}", gen.word()),
                "description": gen.sentence(),
                "parameters": {"type": "object", "properties": {
                    "path": {"type": "string", "description": gen.sentence()},
                    "limit": {"type": "integer"}
                }, "required": ["path"]}
            }})
        })
        .collect();
    let system = json!({"role": "system", "content": gen.paragraph()});
    let question = json!({"role": "user", "content": gen.sentence()});
    // Generous: each round is well over 100 tokens.
    let rounds: Vec<[Value; 4]> = (0..tokens / 100)
        .map(|round| {
            let output: Vec<String> = (0..4).map(|_| gen.paragraph()).collect();
            [
                json!({"role": "user", "content": gen.paragraph()}),
                json!({"role": "assistant", "content": "", "tool_calls": [{
                    "id": format!("call_{round}"), "type": "function",
                    "function": {"name": "tool_0", "arguments": json!({"path": format!("/src/{}.rs", gen.word()), "limit": round}).to_string()}
                }]}),
                json!({"role": "tool", "tool_call_id": format!("call_{round}"), "content": output.join("\n\n")}),
                json!({"role": "assistant", "content": gen.paragraph()}),
            ]
        })
        .collect();
    let request = |n: usize| {
        let mut messages = vec![system.clone()];
        messages.extend(rounds[..n].iter().flatten().cloned());
        messages.push(question.clone());
        json!({"model": "policy", "messages": messages, "tools": tools})
    };
    let length = |n: usize| -> anyhow::Result<usize> {
        Ok(codec
            .prompt_for(&ChatInput::from_openai(&request(n))?)?
            .token_ids
            .len())
    };
    // The most rounds that stay within `tokens`.
    let (mut low, mut high) = (0, rounds.len());
    while low < high {
        let mid = (low + high).div_ceil(2);
        if length(mid)? <= tokens {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    Ok(request(low))
}

/// Median of `RUNS` timings of `f`.
fn median<T>(mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(Duration, T)> {
    let mut samples = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let value = std::hint::black_box(f()?);
        samples.push(start.elapsed());
        last = Some(value);
    }
    samples.sort();
    let value = last.context("no runs")?;
    Ok((samples[samples.len() / 2], value))
}

fn per_second(count: usize, d: Duration) -> String {
    let rate = count as f64 / d.as_secs_f64().max(1e-12);
    if rate >= 1e6 {
        format!("{:.1} M tokens/s", rate / 1e6)
    } else {
        format!("{} tokens/s", thousands(rate as usize))
    }
}

fn tokenization_section() -> anyhow::Result<Vec<Section>> {
    let (tokenizer, trained_in, corpus_bytes) = trained_tokenizer()?;
    let mut setup = Section::new("Synthetic tokenizer");
    setup.row(
        "vocabulary",
        thousands(tokenizer.vocab_size()),
        "byte-level BPE, Qwen split regex, 3 special + 6 markup tokens",
    );
    setup.row(
        "training",
        show(trained_in),
        format!(
            "in-process BpeTrainer on {:.1} MB of generated text",
            corpus_bytes as f64 / 1e6
        ),
    );

    let template = ChatTemplate::new(
        TEMPLATE,
        SpecialTokens {
            eos: Some("<|im_end|>".into()),
            pad: Some("<|endoftext|>".into()),
            ..SpecialTokens::default()
        },
    )?;
    let stop = tokenizer.token_id("<|im_end|>").context("no <|im_end|>")?;
    let codec = ChatCodec::new(tokenizer, template, vec![stop]);
    let request = long_conversation(&codec, TURN_TOKENS - RESPONSE_TOKENS)?;
    let input = ChatInput::from_openai(&request)?;

    let (render, text) = median(|| Ok(codec.template().render(&input, true)?))?;
    let (encode, ids) = median(|| Ok(codec.tokenizer().encode(&text)?))?;
    let cache = codec
        .segment_cache()
        .context("the benchmark's tokenizer allows a segment cache")?;
    let (whole, prompt) = median(|| {
        cache.clear();
        let input = ChatInput::from_openai(&request)?;
        Ok(codec.prompt_for(&input)?)
    })?;
    anyhow::ensure!(
        prompt.token_ids == ids,
        "the segment cache's ids differ from the plain encoder's"
    );
    // The same conversation one round shorter, seen first: the next
    // request of the session finds all but the new round in the cache.
    let mut shorter = request.clone();
    if let Some(messages) = shorter["messages"].as_array_mut() {
        let question = messages.pop();
        messages.truncate(messages.len().saturating_sub(4));
        messages.extend(question);
    }
    let shorter = ChatInput::from_openai(&shorter)?;
    let mut grown = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        cache.clear();
        codec.prompt_for(&shorter)?;
        let start = Instant::now();
        let next = codec.prompt_for(&ChatInput::from_openai(&request)?)?;
        grown.push(start.elapsed());
        anyhow::ensure!(next.token_ids == ids, "cached ids differ");
    }
    grown.sort();
    let grown = grown[grown.len() / 2];
    let (decode, decoded) = median(|| Ok(codec.tokenizer().decode(&ids, false)?))?;
    anyhow::ensure!(decoded == text, "decode(encode(prompt)) != prompt");

    // A response of exactly RESPONSE_TOKENS: reasoning (70%), answer
    // text, a tool call and the stop token.
    let tokenizer = codec.tokenizer();
    let mut gen = TextGen::new(3);
    let mut prose = |n: usize| -> anyhow::Result<Vec<u32>> {
        let mut text = String::new();
        let mut ids = Vec::new();
        while ids.len() < n {
            text.push_str(&gen.paragraph());
            text.push('\n');
            ids = tokenizer.encode(&text)?;
        }
        ids.truncate(n);
        Ok(ids)
    };
    let close = tokenizer.encode("\n</think>\n\n")?;
    let call = tokenizer.encode(
        "\n<tool_call>\n{\"name\": \"tool_0\", \"arguments\": {\"path\": \"/src/main.rs\"}}\n</tool_call>",
    )?;
    let open = tokenizer.encode("<think>\n")?;
    let reasoning_tokens = RESPONSE_TOKENS * 7 / 10;
    let text_tokens =
        RESPONSE_TOKENS - reasoning_tokens - open.len() - close.len() - call.len() - 1;
    let mut response_ids = open;
    response_ids.extend(prose(reasoning_tokens)?);
    response_ids.extend(close);
    response_ids.extend(prose(text_tokens)?);
    response_ids.extend(call);
    response_ids.push(stop);
    anyhow::ensure!(response_ids.len() == RESPONSE_TOKENS);
    let (parse_whole, parsed) = median(|| Ok(codec.parse_response(&prompt, &response_ids)?))?;
    let (stream, streamed) = median(|| {
        let mut s = codec.response_stream(&prompt);
        let mut events = 0usize;
        for &id in &response_ids {
            events += s.push_token(id)?.len();
        }
        let (last, message) = s.finish();
        Ok((events + last.len(), message))
    })?;
    anyhow::ensure!(streamed.1 == parsed, "streamed and whole parses differ");
    let response_text = codec
        .tokenizer()
        .decode(&response_ids[..response_ids.len() - 1], false)?;
    let (parse_only, _) = median(|| Ok(parse_response(&response_text, false)))?;

    let mut section = Section::new(format!(
        "Inference through the policy: a {}-token prompt, a {}-token response",
        thousands(prompt.token_ids.len()),
        thousands(response_ids.len())
    ));
    section.row(
        "render chat template",
        show(render),
        format!(
            "{} messages, 8 tools, {:.0} kB of prompt text",
            input.messages.len(),
            text.len() as f64 / 1e3
        ),
    );
    section.row(
        "encode prompt",
        per_second(ids.len(), encode),
        format!(
            "{} per prompt (`encode_fast`, no special tokens added)",
            show(encode)
        ),
    );
    section.row(
        "request → prompt ids",
        show(whole),
        "request normalisation + render + encode, what the proxy adds before `asample` (cold cache)",
    );
    section.row(
        "request → prompt ids, next turn of the session",
        show(grown),
        "the same with the conversation one round shorter tokenized before: only new stretches are encoded (segment cache; ids checked equal)",
    );
    section.row("decode prompt", per_second(ids.len(), decode), show(decode));
    section.row(
        "response: decode + parse (whole)",
        per_second(response_ids.len(), parse_whole),
        format!(
            "{} ({} reasoning and {} text bytes, {} tool call)",
            show(parse_whole),
            thousands(parsed.reasoning.len()),
            thousands(parsed.text.len()),
            parsed.tool_calls.len()
        ),
    );
    section.row(
        "response: streamed token by token",
        per_second(response_ids.len(), stream),
        format!(
            "{} for {} events; {:.1} µs per token",
            show(stream),
            thousands(streamed.0),
            stream.as_secs_f64() * 1e6 / response_ids.len() as f64
        ),
    );
    section.row(
        "Qwen3 markup parse only",
        show(parse_only),
        format!(
            "{:.0} kB of response text",
            response_text.len() as f64 / 1e3
        ),
    );
    Ok(vec![setup, section])
}

fn datum_section() -> anyhow::Result<Vec<Section>> {
    let mut rng = StdRng::seed_from_u64(4);
    let prompt_len = TURN_TOKENS - RESPONSE_TOKENS;
    let turns: Vec<ScoredTurn> = (0..BATCH)
        .map(|i| ScoredTurn {
            prompt_tokens: (0..prompt_len)
                .map(|_| rng.random_range(0..150_000))
                .collect(),
            response_tokens: (0..RESPONSE_TOKENS)
                .map(|_| rng.random_range(0..150_000))
                .collect(),
            logprobs: (0..RESPONSE_TOKENS)
                .map(|_| -rng.random::<f32>() * 3.0)
                .collect(),
            reward: [1.0, 0.0, -1.0, 1.0][i % 4],
            group: None,
            loss_mask: None,
            teacher_logprobs: None,
        })
        .collect();
    let (batch_time, batch) = median(|| Ok(build_datums(&turns, AdvantageConfig::default())?))?;
    let positions: usize = batch.datums.iter().map(|d| d.len()).sum();
    let mut masked = turns.clone();
    for t in &mut masked {
        t.loss_mask = Some((0..RESPONSE_TOKENS).map(|j| j % 7 != 0).collect());
    }
    let (masked_time, _) = median(|| Ok(build_datums(&masked, AdvantageConfig::default())?))?;
    let mut section = Section::new(format!(
        "Datum construction: a batch of {BATCH} turns of {} tokens",
        thousands(TURN_TOKENS)
    ));
    section.row(
        "build datums",
        per_second(BATCH * TURN_TOKENS, batch_time),
        format!(
            "{} per batch, {} positions; validation, advantages, shifted targets, per-token vectors",
            show(batch_time),
            thousands(positions)
        ),
    );
    section.row(
        "build datums with a loss mask",
        per_second(BATCH * TURN_TOKENS, masked_time),
        show(masked_time),
    );
    section.row(
        "advantages",
        batch
            .advantages
            .iter()
            .map(|a| format!("{a:.4}"))
            .collect::<Vec<_>>()
            .join(", "),
        "rewards 1, 0, -1, 1: (r − 0.25) / (0.8292 + 1e-6), checked in the unit tests",
    );
    Ok(vec![section])
}

const SECTIONS: &[(&str, SectionFn)] = &[
    ("tokenization", tokenization_section),
    ("datums", datum_section),
    ("proxy", policy_proxy::section),
];

fn main() -> anyhow::Result<()> {
    report::run(
        &format!("metaclaw policy benchmark (median of {RUNS} runs)"),
        SECTIONS,
    )
}
