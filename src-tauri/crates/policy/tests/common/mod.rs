//! A small Qwen-style model folder written by the tests: a byte-level BPE
//! `tokenizer.json` laid out like Qwen's (NFC, the Qwen split regex,
//! byte-level pre-tokenizer and decoder, ChatML and tool markup as added
//! tokens), a Qwen3-style chat template of our own, and the config files
//! around them. Nothing is downloaded.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use serde_json::{json, Map, Value};

/// Byte ids: every byte `b` is token `b`. Then three merges.
pub const HE: u32 = 256;
pub const LL: u32 = 257;
pub const HELL: u32 = 258;
/// Added tokens, special ones first as in Qwen's file.
pub const ENDOFTEXT: u32 = 259;
pub const IM_START: u32 = 260;
pub const IM_END: u32 = 261;
pub const THINK: u32 = 262;
pub const THINK_END: u32 = 263;
pub const TOOL_CALL: u32 = 264;
pub const TOOL_CALL_END: u32 = 265;
pub const TOOL_RESPONSE: u32 = 266;
pub const TOOL_RESPONSE_END: u32 = 267;

/// Qwen2/Qwen3's pre-tokenizer split pattern.
pub const QWEN_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// GPT-2's byte → printable character table, used by byte-level BPE.
pub fn byte_char(b: u8) -> char {
    let printable = |b: u8| {
        (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
    };
    if printable(b) {
        return char::from(b);
    }
    let shift = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + shift).unwrap()
}

/// The ids of `text` when no merge applies: one per byte.
pub fn bytes(text: &str) -> Vec<u32> {
    text.bytes().map(u32::from).collect()
}

fn added(id: u32, content: &str, special: bool) -> Value {
    json!({"id": id, "content": content, "single_word": false, "lstrip": false,
           "rstrip": false, "normalized": false, "special": special})
}

/// The `tokenizer.json` (with `post_processor` replaced when given).
pub fn tokenizer_json(post_processor: Option<Value>) -> Value {
    let mut vocab = Map::new();
    for b in 0..=255u8 {
        vocab.insert(byte_char(b).to_string(), json!(b));
    }
    vocab.insert("he".into(), json!(HE));
    vocab.insert("ll".into(), json!(LL));
    vocab.insert("hell".into(), json!(HELL));
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false});
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [
            added(ENDOFTEXT, "<|endoftext|>", true),
            added(IM_START, "<|im_start|>", true),
            added(IM_END, "<|im_end|>", true),
            added(THINK, "<think>", false),
            added(THINK_END, "</think>", false),
            added(TOOL_CALL, "<tool_call>", false),
            added(TOOL_CALL_END, "</tool_call>", false),
            added(TOOL_RESPONSE, "<tool_response>", false),
            added(TOOL_RESPONSE_END, "</tool_response>", false),
        ],
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN_SPLIT}, "behavior": "Isolated", "invert": false},
            byte_level.clone()
        ]},
        "post_processor": post_processor.unwrap_or_else(|| byte_level.clone()),
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": "", "end_of_word_suffix": "",
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab,
            "merges": ["h e", "l l", "he ll"]
        }
    })
}

/// A Qwen3-style ChatML template written for these tests: a tools block in
/// the system prompt, `<tool_call>` JSON for assistant calls, consecutive
/// tool results folded into one user turn of `<tool_response>`s, the
/// reasoning of the current agentic turn kept as `<think>` and earlier
/// reasoning dropped, `enable_thinking=false` closing an empty think block.
pub const QWEN3_STYLE_TEMPLATE: &str = r##"{%- if messages | length == 0 %}
    {{- raise_exception('No messages provided.') }}
{%- endif %}
{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- elif messages[0].role == 'system' %}
    {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
{%- endif %}
{%- set ns = namespace(last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- if message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.last_query_index = (messages|length - 1) - loop.index0 %}
        {%- break %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if message.role == "user" or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- elif '</think>' in content %}
            {%- set reasoning_content = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
            {%- set content = content.split('</think>')[-1].lstrip('\n') %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index and (loop.last or reasoning_content) %}
            {{- '<|im_start|>assistant\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
        {%- else %}
            {{- '<|im_start|>assistant\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' + tool_call.name + '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or messages[loop.index0 - 1].role != "tool" %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' + content + '\n</tool_response>' }}
        {%- if loop.last or messages[loop.index0 + 1].role != "tool" %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}
"##;

/// The same template as a thinking model has it: the generation prompt
/// opens the reasoning block.
pub fn thinking_template() -> String {
    QWEN3_STYLE_TEMPLATE.replace(
        "    {{- '<|im_start|>assistant\\n' }}\n    {%- if enable_thinking",
        "    {{- '<|im_start|>assistant\\n<think>\\n' }}\n    {%- if enable_thinking",
    )
}

/// `tokenizer_config.json` as Qwen ships it: special tokens as
/// `AddedToken` objects or strings, and the chat template.
pub fn tokenizer_config(chat_template: Value) -> Value {
    json!({
        "add_prefix_space": false,
        "bos_token": null,
        "eos_token": {"__type": "AddedToken", "content": "<|im_end|>", "lstrip": false,
                      "normalized": false, "rstrip": false, "single_word": false},
        "pad_token": "<|endoftext|>",
        "unk_token": null,
        "model_max_length": 131072,
        "tokenizer_class": "Qwen2Tokenizer",
        "chat_template": chat_template
    })
}

/// Writes a model folder into `dir`.
pub fn write_model(dir: &Path, tokenizer: &Value, config: &Value) {
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
    std::fs::write(
        dir.join("generation_config.json"),
        json!({"eos_token_id": [IM_END, ENDOFTEXT], "pad_token_id": ENDOFTEXT}).to_string(),
    )
    .unwrap();
}

/// A temporary folder with the default test model.
pub fn qwen_like_model(template: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_model(
        dir.path(),
        &tokenizer_json(None),
        &tokenizer_config(json!(template)),
    );
    dir
}
