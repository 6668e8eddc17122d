//! What a Hugging Face model folder says about chat formatting: the chat
//! template(s), the special tokens the template may print, and the ids that
//! end a generation.
//!
//! Templates live in one of three places depending on the `transformers`
//! version that saved the folder; like `transformers`, a `chat_template.jinja`
//! file wins over `tokenizer_config.json`'s `chat_template`, which wins over
//! the older `chat_template.json`. `additional_chat_templates/*.jinja` add
//! named templates.

use std::path::Path;

use serde_json::Value;

use crate::PolicyError;

/// The name of the template used when the caller does not pick one.
pub const DEFAULT_TEMPLATE: &str = "default";
/// The name `transformers` picks instead of the default when tools are given.
pub const TOOL_USE_TEMPLATE: &str = "tool_use";

/// The special tokens a chat template can print, as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    pub bos: Option<String>,
    pub eos: Option<String>,
    pub unk: Option<String>,
    pub pad: Option<String>,
}

/// One chat template with its name (`default` for a lone template).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedTemplate {
    pub name: String,
    pub source: String,
}

/// The chat-formatting part of a model folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenizerConfig {
    /// Every template found, the default first when there is one.
    pub templates: Vec<NamedTemplate>,
    pub special_tokens: SpecialTokens,
    /// `eos_token_id` of `generation_config.json` (one id or a list); the
    /// sampler stops on any of them.
    pub generation_eos_ids: Vec<u32>,
}

impl TokenizerConfig {
    /// Reads `tokenizer_config.json` (required) and the optional
    /// `chat_template.jinja`, `chat_template.json`,
    /// `additional_chat_templates/` and `generation_config.json` of `dir`.
    pub fn load(dir: &Path) -> Result<TokenizerConfig, PolicyError> {
        let config_path = dir.join("tokenizer_config.json");
        let config = read_json(&config_path)?;
        let mut parsed = TokenizerConfig::from_json(&config)
            .map_err(|detail| PolicyError::config(&config_path, detail))?;

        let jinja = dir.join("chat_template.jinja");
        if jinja.is_file() {
            let source = read_text(&jinja)?;
            set_template(&mut parsed.templates, DEFAULT_TEMPLATE, source);
        } else if parsed.templates.is_empty() {
            let path = dir.join("chat_template.json");
            if path.is_file() {
                let json = read_json(&path)?;
                parsed.templates = templates_from(json.get("chat_template"))
                    .map_err(|detail| PolicyError::config(&path, detail))?;
            }
        }
        let extra = dir.join("additional_chat_templates");
        if extra.is_dir() {
            let entries = std::fs::read_dir(&extra).map_err(|e| PolicyError::io(&extra, e))?;
            let mut found = Vec::new();
            for entry in entries {
                let path = entry.map_err(|e| PolicyError::io(&extra, e))?.path();
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".jinja"));
                if let Some(name) = name {
                    found.push((name.to_owned(), read_text(&path)?));
                }
            }
            found.sort();
            for (name, source) in found {
                set_template(&mut parsed.templates, &name, source);
            }
        }
        if parsed.templates.is_empty() {
            return Err(PolicyError::NoChatTemplate(dir.to_path_buf()));
        }

        let generation = dir.join("generation_config.json");
        if generation.is_file() {
            let json = read_json(&generation)?;
            parsed.generation_eos_ids = token_ids(json.get("eos_token_id"))
                .map_err(|detail| PolicyError::config(&generation, detail))?;
        }
        Ok(parsed)
    }

    /// The parts of a parsed `tokenizer_config.json` this crate uses. The
    /// error is a description of the offending field.
    pub fn from_json(config: &Value) -> Result<TokenizerConfig, String> {
        let special_tokens = SpecialTokens {
            bos: special_token(config, "bos_token")?,
            eos: special_token(config, "eos_token")?,
            unk: special_token(config, "unk_token")?,
            pad: special_token(config, "pad_token")?,
        };
        Ok(TokenizerConfig {
            templates: templates_from(config.get("chat_template"))?,
            special_tokens,
            generation_eos_ids: Vec::new(),
        })
    }
}

/// Replaces the template called `name`, or adds it (a default goes first).
fn set_template(templates: &mut Vec<NamedTemplate>, name: &str, source: String) {
    if let Some(existing) = templates.iter_mut().find(|t| t.name == name) {
        existing.source = source;
    } else if name == DEFAULT_TEMPLATE {
        templates.insert(
            0,
            NamedTemplate {
                name: name.to_owned(),
                source,
            },
        );
    } else {
        templates.push(NamedTemplate {
            name: name.to_owned(),
            source,
        });
    }
}

