//! Hugging Face chat templates rendered with MiniJinja the way
//! `transformers.apply_chat_template` renders them with Jinja2.
//!
//! What `transformers` sets up, and this module copies: `trim_blocks` and
//! `lstrip_blocks`, no autoescaping, loop controls (`break`, `continue`),
//! the globals `raise_exception(message)` and `strftime_now(format)`, a
//! `tojson` filter that is Python's `json.dumps(ensure_ascii=False)` (see
//! [`crate::pyjson`]), and the context `messages`, `tools`,
//! `add_generation_prompt`, `bos_token`, `eos_token`, `unk_token`,
//! `pad_token` plus any extra keyword arguments (`enable_thinking`). Python
//! string and dict methods (`strip`, `split`, `startswith`, `items`, …) come
//! from `minijinja-contrib`'s pycompat layer.

use std::fmt::Write as _;

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};
use serde_json::Map;

use crate::config::{NamedTemplate, SpecialTokens, DEFAULT_TEMPLATE, TOOL_USE_TEMPLATE};
use crate::conversation::ChatInput;
use crate::pyjson::{self, PyJsonStyle};
use crate::PolicyError;

/// A model's chat template(s), compiled once and rendered per request.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    names: Vec<String>,
    special: SpecialTokens,
}

/// The error a template's `raise_exception` call carries, so it can be told
/// apart from a bug in the template.
#[derive(Debug)]
struct Raised(String);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

impl ChatTemplate {
    /// One template, known as `default`.
    pub fn new(source: &str, special: SpecialTokens) -> Result<ChatTemplate, PolicyError> {
        ChatTemplate::with_templates(
            vec![NamedTemplate {
                name: DEFAULT_TEMPLATE.to_owned(),
                source: source.to_owned(),
            }],
            special,
        )
    }

    /// Several named templates; each must compile.
    pub fn with_templates(
        templates: Vec<NamedTemplate>,
        special: SpecialTokens,
    ) -> Result<ChatTemplate, PolicyError> {
        let mut env = hf_environment();
        let mut names = Vec::with_capacity(templates.len());
        for t in templates {
            env.add_template_owned(t.name.clone(), t.source)
                .map_err(|e| template_error(&e))?;
            names.push(t.name);
        }
        if names.is_empty() {
            return Err(PolicyError::Template("no template given".to_owned()));
        }
        Ok(ChatTemplate {
            env,
            names,
            special,
        })
    }

    /// The template names, the default first when there is one.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The special tokens the context offers the template.
    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.special
    }

    /// Renders `input` with the template `transformers` would pick:
    /// `tool_use` when tools are given and such a template exists, else
    /// `default`, else the only one.
    pub fn render(
        &self,
        input: &ChatInput,
        add_generation_prompt: bool,
    ) -> Result<String, PolicyError> {
        let has_tools = input.tools.as_ref().is_some_and(|t| !t.is_empty());
        let name = [
            has_tools.then_some(TOOL_USE_TEMPLATE),
            Some(DEFAULT_TEMPLATE),
        ]
        .into_iter()
        .flatten()
        .find(|n| self.names.iter().any(|have| have == n))
        .or(self.names.first().map(String::as_str))
        .unwrap_or(DEFAULT_TEMPLATE);
        self.render_named(name, input, add_generation_prompt)
    }

    /// Renders `input` with the template called `name`.
    pub fn render_named(
        &self,
        name: &str,
        input: &ChatInput,
        add_generation_prompt: bool,
    ) -> Result<String, PolicyError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|_| PolicyError::UnknownTemplate {
                name: name.to_owned(),
                available: self.names.join(", "),
            })?;
        // Extra keyword arguments first, so they cannot replace the
        // conversation itself; like `transformers`, they may override the
        // special tokens.
        let mut context = Map::new();
        for (key, token) in [
            ("bos_token", &self.special.bos),
            ("eos_token", &self.special.eos),
            ("unk_token", &self.special.unk),
            ("pad_token", &self.special.pad),
        ] {
            if let Some(token) = token {
                context.insert(key.to_owned(), token.clone().into());
            }
        }
        for (key, value) in &input.kwargs {
            context.insert(key.clone(), value.clone());
        }
        context.insert(
            "messages".to_owned(),
            serde_json::Value::Array(input.messages.clone()),
        );
        context.insert(
            "tools".to_owned(),
            input
                .tools
                .clone()
                .map_or(serde_json::Value::Null, serde_json::Value::Array),
        );
        context.insert(
            "add_generation_prompt".to_owned(),
            add_generation_prompt.into(),
        );
        template
            .render(Value::from(minijinja::value::Serde(context)))
            .map_err(|e| template_error(&e))
    }
}

