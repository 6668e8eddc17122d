//! Skill names: the slug rule that keeps every skill inside its library folder.

use crate::SkillError;

/// The longest name a skill may have, in bytes (names are ASCII).
pub const MAX_NAME_LEN: usize = 64;

/// Checks that `name` is a slug: `^[a-z0-9]+(-[a-z0-9]+)*$`, at most 64 characters.
///
/// The rule is deliberately narrow: a name becomes a folder name, so anything that
/// could climb out of the library (`..`, `/`, `\`), hide a folder (a leading `.`),
/// or differ only by case on a case-insensitive disk is refused.
///
/// ```
/// use metaclaw_skills::validate_name;
/// assert!(validate_name("verify-time-zones").is_ok());
/// assert!(validate_name("../etc").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<(), SkillError> {
    let invalid = |reason| {
        Err(SkillError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return invalid("it is longer than 64 characters");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return invalid("it starts or ends with a hyphen");
    }
    if name.contains("--") {
        return invalid("it has two hyphens in a row");
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return invalid("it has uppercase letters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return invalid("it has characters other than a-z, 0-9 and -");
    }
    Ok(())
}

/// Turns free text into a valid skill name, or `None` when nothing usable is left.
///
/// Letters and digits are kept (lowercased, common Latin accents folded to their
/// base letter); every run of anything else becomes one hyphen. Text longer than
/// the limit is cut at a word boundary when one exists.
///
/// ```
/// use metaclaw_skills::slugify;
/// assert_eq!(slugify("Verify Time-Zones!").as_deref(), Some("verify-time-zones"));
/// assert_eq!(slugify("!!!"), None);
/// ```
pub fn slugify(text: &str) -> Option<String> {
    let mut slug = String::with_capacity(text.len().min(MAX_NAME_LEN + 1));
    // Start as if a hyphen was just written so leading separators are dropped.
    let mut after_hyphen = true;
    for c in text.chars() {
        let folded = fold_char(c);
        match folded {
            Some(c) => {
                slug.push(c);
                after_hyphen = false;
            }
            None if !after_hyphen => {
                slug.push('-');
                after_hyphen = true;
            }
            None => {}
        }
        // Enough collected to cut at a boundary; stop scanning huge inputs early.
        if slug.len() > MAX_NAME_LEN {
            break;
        }
    }
    if slug.len() > MAX_NAME_LEN {
        let cut = match slug[..=MAX_NAME_LEN].rfind('-') {
            Some(hyphen) if hyphen > 0 => hyphen,
            _ => MAX_NAME_LEN,
        };
        slug.truncate(cut);
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    if slug.is_empty() {
        None
    } else {
        Some(slug)
    }
}

/// Maps a character to the ASCII letter or digit it stands for in a slug.
fn fold_char(c: char) -> Option<char> {
    if c.is_ascii_alphanumeric() {
        return Some(c.to_ascii_lowercase());
    }
    // A small table of Latin-1 and Latin Extended-A letters, so "Café" becomes
    // "cafe" rather than "caf"; other scripts become separators.
    let base = match c.to_lowercase().next().unwrap_or(c) {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ą' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'ď' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'ī' => 'i',
        'ł' => 'l',
        'ñ' | 'ń' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => 'o',
        'ř' => 'r',
        'ś' | 'š' | 'ß' => 's',
        'ť' => 't',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' => 'u',
        'ý' | 'ÿ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        _ => return None,
    };
    Some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_slugs() {
        for name in [
            "a",
            "git",
            "verify-time-zones",
            "x2",
            "2fa-setup",
            &"a".repeat(64),
        ] {
            assert!(validate_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        let long = "a".repeat(65);
        for name in [
            "", "-a", "a-", "a--b", "A", "Git", "a_b", "a b", "a.b", "..", ".", "../x", "a/b",
            "a\\b", ".hidden", "café", "a\0", &long,
        ] {
            let err = validate_name(name).expect_err(name);
            let message = err.to_string();
            assert!(message.contains("lowercase letters a-z"), "{message}");
        }
    }

    #[test]
    fn error_says_why() {
        let message = validate_name("Bad_Name").unwrap_err().to_string();
        assert!(message.contains("`Bad_Name`"), "{message}");
        assert!(message.contains("uppercase"), "{message}");
    }

    #[test]
    fn slugify_examples() {
        let cases = [
            ("Verify Time-Zones!", Some("verify-time-zones")),
            ("  --hello__world--  ", Some("hello-world")),
            ("Café au lait", Some("cafe-au-lait")),
            ("ÜBER Straße", Some("uber-strase")),
            ("日本語", None),
            ("", None),
            ("v2.0 release", Some("v2-0-release")),
        ];
        for (input, expected) in cases {
            assert_eq!(slugify(input).as_deref(), expected, "{input}");
        }
    }

    #[test]
    fn slugify_cuts_long_text_at_a_word() {
        let text = "word ".repeat(40);
        let slug = slugify(&text).unwrap();
        assert!(slug.len() <= MAX_NAME_LEN);
        assert!(slug.ends_with("word"));
        validate_name(&slug).unwrap();

        let unbroken = "x".repeat(200);
        assert_eq!(slugify(&unbroken).unwrap().len(), MAX_NAME_LEN);
    }

    #[test]
    fn slugify_always_yields_valid_names() {
        for input in ["a-", "-", "a - b", "Ω omega", "x!!!y", "9"] {
            if let Some(slug) = slugify(input) {
                validate_name(&slug).unwrap();
            }
        }
    }
}
