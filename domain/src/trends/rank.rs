//! The hot-rank: a pure function of what creators prompted and rated, what feeds reported,
//! and a clock passed in, so it is tested with a fixed time and never reads the system clock.
//!
//! Every prompt inside the window contributes its topics (its hashtags, then its keywords),
//! weighted by its images' ratings and halved every `half_life` of age. Imported rows decay
//! the same way from when the feed observed them. Each source's scores are divided by that
//! source's own maximum before merging, so a feed that scores in the thousands cannot drown
//! our own signal (nor the reverse); a topic listed by several sources adds their scores and
//! names every source.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::{COMPUTED_SOURCE, Trend};

/// A prompt made at `at`, with the totals of the ratings its images received.
#[derive(Clone, Debug, PartialEq)]
pub struct PromptEvent {
    /// The prompt as the creator typed it.
    pub prompt: String,
    /// Who prompted it: a creator counts at most once per topic.
    pub creator: uuid::Uuid,
    /// When it was submitted.
    pub at: DateTime<Utc>,
    /// Sum of the stars (1 to 5) its images received.
    pub rating_sum: i64,
    /// How many ratings its images received; 0 means unrated (neutral weight).
    pub rating_count: i64,
}

/// One row of an external feed, as validated by [`super::feed`] and stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportedTrend {
    /// The topic, normalised by [`normalise_topic`].
    pub topic: String,
    /// Its hashtag, lowercase with the `#`.
    pub hashtag: String,
    /// The feed's name (lowercase), what the create page labels the trend with.
    pub source: String,
    /// The feed's own score: any scale, non-negative; only compared within its source.
    pub score: f64,
    /// When the feed observed it; the row decays from then.
    pub observed_at: DateTime<Utc>,
}

/// The ranking's knobs.
#[derive(Clone, Debug, PartialEq)]
pub struct RankSettings {
    /// Only prompts and feed rows at most this old count.
    pub window: TimeDelta,
    /// A contribution's weight halves every `half_life` of age; a zero or negative half-life
    /// turns decay off (everything in the window counts fully) rather than dividing by zero.
    pub half_life: TimeDelta,
    /// How many trends [`rank`] returns at most.
    pub limit: usize,
}

impl Default for RankSettings {
    /// A week of history, halving daily, twelve trends.
    fn default() -> Self {
        Self {
            window: TimeDelta::days(7),
            half_life: TimeDelta::hours(24),
            limit: 12,
        }
    }
}

/// Most topics one prompt contributes, so a long prompt cannot flood the ranking.
pub const MAX_TOPICS_PER_PROMPT: usize = 8;

/// Shortest and longest topic, in characters: one letter says nothing, and a longer one is a
/// sentence rather than a topic (and would not fit the create page's chip).
const TOPIC_CHARS: std::ops::RangeInclusive<usize> = 2..=40;
/// Longest hashtag body (after the `#`), in characters.
const MAX_HASHTAG_CHARS: usize = 40;
/// A keyword needs this many letters: shorter words are mostly articles and prepositions,
/// and digits alone (`2026`, `4k`) are not topics.
const MIN_KEYWORD_LETTERS: usize = 4;
/// The least a rated prompt weighs: a badly rated prompt still says what people try.
const MIN_WEIGHT: f64 = 0.25;
/// Scores closer than this are ties, so float noise cannot reorder equal trends.
const TIE_EPSILON: f64 = 1e-9;

/// Words too common in prompts to be a topic: English filler of four letters or more (shorter
/// words never qualify as keywords anyway), image-prompt boilerplate ("photo", "style") and
/// marketing filler ("join", "save"). Sorted, for the binary search.
const STOPWORDS: &[&str] = &[
    "about",
    "above",
    "across",
    "after",
    "again",
    "against",
    "along",
    "also",
    "among",
    "announcing",
    "around",
    "background",
    "beautiful",
    "because",
    "been",
    "before",
    "behind",
    "being",
    "below",
    "beside",
    "between",
    "beyond",
    "both",
    "check",
    "could",
    "detailed",
    "does",
    "doing",
    "down",
    "drop",
    "during",
    "each",
    "every",
    "featuring",
    "five",
    "four",
    "from",
    "guide",
    "have",
    "having",
    "here",
    "high",
    "highly",
    "image",
    "images",
    "into",
    "join",
    "just",
    "like",
    "made",
    "make",
    "many",
    "meet",
    "more",
    "most",
    "much",
    "must",
    "near",
    "only",
    "onto",
    "other",
    "over",
    "photo",
    "photograph",
    "photos",
    "picture",
    "pictures",
    "please",
    "quality",
    "really",
    "reasons",
    "same",
    "save",
    "scenes",
    "shot",
    "should",
    "show",
    "showing",
    "some",
    "style",
    "styled",
    "such",
    "than",
    "that",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "three",
    "through",
    "today",
    "tonight",
    "under",
    "until",
    "upon",
    "very",
    "week",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "will",
    "with",
    "within",
    "without",
    "would",
    "your",
    "yours",
];