/// An environment configured like `transformers`' sandboxed Jinja2 one.
fn hf_environment() -> Environment<'static> {
    let mut env = Environment::new();
    let syntax = env
        .syntax()
        .to_builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(false)
        .build();
    if let Ok(syntax) = syntax {
        env.set_syntax(syntax);
    }
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // Jinja2's default `Undefined`: printing it gives "", testing it is
    // false, but reading an attribute of it is an error.
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    minijinja_contrib::add_to_environment(&mut env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_filter("tojson", tojson);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", strftime_now);
    env
}

fn template_error(err: &Error) -> PolicyError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(raised) = cause.downcast_ref::<Raised>() {
            return PolicyError::Rejected(raised.0.clone());
        }
        source = cause.source();
    }
    let mut message = err.to_string();
    if let Some(detail) = err.detail() {
        if !message.contains(detail) {
            let _ = write!(message, ": {detail}");
        }
    }
    PolicyError::Template(message)
}

fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message.clone()).with_source(Raised(message)))
}

/// `strftime_now("%d %b %Y")`: the local time, used by Llama 3 templates
/// for "Today Date".
fn strftime_now(format: String) -> Result<Value, Error> {
    let mut out = String::new();
    write!(out, "{}", chrono::Local::now().format(&format)).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("invalid strftime format {format:?}"),
        )
    })?;
    Ok(Value::from(out))
}

/// `x | tojson`, `x | tojson(indent=2)`, `x | tojson(4)`, with
/// `separators`, `sort_keys` and `ensure_ascii` as in Python.
fn tojson(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match indent {
        Some(indent) => Some(indent),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() || v.is_undefined() => None,
        Some(v) if v.kind() == ValueKind::String => Some(v.as_str().unwrap_or("").to_owned()),
        Some(v) => Some(" ".repeat(usize::try_from(v)?)),
    };
    let mut style = PyJsonStyle::new(indent);
    if let Some(separators) = kwargs.get::<Option<Value>>("separators")? {
        if !separators.is_none() {
            let items: Vec<Value> = separators.try_iter()?.collect();
            match items.as_slice() {
                [item, key] => {
                    style.item_separator = string_arg(item, "separators")?;
                    style.key_separator = string_arg(key, "separators")?;
                }
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "separators must be a pair of strings",
                    ))
                }
            }
        }
    }
    style.sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    style.ensure_ascii = kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(value).map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("cannot serialize to JSON: {e}"),
        )
    })?;
    Ok(Value::from(pyjson::dumps(&json, &style)))
}