/// `chat_template` as a string, or as `[{"name": …, "template": …}]`.
fn templates_from(value: Option<&Value>) -> Result<Vec<NamedTemplate>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(source)) => Ok(vec![NamedTemplate {
            name: DEFAULT_TEMPLATE.to_owned(),
            source: source.clone(),
        }]),
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let name = item.get("name").and_then(Value::as_str);
                let source = item.get("template").and_then(Value::as_str);
                match (name, source) {
                    (Some(name), Some(source)) => set_template(&mut out, name, source.to_owned()),
                    _ => {
                        return Err(format!(
                            "chat_template[{i}] must be an object with string \"name\" and \"template\""
                        ))
                    }
                }
            }
            Ok(out)
        }
        Some(_) => Err("chat_template must be a string or a list of named templates".to_owned()),
    }
}

/// A special token written as a string or as an `AddedToken` object
/// (`{"__type": "AddedToken", "content": "<|im_end|>", …}`).
fn special_token(config: &Value, key: &str) -> Result<Option<String>, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Object(obj)) => match obj.get("content") {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            _ => Err(format!("{key} is an object without a string \"content\"")),
        },
        Some(_) => Err(format!("{key} must be a string or an AddedToken object")),
    }
}

/// One token id or a list of them.
fn token_ids(value: Option<&Value>) -> Result<Vec<u32>, String> {
    let one = |v: &Value| {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("eos_token_id holds {v}, not a token id"))
    };
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(one).collect(),
        Some(v) => Ok(vec![one(v)?]),
    }
}

fn read_text(path: &Path) -> Result<String, PolicyError> {
    std::fs::read_to_string(path).map_err(|e| PolicyError::io(path, e))
}

fn read_json(path: &Path) -> Result<Value, PolicyError> {
    let text = read_text(path)?;
    serde_json::from_str(&text).map_err(|e| PolicyError::config(path, format!("invalid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_strings_and_added_token_objects() {
        let config = json!({
            "bos_token": null,
            "eos_token": {"__type": "AddedToken", "content": "<|im_end|>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false},
            "pad_token": "<|endoftext|>",
            "chat_template": "{{ messages }}"
        });
        let parsed = TokenizerConfig::from_json(&config).unwrap();
        assert_eq!(
            parsed.special_tokens,
            SpecialTokens {
                bos: None,
                eos: Some("<|im_end|>".into()),
                unk: None,
                pad: Some("<|endoftext|>".into()),
            }
        );
        assert_eq!(parsed.templates[0].name, "default");
        assert!(TokenizerConfig::from_json(&json!({"eos_token": 3}))
            .unwrap_err()
            .contains("eos_token"));
    }

    #[test]
    fn named_template_lists_put_the_default_first() {
        let config = json!({"chat_template": [
            {"name": "tool_use", "template": "T"},
            {"name": "default", "template": "D"},
            {"name": "rag", "template": "R"}
        ]});
        let names: Vec<_> = TokenizerConfig::from_json(&config)
            .unwrap()
            .templates
            .into_iter()
            .map(|t| (t.name, t.source))
            .collect();
        assert_eq!(
            names,
            [("default", "D"), ("tool_use", "T"), ("rag", "R")]
                .map(|(n, s)| (n.to_owned(), s.to_owned()))
        );
        let bad = json!({"chat_template": [{"name": "x"}]});
        assert!(TokenizerConfig::from_json(&bad)
            .unwrap_err()
            .contains("chat_template[0]"));
    }

    #[test]
    fn folder_files_take_precedence_like_transformers() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("tokenizer_config.json", r#"{"eos_token": "<e>"}"#);
        assert!(matches!(
            TokenizerConfig::load(dir.path()),
            Err(PolicyError::NoChatTemplate(_))
        ));
        write("chat_template.json", r#"{"chat_template": "from json"}"#);
        assert_eq!(
            TokenizerConfig::load(dir.path()).unwrap().templates[0].source,
            "from json"
        );
        write(
            "tokenizer_config.json",
            r#"{"eos_token": "<e>", "chat_template": "from config"}"#,
        );
        assert_eq!(
            TokenizerConfig::load(dir.path()).unwrap().templates[0].source,
            "from config"
        );
        write("chat_template.jinja", "from jinja");
        write("generation_config.json", r#"{"eos_token_id": [7, 9]}"#);
        std::fs::create_dir(dir.path().join("additional_chat_templates")).unwrap();
        write("additional_chat_templates/rag.jinja", "rag");
        let loaded = TokenizerConfig::load(dir.path()).unwrap();
        assert_eq!(loaded.templates[0].source, "from jinja");
        assert_eq!(loaded.templates[1].name, "rag");
        assert_eq!(loaded.generation_eos_ids, vec![7, 9]);
        write("generation_config.json", r#"{"eos_token_id": 5}"#);
        assert_eq!(
            TokenizerConfig::load(dir.path())
                .unwrap()
                .generation_eos_ids,
            vec![5]
        );
        write("tokenizer_config.json", "{not json");
        let err = TokenizerConfig::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("tokenizer_config.json: invalid JSON"), "{err}");
    }
}