/// Lowercases, trims, strips one leading `#`, keeps only letters, digits, spaces and hyphens,
/// and collapses runs of whitespace to one space; `None` unless 2 to 40 characters remain,
/// at least one of them a letter or digit (`--` is no topic, and its hashtag would be `#`).
///
/// Feeds and prompts write the same topic many ways (`#Golden Hour`, `golden  hour`); this is
/// the one spelling they are merged under.
pub fn normalise_topic(s: &str) -> Option<String> {
    let s = s.trim();
    let s = s.strip_prefix('#').unwrap_or(s);
    let kept: String = s
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric() || *c == '-' || c.is_whitespace())
        .collect();
    let topic = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    let valid =
        TOPIC_CHARS.contains(&topic.chars().count()) && topic.chars().any(char::is_alphanumeric);
    valid.then_some(topic)
}

/// `#` followed by the topic without its spaces and hyphens (`golden hour` → `#goldenhour`):
/// the hashtag a topic gets when nobody typed one.
pub fn hashtag_for(topic: &str) -> String {
    let body: String = topic
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    format!("#{body}")
}

/// A hashtag as typed (`#GoldenHour`, `golden_hour`) in its stored form, lowercase with the
/// `#`; `None` unless it is an optional `#` and 1 to 40 letters, digits or underscores.
///
/// Shared with [`super::feed`] so an imported hashtag is checked the same way everywhere.
pub fn normalise_hashtag(s: &str) -> Option<String> {
    let s = s.trim();
    let body = s.strip_prefix('#').unwrap_or(s).to_lowercase();
    let n = body.chars().count();
    let ok = (1..=MAX_HASHTAG_CHARS).contains(&n) && body.chars().all(is_hashtag_char);
    ok.then(|| format!("#{body}"))
}

fn is_hashtag_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A piece of a prompt that may be a topic.
enum Token<'a> {
    /// The body of `#body` (without the `#`).
    Hashtag(&'a str),
    /// A run of letters and digits outside hashtags.
    Word(&'a str),
}

/// Splits a prompt into hashtags and words. A `#` starts a hashtag only at the start of a
/// word, so `issue#42` or `C#` are not hashtags; the words inside a hashtag
/// (`#golden_hour`) are not keywords too.
fn tokens(prompt: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut chars = prompt.char_indices().peekable();
    // The character before the current one, to tell `#tag` from `a#b`.
    let mut prev: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        let hashtag = c == '#' && !prev.is_some_and(is_hashtag_char);
        let word = c.is_alphanumeric();
        if !hashtag && !word {
            prev = Some(c);
            continue;
        }
        let (start, continues): (usize, fn(char) -> bool) = if hashtag {
            (i + c.len_utf8(), is_hashtag_char)
        } else {
            (i, char::is_alphanumeric)
        };
        let mut end = if hashtag { start } else { i + c.len_utf8() };
        prev = Some(c);
        while let Some(&(j, d)) = chars.peek() {
            if !continues(d) {
                break;
            }
            end = j + d.len_utf8();
            prev = Some(d);
            chars.next();
        }
        if let Some(text) = prompt.get(start..end).filter(|t| !t.is_empty()) {
            out.push(if hashtag {
                Token::Hashtag(text)
            } else {
                Token::Word(text)
            });
        }
    }
    out
}

/// What a prompt contributes, as `(topic, hashtag)` pairs: its hashtags (topic: the word
/// lowercased, underscores dropped as [`normalise_topic`] does; hashtag: `#word` lowercased),
/// then its keywords in order of appearance (words of at least four letters that are not
/// filler, with [`hashtag_for`]). Each topic appears once, and at most
/// [`MAX_TOPICS_PER_PROMPT`] of them.
pub fn topics_of(prompt: &str) -> Vec<(String, String)> {
    let tokens = tokens(prompt);
    let hashtags = tokens.iter().filter_map(|t| match t {
        Token::Hashtag(body) => {
            let tag = normalise_hashtag(body)?;
            let topic = normalise_topic(body)?;
            Some((topic, tag))
        }
        Token::Word(_) => None,
    });
    let keywords = tokens.iter().filter_map(|t| match t {
        Token::Word(word) => {
            let word = word.to_lowercase();
            let letters = word.chars().filter(|c| c.is_alphabetic()).count();
            if letters < MIN_KEYWORD_LETTERS || STOPWORDS.binary_search(&word.as_str()).is_ok() {
                return None;
            }
            let topic = normalise_topic(&word)?;
            let tag = hashtag_for(&topic);
            Some((topic, tag))
        }
        Token::Hashtag(_) => None,
    });
    let mut seen = HashSet::new();
    hashtags
        .chain(keywords)
        .filter(|(topic, _)| seen.insert(topic.clone()))
        .take(MAX_TOPICS_PER_PROMPT)
        .collect()
}