fn string_arg(value: &Value, what: &str) -> Result<String, Error> {
    value.as_str().map(str::to_owned).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("{what} must be strings"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(messages: serde_json::Value) -> ChatInput {
        ChatInput {
            messages: messages.as_array().cloned().unwrap_or_default(),
            tools: None,
            kwargs: Map::new(),
        }
    }

    fn render(source: &str, messages: serde_json::Value) -> Result<String, PolicyError> {
        ChatTemplate::new(source, SpecialTokens::default())?.render(&input(messages), false)
    }

    #[test]
    fn tojson_is_pythons_json_dumps() {
        let msgs = json!([{"role": "user", "content": "a<b & 'c' é", "n": 1.0, "args": {"z": 1, "a": [true, null]}}]);
        assert_eq!(
            render("{{ messages[0] | tojson }}", msgs.clone()).unwrap(),
            r#"{"role": "user", "content": "a<b & 'c' é", "n": 1.0, "args": {"z": 1, "a": [true, null]}}"#
        );
        assert_eq!(
            render("{{ messages[0].args | tojson(indent=2) }}", msgs.clone()).unwrap(),
            "{\n  \"z\": 1,\n  \"a\": [\n    true,\n    null\n  ]\n}"
        );
        assert_eq!(
            render("{{ messages[0].args | tojson(1) }}", msgs.clone()).unwrap(),
            "{\n \"z\": 1,\n \"a\": [\n  true,\n  null\n ]\n}"
        );
        assert_eq!(
            render(
                "{{ messages[0].args | tojson(separators=(',', ':'), sort_keys=true) }}",
                msgs.clone()
            )
            .unwrap(),
            r#"{"a":[true,null],"z":1}"#
        );
        assert_eq!(
            render("{{ 'é' | tojson(ensure_ascii=true) }}", msgs.clone()).unwrap(),
            r#""\u00e9""#
        );
        assert!(render("{{ 1 | tojson(colour=1) }}", msgs).is_err());
    }

    #[test]
    fn python_string_methods_loop_controls_and_namespace() {
        let source = "{%- set ns = namespace(n=0, last='') -%}\
            {%- for m in messages -%}\
              {%- if m.content.startswith('skip') %}{% continue %}{% endif -%}\
              {%- if m.content.endswith('stop') %}{% break %}{% endif -%}\
              {%- set ns.n = ns.n + 1 -%}\
              {%- set ns.last = m.content.split('</think>')[-1].lstrip('\\n').rstrip() -%}\
              [{{ m.content.strip() }}|{{ m.content.split(' ')[0] }}|{{ loop.index0 }}]\
            {%- endfor -%}\
            {{ ns.n }}:{{ ns.last }}:{{ messages[::-1][0].content.strip('!') }}";
        let msgs = json!([
            {"content": "  a b  "},
            {"content": "skip me"},
            {"content": "x</think>\n\ny  "},
            {"content": "now stop"},
            {"content": "!never!"}
        ]);
        assert_eq!(
            render(source, msgs).unwrap(),
            "[a b||0][x</think>\n\ny|x</think>\n\ny|2]2:y:never"
        );
    }

    #[test]
    fn block_whitespace_is_trimmed_like_transformers() {
        // trim_blocks drops the newline after a tag, lstrip_blocks the
        // indentation before it.
        let source = "{% for m in messages %}\n    {% if m.role == 'user' %}\n<{{ m.content }}>\n    {% endif %}\n{% endfor %}\n";
        let msgs = json!([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]);
        assert_eq!(render(source, msgs).unwrap(), "<a>\n<b>\n");
    }

    #[test]
    fn raise_exception_becomes_a_rejection() {
        let source = "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation must start with a user message') }}{% endif %}ok";
        let err = render(source, json!([{"role": "assistant", "content": "x"}])).unwrap_err();
        assert!(
            matches!(&err, PolicyError::Rejected(m) if m == "Conversation must start with a user message"),
            "{err:?}"
        );
        assert_eq!(
            render(source, json!([{"role": "user", "content": "x"}])).unwrap(),
            "ok"
        );
        let broken = ChatTemplate::new("{% for %}", SpecialTokens::default()).unwrap_err();
        assert!(matches!(broken, PolicyError::Template(_)), "{broken:?}");
        let runtime = render(
            "{{ messages[0].content.nope() }}",
            json!([{"content": "x"}]),
        )
        .unwrap_err();
        assert!(matches!(runtime, PolicyError::Template(_)), "{runtime:?}");
    }

    #[test]
    fn context_has_special_tokens_tools_and_kwargs() {
        let special = SpecialTokens {
            bos: Some("<s>".into()),
            eos: Some("</s>".into()),
            ..SpecialTokens::default()
        };
        let template = ChatTemplate::with_templates(
            vec![
                NamedTemplate {
                    name: "default".into(),
                    source: "D{{ bos_token }}{{ messages|length }}{% if tools %}T{% endif %}{{ add_generation_prompt }}{{ eos_token }}{% if enable_thinking is false %}nothink{% endif %}{{ unk_token }}".into(),
                },
                NamedTemplate {
                    name: "tool_use".into(),
                    source: "U{% for t in tools %}{{ t.function.name }}{% endfor %}".into(),
                },
            ],
            special,
        )
        .unwrap();
        let mut chat = input(json!([{"role": "user", "content": "x"}]));
        chat.kwargs.insert("enable_thinking".into(), json!(false));
        chat.kwargs.insert("messages".into(), json!("ignored"));
        assert_eq!(
            template.render(&chat, true).unwrap(),
            "D<s>1True</s>nothink"
        );
        chat.tools = Some(vec![]);
        assert!(template
            .render(&chat, false)
            .unwrap()
            .starts_with("D<s>1False"));
        chat.tools = Some(vec![json!({"type": "function", "function": {"name": "f"}})]);
        assert_eq!(template.render(&chat, false).unwrap(), "Uf");
        assert!(template
            .render_named("default", &chat, false)
            .unwrap()
            .contains('T'));
        let err = template.render_named("rag", &chat, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no chat template named \"rag\" (have: default, tool_use)"
        );
    }

    #[test]
    fn idioms_of_popular_templates() {
        let msgs = json!([
            {"role": "system", "content": "S"},
            {"role": "user", "content": [{"type": "text", "text": "T"}]},
            {"role": "assistant", "content": "A", "tool_calls": [{"function": {"name": "f", "arguments": {"b": 1, "a": "x"}}}]}
        ]);
        for (source, expected) in [
            ("{{ messages | selectattr('role', 'equalto', 'system') | list | length }}", "1"),
            ("{{ (messages | rejectattr('role', 'eq', 'system') | first).role }}", "user"),
            ("{% for k, v in messages[2].tool_calls[0].function.arguments.items() %}{{ k }}={{ v }};{% endfor %}", "b=1;a=x;"),
            ("{{ messages[2].tool_calls[0].function.arguments.keys() | list | join(',') }}", "b,a"),
            ("{{ messages[2].get('name', 'none') }}", "none"),
            ("{{ messages[1].content[0]['text'] }}", "T"),
            ("{% for m in messages %}{{ loop.revindex }}/{{ loop.length }}{% if not loop.last %},{% endif %}{% endfor %}", "3/3,2/3,1/3"),
            ("{% for m in messages %}{% if loop.previtem is defined %}{{ loop.previtem.role[0] }}{% endif %}{% endfor %}", "su"),
            ("{{ 'yes' if messages[0].content is string else 'no' }}{{ messages[1].content is string }}", "yesFalse"),
            ("{{ messages[0].content is mapping }}{{ messages[2].tool_calls is iterable }}{{ messages[9] is defined }}", "FalseTrueFalse"),
            ("{% set ns = namespace(xs=[]) %}{% for m in messages %}{% set ns.xs = ns.xs + [m.role | upper] %}{% endfor %}{{ '-'.join(ns.xs) }}", "SYSTEM-USER-ASSISTANT"),
            ("{% macro tag(x) %}<{{ x | capitalize }}>{% endmacro %}{{ tag(messages[2].role) }}", "<Assistant>"),
            ("{% for i in range(2) %}{{ i }}{% endfor %}{{ 'a-b c'.replace('-', ' ').title() }}", "01A B C"),
            ("{{ messages[0].content | trim | length }}{{ '  x '.strip() }}{{ 'x'.upper() }}", "1xX"),
            ("{{ messages | map(attribute='role') | join(', ') }}", "system, user, assistant"),
            ("{{ (messages | last).content }}{{ messages[-1].role }}", "Aassistant"),
            ("{%- if messages[0]['role'] == 'system' -%}{%- set loop_messages = messages[1:] -%}{%- endif -%}{{ loop_messages | length }}", "2"),
        ] {
            assert_eq!(render(source, msgs.clone()).unwrap(), expected, "{source}");
        }
    }

    #[test]
    fn strftime_now_formats_the_local_date() {
        let out = render("{{ strftime_now('%Y') }}", json!([])).unwrap();
        assert_eq!(out.len(), 4);
        assert!(out.chars().all(|c| c.is_ascii_digit()));
    }
}
