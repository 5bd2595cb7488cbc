//! The prompt blocklist: a configurable list of rules a prompt must not match.
//!
//! A rule is a line `rule-name: phrase`, where the phrase is one or more words matched as whole
//! words, case-insensitively, ignoring punctuation between them (so `hate speech` also catches
//! `Hate-Speech!`). A final `*` matches any word ending (`behead*` catches `beheading`). Blank
//! lines and lines starting with `#` are ignored. A rejection names the rule that fired, so a
//! creator learns what to change and an operator can tell which rule is too broad.
//!
//! Server-only (in `domain`): the list is the operator's, and shipping it to browsers would
//! only help people route around it.

use std::fmt;

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    name: String,
    phrase: String,
    words: Vec<String>,
    /// The last word is a prefix (`behead*`).
    prefix: bool,
}

/// A rule that fired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// The rule's name, e.g. `violence`.
    pub rule: String,
    /// The phrase as written in the list, e.g. `behead*`.
    pub phrase: String,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "This prompt is blocked by the moderation rule \u{201c}{}\u{201d} (it matches \u{201c}{}\u{201d}). Please rephrase it.",
            self.rule, self.phrase
        )
    }
}

/// A parsed blocklist. Cheap to check: prompts are at most 500 characters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Blocklist {
    rules: Vec<Rule>,
}

/// Lowercases and splits into words; anything not alphanumeric separates words (except `*` in
/// rules, where it marks a prefix).
fn words(text: &str, keep_star: bool) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || (keep_star && c == '*')))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl Blocklist {
    /// Parses a list. `source` names it in errors (a file path, or the variable's name).
    pub fn parse(text: &str, source: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, phrase) = match line.split_once(':') {
                Some((name, phrase)) => (name.trim(), phrase.trim()),
                None => ("blocklist", line),
            };
            let mut ws = words(phrase, true);
            let bad = |why: &str| format!("{source} line {}: {why}: {line:?}", n + 1);
            if name.is_empty() || ws.is_empty() {
                return Err(bad("a rule needs a name and a phrase"));
            }
            let prefix = ws.last().is_some_and(|w| w.ends_with('*'));
            if let Some(last) = ws.last_mut() {
                *last = last.trim_end_matches('*').to_owned();
            }
            if ws.iter().any(|w| w.is_empty() || w.contains('*')) {
                return Err(bad("`*` may only end the last word"));
            }
            rules.push(Rule {
                name: name.to_owned(),
                phrase: phrase.to_owned(),
                words: ws,
                prefix,
            });
        }
        Ok(Self { rules })
    }

    /// Adds another list's rules after this one's.
    pub fn extend(&mut self, other: Blocklist) {
        self.rules.extend(other.rules);
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first rule `prompt` matches, if any.
    pub fn check(&self, prompt: &str) -> Result<(), Blocked> {
        let text = words(prompt, false);
        for rule in &self.rules {
            let n = rule.words.len();
            let hit = text.windows(n).any(|window| {
                window
                    .iter()
                    .zip(&rule.words)
                    .enumerate()
                    .all(|(i, (w, r))| {
                        if rule.prefix && i == n - 1 {
                            w.starts_with(r.as_str())
                        } else {
                            w == r
                        }
                    })
            });
            if hit {
                return Err(Blocked {
                    rule: rule.name.clone(),
                    phrase: rule.phrase.clone(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Blocklist {
        Blocklist::parse(
            "# comment\n\nviolence: behead*\nhate: hate speech\nspam: free followers\nplainword\n",
            "test",
        )
        .unwrap()
    }

    #[test]
    fn matches_whole_words_ignoring_case_and_punctuation() {
        let l = list();
        assert_eq!(l.len(), 4);
        let b = l
            .check("A poster about HATE-speech in schools")
            .unwrap_err();
        assert_eq!(b.rule, "hate");
        assert_eq!(b.phrase, "hate speech");
        assert!(b.to_string().contains("hate"), "{b}");
        assert_eq!(l.check("Get FREE followers now!").unwrap_err().rule, "spam");
        assert_eq!(l.check("plainword").unwrap_err().rule, "blocklist");
        // Parts of words and words apart do not match.
        assert!(l.check("Hateful speeches are bad").is_ok());
        assert!(l.check("free coffee for our followers").is_ok());
        assert!(l.check("theplainwords").is_ok());
    }

    #[test]
    fn a_trailing_star_matches_word_endings() {
        let l = list();
        assert_eq!(l.check("the beheading of").unwrap_err().rule, "violence");
        assert_eq!(l.check("Behead.").unwrap_err().rule, "violence");
        assert!(l.check("rebehead").is_ok());
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let e = Blocklist::parse("ok: fine\nname:\n", "blocklist.txt").unwrap_err();
        assert!(e.contains("blocklist.txt line 2"), "{e}");
        let e = Blocklist::parse("x: a* b\n", "env").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn an_empty_list_blocks_nothing() {
        assert!(Blocklist::default().check("anything at all").is_ok());
    }
}