/// `0.5^(age / half_life)` for something that happened at `at`, or `None` when it is outside
/// `[now - window, now]`: too old to count, or in the future (a clock ahead of ours must not
/// earn a boost).
fn decay(at: DateTime<Utc>, now: DateTime<Utc>, settings: &RankSettings) -> Option<f64> {
    // `signed_duration_since` cannot overflow, unlike `now - window` for a huge window.
    let age = now.signed_duration_since(at);
    if age < TimeDelta::zero() || age > settings.window {
        return None;
    }
    let half_life = settings.half_life.num_milliseconds() as f64;
    if half_life <= 0.0 {
        return Some(1.0);
    }
    Some(0.5f64.powf(age.num_milliseconds() as f64 / half_life))
}

/// A prompt's weight from its ratings: 3 stars is neutral, 5 stars adds one, 1 star takes one
/// away, never below [`MIN_WEIGHT`].
fn rating_weight(e: &PromptEvent) -> f64 {
    let bonus = if e.rating_count > 0 {
        (e.rating_sum as f64 / e.rating_count as f64 - 3.0) / 2.0
    } else {
        0.0
    };
    (1.0 + bonus).max(MIN_WEIGHT)
}

/// A topic while merging sources.
#[derive(Default)]
struct Merged {
    score: f64,
    sources: BTreeSet<String>,
    /// The hashtag from our own prompts, preferred: creators typed it.
    computed_tag: Option<String>,
    /// The first imported row's hashtag, the fallback.
    imported_tag: Option<String>,
}

/// How much more a hashtag the creator typed counts than a keyword. Without it, the words of
/// a common phrasing ("join us for", "new drop") outrank the subjects creators tag.
pub const HASHTAG_WEIGHT: f64 = 2.0;

/// Whether `tag` (lowercase, with `#`) appears in `lower` as a whole hashtag.
fn typed(lower: &str, tag: &str) -> bool {
    lower.match_indices(tag).any(|(i, _)| {
        lower[i + tag.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

/// Our own topics, scored by decayed, rating-weighted prompt counts, with their hashtags.
///
/// Each creator counts once per topic, with their best-weighted prompt of the window: one
/// account prompting a word a hundred times weighs what one prompt does, so no single account
/// can put a word into the public trends.
fn computed_scores(
    events: &[PromptEvent],
    now: DateTime<Utc>,
    settings: &RankSettings,
) -> HashMap<String, (f64, String)> {
    let mut best: HashMap<(uuid::Uuid, String), f64> = HashMap::new();
    let mut tags: HashMap<String, String> = HashMap::new();
    for e in events {
        let Some(decay) = decay(e.at, now, settings) else {
            continue;
        };
        let weight = rating_weight(e) * decay;
        let lower = e.prompt.to_lowercase();
        for (topic, tag) in topics_of(&e.prompt) {
            // A hashtag the creator typed says "this is the topic" more than a word does.
            let weight = if typed(&lower, &tag) {
                weight * HASHTAG_WEIGHT
            } else {
                weight
            };
            // The first event's hashtag for a topic is kept (the service lists newest first).
            tags.entry(topic.clone()).or_insert(tag);
            let b = best.entry((e.creator, topic)).or_insert(0.0);
            *b = b.max(weight);
        }
    }
    let mut scores: HashMap<String, (f64, String)> = HashMap::new();
    for ((_, topic), weight) in best {
        let tag = tags.get(&topic).cloned().unwrap_or_default();
        scores.entry(topic).or_insert((0.0, tag)).0 += weight;
    }
    scores
}

/// What the feeds contribute.
struct ImportedScores {
    /// Per source, per topic: the normalised, decayed score.
    by_source: HashMap<String, HashMap<String, f64>>,
    /// Per topic, the hashtag of the first imported row listing it.
    tags: HashMap<String, String>,
}

/// Per source, per topic: the row's score divided by the source's maximum, decayed; the best
/// such value when a source lists a topic more than once (a feed re-listing a topic every
/// hour must not count it every hour). Also each topic's first imported hashtag.
fn imported_scores(
    imported: &[ImportedTrend],
    now: DateTime<Utc>,
    settings: &RankSettings,
) -> ImportedScores {
    struct Source {
        /// The largest raw score in the window: the source's scale.
        max: f64,
        /// Per topic, the largest decayed raw score.
        best: HashMap<String, f64>,
    }
    let mut sources: HashMap<String, Source> = HashMap::new();
    let mut tags: HashMap<String, String> = HashMap::new();
    for t in imported {
        if !t.score.is_finite() || t.score <= 0.0 {
            continue;
        }
        let Some(decay) = decay(t.observed_at, now, settings) else {
            continue;
        };
        let Some(topic) = normalise_topic(&t.topic) else {
            continue;
        };
        let source = t.source.trim().to_lowercase();
        // The computed label is ours alone: a stored row claiming it would pass off a feed's
        // opinion as what creators did.
        if source.is_empty() || source == COMPUTED_SOURCE {
            continue;
        }
        tags.entry(topic.clone()).or_insert_with(|| {
            normalise_hashtag(&t.hashtag).unwrap_or_else(|| hashtag_for(&topic))
        });
        let s = sources.entry(source).or_insert_with(|| Source {
            max: 0.0,
            best: HashMap::new(),
        });
        s.max = s.max.max(t.score);
        let best = s.best.entry(topic).or_insert(0.0);
        *best = best.max(t.score * decay);
    }
    let by_source = sources
        .into_iter()
        .map(|(name, s)| {
            // Dividing by the raw maximum (not the largest decayed value) keeps an old feed
            // old: its best row a day ago still counts half.
            let scores = s
                .best
                .into_iter()
                .map(|(topic, v)| (topic, v / s.max))
                .collect();
            (name, scores)
        })
        .collect();
    ImportedScores { by_source, tags }
}

/// The trends at `now`, hottest first, at most `settings.limit` of them.
///
/// Scores: our prompts' topics (decayed, rating-weighted, divided by our best topic) plus each
/// feed's rows (decayed, divided by that feed's best row), summed per normalised topic. Ties
/// (within 1e-9) go to the topic more sources agree on, then alphabetically, so the same input
/// always gives the same order.
pub fn rank(
    events: &[PromptEvent],
    imported: &[ImportedTrend],
    now: DateTime<Utc>,
    settings: &RankSettings,
) -> Vec<Trend> {
    let mut merged: HashMap<String, Merged> = HashMap::new();

    let computed = computed_scores(events, now, settings);
    let max = computed.values().map(|(s, _)| *s).fold(0.0, f64::max);
    for (topic, (score, tag)) in computed {
        let m = merged.entry(topic).or_default();
        // A decay that underflowed to zero everywhere leaves nothing to divide by.
        m.score += if max > 0.0 { score / max } else { 0.0 };
        m.sources.insert(COMPUTED_SOURCE.to_owned());
        m.computed_tag = Some(tag);
    }

    let ImportedScores {
        by_source,
        mut tags,
    } = imported_scores(imported, now, settings);
    for (source, scores) in by_source {
        for (topic, score) in scores {
            let m = merged.entry(topic.clone()).or_default();
            m.score += score;
            m.sources.insert(source.clone());
            if m.imported_tag.is_none() {
                m.imported_tag = tags.remove(&topic);
            }
        }
    }

    let mut trends: Vec<Trend> = merged
        .into_iter()
        .map(|(topic, m)| Trend {
            hashtag: m
                .computed_tag
                .or(m.imported_tag)
                .unwrap_or_else(|| hashtag_for(&topic)),
            sources: m.sources.into_iter().collect(),
            score: m.score,
            topic,
        })
        .collect();
    sort_hottest_first(&mut trends);
    trends.truncate(settings.limit);
    trends
}

/// Score descending; scores within [`TIE_EPSILON`] of each other form one band, ordered by
/// number of sources (descending), then topic.
///
/// Comparing with an epsilon inside `sort_by` would not be a total order (a ≈ b and b ≈ c but
/// not a ≈ c), which the standard sort may panic on; so the bands are computed first from the
/// exactly sorted scores, and the final sort compares band numbers.
fn sort_hottest_first(trends: &mut Vec<Trend>) {
    trends.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.topic.cmp(&b.topic))
    });
    let mut band = 0usize;
    let mut previous: Option<f64> = None;
    let mut banded: Vec<(usize, Trend)> = trends
        .drain(..)
        .map(|t| {
            if previous.is_some_and(|p| p - t.score > TIE_EPSILON) {
                band += 1;
            }
            previous = Some(t.score);
            (band, t)
        })
        .collect();
    banded.sort_by(|(band_a, a), (band_b, b)| {
        band_a
            .cmp(band_b)
            .then_with(|| b.sources.len().cmp(&a.sources.len()))
            .then_with(|| a.topic.cmp(&b.topic))
    });
    trends.extend(banded.into_iter().map(|(_, t)| t));
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_typed_hashtag_counts_double() {
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 22, 12, 0, 0).unwrap();
        let event = |prompt: &str| PromptEvent {
            prompt: prompt.to_owned(),
            creator: someone(),
            at: now,
            rating_sum: 0,
            rating_count: 0,
        };
        let s = RankSettings::default();
        let ranked = rank(
            &[
                event("lemons #citrus"),
                event("citrus lemons"),
                event("#citruses galore"),
            ],
            &[],
            now,
            &s,
        );
        // citrus: 2 (typed) + 1 (word) = 3, the maximum; lemons 1 + 1 = 2; "#citruses" is
        // another hashtag, not a typed #citrus.
        assert_eq!(ranked[0].topic, "citrus");
        let lemons = ranked.iter().find(|t| t.topic == "lemons").unwrap().score;
        assert!((lemons - 2.0 / 3.0).abs() < 1e-9, "{lemons}");
        assert!(typed("a #tag here", "#tag"));
        assert!(!typed("a #tags here", "#tag"));
        assert!(typed("end #tag", "#tag"));
    }

    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    /// A creator of their own: each test event is a different account unless it says not.
    fn someone() -> uuid::Uuid {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        uuid::Uuid::from_u128(u128::from(
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        ))
    }

    fn event(prompt: &str, hours_ago: i64) -> PromptEvent {
        PromptEvent {
            prompt: prompt.to_owned(),
            creator: someone(),
            at: now() - TimeDelta::hours(hours_ago),
            rating_sum: 0,
            rating_count: 0,
        }
    }

    fn rated(prompt: &str, rating_sum: i64, rating_count: i64) -> PromptEvent {
        PromptEvent {
            rating_sum,
            rating_count,
            ..event(prompt, 0)
        }
    }

    fn feed(topic: &str, source: &str, score: f64, hours_ago: i64) -> ImportedTrend {
        ImportedTrend {
            topic: topic.to_owned(),
            hashtag: String::new(),
            source: source.to_owned(),
            score,
            observed_at: now() - TimeDelta::hours(hours_ago),
        }
    }

    fn score(ranked: &[Trend], topic: &str) -> f64 {
        ranked
            .iter()
            .find(|t| t.topic == topic)
            .map_or(0.0, |t| t.score)
    }

    fn topics(ranked: &[Trend]) -> Vec<&str> {
        ranked.iter().map(|t| t.topic.as_str()).collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(t, h)| ((*t).to_owned(), (*h).to_owned()))
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn prompts_give_hashtags_first_then_keywords_in_order() {
        assert_eq!(
            topics_of("Sunset over Lisbon rooftops #GoldenHour #travel, with coffee"),
            pairs(&[
                ("goldenhour", "#goldenhour"),
                ("travel", "#travel"),
                ("sunset", "#sunset"),
                ("lisbon", "#lisbon"),
                ("rooftops", "#rooftops"),
                ("coffee", "#coffee"),
            ])
        );
    }

    #[test]
    fn hashtags_keep_underscores_in_the_tag_and_only_start_words() {
        assert_eq!(
            topics_of("#Golden_Hour issue#42 C# ##night"),
            pairs(&[
                ("goldenhour", "#golden_hour"),
                ("night", "#night"),
                ("issue", "#issue"),
            ]),
            "`issue#42` and `C#` are not hashtags; the words of `#golden_hour` are not keywords"
        );
        // A one-letter hashtag is no topic; a typed hashtag counts even when it is filler.
        assert_eq!(topics_of("#a #photo"), pairs(&[("photo", "#photo")]));
    }

    #[test]
    fn filler_short_words_and_numbers_are_not_topics() {
        assert!(topics_of("a photo of the image with some style, from 2026 in 4k").is_empty());
        assert!(topics_of("").is_empty());
        assert!(topics_of("   !!! ,,, ").is_empty());
        assert_eq!(
            topics_of("Very BEAUTIFUL café lattes"),
            pairs(&[("café", "#café"), ("lattes", "#lattes")])
        );
    }

    #[test]
    fn a_topic_counts_once_per_prompt() {
        assert_eq!(
            topics_of("#coffee coffee COFFEE beans, Coffee beans"),
            pairs(&[("coffee", "#coffee"), ("beans", "#beans")])
        );
        // Only once in the ranking too: the repeated prompt weighs like any other.
        let ranked = rank(
            &[event("coffee coffee coffee", 0), event("beans", 0)],
            &[],
            now(),
            &RankSettings::default(),
        );
        assert!(close(score(&ranked, "coffee"), score(&ranked, "beans")));
    }

    #[test]
    fn a_long_prompt_adds_at_most_eight_topics_hashtags_first() {
        let long = "alpha bravo charlie delta echoes foxtrot golfing hotel indigo juliet #kilo";
        let got = topics_of(long);
        assert_eq!(got.len(), MAX_TOPICS_PER_PROMPT);
        assert_eq!(got[0].0, "kilo");
        assert_eq!(got[7].0, "golfing");
    }

    #[test]
    fn the_stopword_list_is_sorted_lowercase_and_long_enough() {
        assert!(
            STOPWORDS.windows(2).all(|w| w[0] < w[1]),
            "sorted, no repeats"
        );
        assert!(STOPWORDS.iter().all(|w| *w == w.to_lowercase()));
        assert!(STOPWORDS.len() >= 80, "{}", STOPWORDS.len());
        for filler in [
            "photo", "image", "picture", "style", "with", "over", "under", "from",
        ] {
            assert!(topics_of(filler).is_empty(), "{filler}");
        }
    }

    #[test]
    fn topics_are_normalised() {
        let n = |s: &str| normalise_topic(s);
        assert_eq!(n("  #Golden   Hour "), Some("golden hour".to_owned()));
        assert_eq!(n("Black-Friday!"), Some("black-friday".to_owned()));
        assert_eq!(n("tea\tand\ncake"), Some("tea and cake".to_owned()));
        assert_eq!(n("golden_hour"), Some("goldenhour".to_owned()));
        assert_eq!(n("Ünïcode Straße"), Some("ünïcode straße".to_owned()));
        assert_eq!(n("ab"), Some("ab".to_owned()));
        assert_eq!(n(&"a".repeat(40)), Some("a".repeat(40)));
        assert_eq!(n(&"a".repeat(41)), None);
        assert_eq!(n("x"), None);
        assert_eq!(n("#"), None);
        assert_eq!(n(""), None);
        assert_eq!(n(" !? "), None);
        assert_eq!(n("- -"), None);
        assert_eq!(n("#--"), None);
    }

    #[test]
    fn hashtags_are_derived_and_normalised() {
        assert_eq!(hashtag_for("golden hour"), "#goldenhour");
        assert_eq!(hashtag_for("black-friday sale"), "#blackfridaysale");
        assert_eq!(
            normalise_hashtag(" #GoldenHour "),
            Some("#goldenhour".to_owned())
        );
        assert_eq!(
            normalise_hashtag("golden_hour"),
            Some("#golden_hour".to_owned())
        );
        assert_eq!(normalise_hashtag("#x"), Some("#x".to_owned()));
        assert_eq!(normalise_hashtag("#no spaces"), None);
        assert_eq!(normalise_hashtag("#"), None);
        assert_eq!(normalise_hashtag(""), None);
        assert_eq!(normalise_hashtag(&format!("#{}", "a".repeat(41))), None);
    }

    #[test]
    fn a_day_old_prompt_counts_half_of_a_fresh_one() {
        let s = RankSettings::default();
        let ranked = rank(
            &[event("stale bread", 24), event("fresh lemons", 0)],
            &[],
            now(),
            &s,
        );
        assert_eq!(topics(&ranked), vec!["fresh", "lemons", "bread", "stale"]);
        let ratio = score(&ranked, "stale") / score(&ranked, "fresh");
        assert!(close(ratio, 0.5), "{ratio}");

        // The same prompt, fresh and then a day old, next to a fixed anchor that sets the
        // scale (twice as hot, so it stays the maximum).
        let with = |hours_ago| {
            let events = [
                event("anchor", 0),
                event("anchor", 0),
                event("lemons", hours_ago),
            ];
            score(&rank(&events, &[], now(), &s), "lemons")
        };
        let (fresh, day_old, half_day) = (with(0), with(24), with(12));
        assert!(close(fresh, 0.5), "{fresh}");
        assert!(close(day_old / fresh, 0.5), "{day_old}");
        assert!(close(half_day / fresh, 0.5f64.sqrt()), "{half_day}");
    }

    #[test]
    fn a_zero_half_life_turns_decay_off() {
        let s = RankSettings {
            half_life: TimeDelta::zero(),
            ..Default::default()
        };
        let ranked = rank(&[event("stale", 100), event("fresh", 0)], &[], now(), &s);
        assert!(close(score(&ranked, "stale"), 1.0));
        assert!(close(score(&ranked, "fresh"), 1.0));
    }

    #[test]
    fn only_the_window_counts_and_the_future_is_ignored() {
        let s = RankSettings::default();
        let mut just_ahead = event("ahead", 0);
        just_ahead.at = now() + TimeDelta::seconds(1);
        let mut feed_ahead = feed("tomorrow", "wire", 5.0, 0);
        feed_ahead.observed_at = now() + TimeDelta::seconds(1);
        let ranked = rank(
            &[
                event("ancient ruins", 8 * 24),
                event("futures", -2),
                just_ahead,
                event("present", 1),
                event("edge", 7 * 24),
            ],
            &[
                feed("old news", "wire", 5.0, 8 * 24),
                feed_ahead,
                feed("still here", "wire", 1.0, 7 * 24),
            ],
            now(),
            &s,
        );
        // The 7-day-old event and row sit exactly on the window's edge and still count.
        assert_eq!(topics(&ranked), vec!["present", "edge", "still here"]);
        assert_eq!(ranked[2].sources, vec!["wire"]);
    }

    #[test]
    fn ratings_raise_and_lower_a_prompt() {
        let s = RankSettings::default();
        let ranked = rank(
            &[
                rated("loved", 10, 2),   // 5 stars: weight 2
                rated("liked", 8, 2),    // 4 stars: 1.5
                event("plain", 0),       // unrated: 1
                rated("neutral", 6, 2),  // 3 stars: 1
                rated("meh", 4, 2),      // 2 stars: 0.5 (three letters: not a keyword)
                rated("disliked", 4, 2), // 2 stars: 0.5
                rated("hated", 2, 2),    // 1 star: 0, floored at 0.25
            ],
            &[],
            now(),
            &s,
        );
        assert_eq!(
            topics(&ranked),
            vec!["loved", "liked", "neutral", "plain", "disliked", "hated"]
        );
        // Normalised by the best (loved, 2).
        assert!(close(score(&ranked, "loved"), 1.0));
        assert!(close(score(&ranked, "liked"), 0.75));
        assert!(close(score(&ranked, "plain"), 0.5));
        assert!(close(score(&ranked, "neutral"), 0.5));
        assert!(close(score(&ranked, "disliked"), 0.25));
        assert!(close(score(&ranked, "hated"), 0.125));
    }

    #[test]
    fn ties_break_by_number_of_sources_then_alphabetically() {
        let s = RankSettings::default();
        let events = [event("zebra", 0), event("apple", 0)];
        let imported = [
            feed("mango", "wire", 1.0, 0),
            feed("kiwi", "wire", 0.5, 0),
            feed("banana", "pulse", 2.0, 0),
            feed("kiwi", "pulse", 1.0, 0),
        ];
        let ranked = rank(&events, &imported, now(), &s);
        // Every topic scores 1.0; kiwi's is 0.5 + 0.5 from two sources, so it leads.
        assert!(ranked.iter().all(|t| close(t.score, 1.0)), "{ranked:?}");
        assert_eq!(
            topics(&ranked),
            vec!["kiwi", "apple", "banana", "mango", "zebra"]
        );
        // The same in any input order.
        let mut reversed_events = events.to_vec();
        reversed_events.reverse();
        let mut reversed_imported = imported.to_vec();
        reversed_imported.reverse();
        assert_eq!(
            rank(&reversed_events, &reversed_imported, now(), &s),
            ranked
        );
    }

    #[test]
    fn scores_within_the_epsilon_are_ties() {
        let s = RankSettings::default();
        let ranked = rank(
            &[],
            &[
                feed("zeta", "wire", 1.0, 0),
                feed("alpha", "wire", 1.0 - 1e-12, 0),
                feed("beta", "wire", 0.5, 0),
            ],
            now(),
            &s,
        );
        assert_eq!(topics(&ranked), vec!["alpha", "zeta", "beta"]);
    }

    #[test]
    fn imported_and_computed_merge_labelled_by_every_source() {
        let s = RankSettings::default();
        let mut tagged = feed("#Coffee", "trendwire", 900.0, 0);
        tagged.hashtag = "#CoffeeTime".to_owned();
        let mut golden = feed("Golden  Hour", "TrendWire", 3000.0, 0);
        golden.hashtag = "#GoldenHour".to_owned();
        let mut broken_tag = feed("golden hour", "socialpulse", 8.0, 0);
        broken_tag.hashtag = "not a tag!".to_owned();
        let ranked = rank(
            &[event("morning coffee ritual", 0), event("coffee beans", 0)],
            &[
                tagged,
                golden,
                broken_tag,
                feed("coffee", "socialpulse", 4.0, 0),
                feed("new thing", "socialpulse", 2.0, 0),
            ],
            now(),
            &s,
        );
        let find = |topic: &str| ranked.iter().find(|t| t.topic == topic).unwrap();
        let coffee = find("coffee");
        assert_eq!(
            coffee.sources,
            vec!["socialcraft", "socialpulse", "trendwire"]
        );
        // Ours (1.0) + socialpulse (4 / 8) + trendwire (900 / 3000).
        assert!(close(coffee.score, 1.8), "{}", coffee.score);
        assert_eq!(coffee.hashtag, "#coffee", "our own hashtag wins");
        let golden = find("golden hour");
        assert_eq!(golden.sources, vec!["socialpulse", "trendwire"]);
        assert!(close(golden.score, 2.0), "{}", golden.score);
        assert_eq!(
            golden.hashtag, "#goldenhour",
            "the first imported tag, lowercased"
        );
        let new = find("new thing");
        assert_eq!(new.sources, vec!["socialpulse"]);
        assert_eq!(new.hashtag, "#newthing");
        assert_eq!(find("morning").sources, vec!["socialcraft"]);
        assert_eq!(topics(&ranked)[..2], ["golden hour", "coffee"]);
    }

    #[test]
    fn a_feed_in_the_thousands_does_not_drown_our_topics() {
        let s = RankSettings::default();
        let ranked = rank(
            &[event("lemons", 0), event("lemons", 0), event("limes", 0)],
            &[
                feed("tea", "bigfeed", 5000.0, 0),
                feed("cocoa", "bigfeed", 2500.0, 0),
            ],
            now(),
            &s,
        );
        assert_eq!(topics(&ranked), vec!["lemons", "tea", "cocoa", "limes"]);
        assert!(close(score(&ranked, "lemons"), 1.0));
        assert!(close(score(&ranked, "tea"), 1.0));
        assert!(close(score(&ranked, "cocoa"), 0.5));
        assert!(close(score(&ranked, "limes"), 0.5));
    }

    #[test]
    fn a_source_listing_a_topic_twice_counts_its_best_decayed_row() {
        let s = RankSettings::default();
        let ranked = rank(
            &[],
            &[
                feed("tea", "wire", 100.0, 0),
                feed("tea", "wire", 100.0, 24),
                feed("cocoa", "wire", 100.0, 48), // decays to 0.25 ...
                feed("cocoa", "wire", 60.0, 0),   // ... so this fresher, lower row wins
            ],
            now(),
            &s,
        );
        assert!(close(score(&ranked, "tea"), 1.0));
        assert!(close(score(&ranked, "cocoa"), 0.6));
    }

    #[test]
    fn unusable_imported_rows_are_ignored_and_do_not_set_the_scale() {
        let s = RankSettings::default();
        let mut reserved = feed("stolen", COMPUTED_SOURCE, 1.0, 0);
        reserved.source = "SocialCraft".to_owned();
        let ranked = rank(
            &[],
            &[
                feed("infinite", "wire", f64::INFINITY, 0),
                feed("nan", "wire", f64::NAN, 0),
                feed("negative", "wire", -5.0, 0),
                feed("zero", "wire", 0.0, 0),
                feed("!", "wire", 50.0, 0),
                feed("nameless", " ", 50.0, 0),
                reserved,
                feed("real", "wire", 4.0, 0),
                feed("half", "wire", 2.0, 0),
            ],
            now(),
            &s,
        );
        assert_eq!(topics(&ranked), vec!["real", "half"]);
        assert!(close(score(&ranked, "half"), 0.5));
    }

    #[test]
    fn the_limit_holds() {
        let events: Vec<_> = ["alpha", "bravo", "charlie", "delta", "echo"]
            .iter()
            .map(|p| event(p, 0))
            .collect();
        let three = RankSettings {
            limit: 3,
            ..Default::default()
        };
        assert_eq!(
            topics(&rank(&events, &[], now(), &three)),
            vec!["alpha", "bravo", "charlie"]
        );
        let none = RankSettings {
            limit: 0,
            ..Default::default()
        };
        assert!(rank(&events, &[], now(), &none).is_empty());
        assert_eq!(RankSettings::default().limit, 12);
    }

    #[test]
    fn one_creator_counts_once_per_topic_with_their_best_prompt() {
        let spammer = someone();
        let mut events: Vec<PromptEvent> = (0..100)
            .map(|i| PromptEvent {
                creator: spammer,
                ..event("cheap pills cheap pills", i % 24)
            })
            .collect();
        // Two other creators prompt about otters once each.
        events.push(event("Otters holding hands", 0));
        events.push(event("Otters asleep", 0));
        let ranked = rank(&events, &[], now(), &RankSettings::default());
        // The hundred prompts weigh what the spammer's freshest one does: one, half of the
        // otters' two (scores are divided by the best).
        assert!(close(score(&ranked, "otters"), 1.0), "{ranked:?}");
        assert!(close(score(&ranked, "pills"), 0.5), "{ranked:?}");
        // Ratings still weigh: the same creator's well-rated prompt is their best one.
        let rated_events = vec![
            PromptEvent {
                creator: spammer,
                ..rated("Lisbon trams", 50, 10)
            },
            PromptEvent {
                creator: spammer,
                ..event("Lisbon trams", 0)
            },
            event("Lisbon tiles", 0),
        ];
        let ranked = rank(&rated_events, &[], now(), &RankSettings::default());
        // 5 stars weigh 2, the plain prompt 1: trams (2) over tiles (1), lisbon (2 + 1).
        assert!(
            close(score(&ranked, "trams") * 1.5, score(&ranked, "lisbon")),
            "{ranked:?}"
        );
        assert!(
            close(score(&ranked, "tiles") * 3.0, score(&ranked, "lisbon")),
            "{ranked:?}"
        );
    }

    #[test]
    fn nothing_in_gives_nothing_out() {
        let s = RankSettings::default();
        assert!(rank(&[], &[], now(), &s).is_empty());
        assert!(rank(&[event("a photo of it", 0)], &[], now(), &s).is_empty());
    }
}
