//! External trend feeds: JSON (an array of objects) or CSV (a header row naming the columns),
//! with the fields `topic`, `hashtag` (optional), `source`, `score` and `observed_at`.
//!
//! A file that cannot be read as a whole is a [`FeedError`] and imports nothing. A bad row is
//! a [`RowError`] carrying the line it starts on in the file, so whoever fixes the feed can go
//! straight to it; it is skipped and the rest imports.

use std::path::Path;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::COMPUTED_SOURCE;
use super::rank::{ImportedTrend, hashtag_for, normalise_hashtag, normalise_topic};

/// Most rows one feed may hold; a bigger file is refused whole rather than half imported.
pub const MAX_ROWS: usize = 50_000;

/// How far past `now` an `observed_at` may be: other systems' clocks drift a little, but a
/// row from next week is a mistake (and would otherwise sit on top of the ranking).
const FUTURE_SLACK: TimeDelta = TimeDelta::minutes(5);
/// Longest source name, in characters: it is shown as a label on the create page.
const MAX_SOURCE_CHARS: usize = 40;
/// How much of a bad value an error message quotes, so a runaway field cannot bloat the report.
const QUOTED_CHARS: usize = 60;

/// A feed's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedFormat {
    /// An array of objects.
    Json,
    /// A header row naming the columns, then one row per trend.
    Csv,
}

impl FeedFormat {
    /// The format of an uploaded or read file: by the file name's extension (`.json`,
    /// `.csv`), else by the content type (containing `json` or `csv`), else by the body (JSON
    /// when its first non-blank character is `[` or `{`, CSV otherwise). The name wins because
    /// browsers and tools often send CSV as `application/octet-stream` or `text/plain`.
    pub fn detect(file_name: Option<&str>, content_type: Option<&str>, body: &str) -> FeedFormat {
        let extension = file_name
            .and_then(|n| Path::new(n).extension())
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("json") => return FeedFormat::Json,
            Some("csv") => return FeedFormat::Csv,
            _ => {}
        }
        if let Some(ct) = content_type.map(str::to_ascii_lowercase) {
            if ct.contains("json") {
                return FeedFormat::Json;
            }
            if ct.contains("csv") {
                return FeedFormat::Csv;
            }
        }
        let first = body
            .chars()
            .find(|c| !c.is_whitespace() && *c != BYTE_ORDER_MARK);
        match first {
            Some('[' | '{') => FeedFormat::Json,
            _ => FeedFormat::Csv,
        }
    }
}

/// Spreadsheet programs start UTF-8 exports with it; it is not part of the data.
const BYTE_ORDER_MARK: char = '\u{feff}';

/// A skipped row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// The 1-based line of the file where the row starts (a CSV's header is line 1).
    pub line: usize,
    /// What is wrong, naming the field(s) (`score: "lots" is not a number`).
    pub message: String,
}

/// What a feed held: the rows that passed, and the rows skipped with why.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeedReport {
    /// Valid rows, in file order, normalised for storage.
    pub rows: Vec<ImportedTrend>,
    /// Skipped rows, in file order.
    pub errors: Vec<RowError>,
}

/// A feed that cannot be read as a whole; nothing of it is imported.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// Nothing but whitespace.
    #[error("the feed is empty")]
    Empty,
    /// Not JSON at all (a syntax error, or cut short).
    #[error("the feed is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not an array of objects.
    #[error("the feed must be a JSON array of trend objects")]
    NotArrayOfObjects,
    /// A CSV whose header row lacks a required column (or that has no header row).
    #[error("the CSV header row has no `{0}` column (it needs topic, source, score, observed_at)")]
    MissingColumn(&'static str),
    /// A CSV whose header row cannot be read.
    #[error("the CSV cannot be read: {0}")]
    Csv(String),
    /// More than [`MAX_ROWS`] rows.
    #[error("the feed has more than {MAX_ROWS} rows; split it")]
    TooManyRows,
}

/// A row's fields before validation; `None` when absent or empty.
#[derive(Debug, Default)]
struct Fields {
    topic: Option<String>,
    hashtag: Option<String>,
    source: Option<String>,
    score: Option<Score>,
    observed_at: Option<String>,
}

/// A score as the file wrote it: CSV has only text, JSON may quote numbers.
#[derive(Debug)]
enum Score {
    Number(f64),
    Text(String),
}

/// Rows as read, each with its line: the fields, or why they could not be read.
type Rows = Vec<(usize, Result<Fields, Vec<String>>)>;

/// Reads `body` as `format` and validates every row; `now` bounds `observed_at`.
pub fn parse(body: &str, format: FeedFormat, now: DateTime<Utc>) -> Result<FeedReport, FeedError> {
    // Line numbers are unaffected: the mark sits before the first character of line 1.
    let body = body.strip_prefix(BYTE_ORDER_MARK).unwrap_or(body);
    if body.trim().is_empty() {
        return Err(FeedError::Empty);
    }
    let rows = match format {
        FeedFormat::Json => json_rows(body)?,
        FeedFormat::Csv => csv_rows(body)?,
    };
    let mut report = FeedReport::default();
    for (line, fields) in rows {
        match fields.and_then(|f| validate(f, now)) {
            Ok(trend) => report.rows.push(trend),
            Err(problems) => report.errors.push(RowError {
                line,
                message: problems.join("; "),
            }),
        }
    }
    Ok(report)
}

/// Splits a JSON array into its elements, each with the line it starts on, then reads each on
/// its own so one bad element costs one row, not the file.
fn json_rows(body: &str) -> Result<Rows, FeedError> {
    let elements: Vec<&RawValue> = serde_json::from_str(body).map_err(|e| match e.classify() {
        // Well-formed JSON of the wrong shape (an object, a number…).
        serde_json::error::Category::Data => FeedError::NotArrayOfObjects,
        _ => FeedError::NotJson(e.to_string()),
    })?;
    if elements.len() > MAX_ROWS {
        return Err(FeedError::TooManyRows);
    }
    let mut lines = LineCounter::new(body);
    let mut rows: Rows = Vec::with_capacity(elements.len());
    let mut any_object = false;
    for element in elements {
        // The elements borrow from `body`, so the distance between their addresses is the
        // element's byte offset (serde_json reports positions only for errors).
        let offset = (element.get().as_ptr() as usize).checked_sub(body.as_ptr() as usize);
        let line = offset.map_or(0, |o| lines.line_at(o));
        let fields = match serde_json::from_str::<Value>(element.get()) {
            Ok(Value::Object(object)) => {
                any_object = true;
                json_fields(&object)
            }
            Ok(other) => Err(vec![format!(
                "not a trend object but {}",
                json_kind(&other)
            )]),
            // Syntax was checked above; this is e.g. a number too large for a float.
            Err(e) => Err(vec![format!("unreadable element: {e}")]),
        };
        rows.push((line, fields));
    }
    // `[1, 2, 3]` is not a feed with three bad rows, it is not a feed.
    if !rows.is_empty() && !any_object {
        return Err(FeedError::NotArrayOfObjects);
    }
    Ok(rows)
}

/// Turns byte offsets into 1-based line numbers, counting each line break once: offsets come
/// in increasing order, and rescanning from the start for every row would be quadratic on a
/// large feed. A line break is `\n`, `\r\n` or a lone `\r`, as the csv crate reads them.
struct LineCounter<'a> {
    body: &'a [u8],
    scanned: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(body: &'a str) -> Self {
        Self {
            body: body.as_bytes(),
            scanned: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.body.len());
        if offset < self.scanned {
            // Offsets never go back for rows in order; counted afresh to stay correct anyway.
            return 1 + self.breaks(0, offset);
        }
        self.line += self.breaks(self.scanned, offset);
        self.scanned = offset;
        self.line
    }

    /// Line breaks starting in `from..to`.
    fn breaks(&self, from: usize, to: usize) -> usize {
        (from..to)
            .filter(|&i| match self.body[i] {
                b'\n' => true,
                // The `\r` of a `\r\n` is not a break of its own.
                b'\r' => self.body.get(i + 1) != Some(&b'\n'),
                _ => false,
            })
            .count()
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object's fields, keys matched case-insensitively like CSV headers. `null` and `""`
/// mean absent; a value of the wrong type is a problem naming the field.
fn json_fields(object: &serde_json::Map<String, Value>) -> Result<Fields, Vec<String>> {
    let get = |name: &str| {
        object
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let mut problems = Vec::new();
    let mut text = |name: &str| match get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => non_empty(s),
        Some(other) => {
            problems.push(format!(
                "{name}: must be a string, not {}",
                json_kind(other)
            ));
            None
        }
    };
    let mut fields = Fields {
        topic: text("topic"),
        hashtag: text("hashtag"),
        source: text("source"),
        observed_at: text("observed_at"),
        score: None,
    };
    fields.score = match get("score") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64().map(Score::Number),
        Some(Value::String(s)) => non_empty(s).map(Score::Text),
        Some(other) => {
            problems.push(format!("score: must be a number, not {}", json_kind(other)));
            None
        }
    };
    if problems.is_empty() {
        Ok(fields)
    } else {
        Err(problems)
    }
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// Reads a CSV by its header row (columns in any order, names case-insensitive, extra columns
/// ignored), each record with the file line it starts on.
fn csv_rows(body: &str) -> Result<Rows, FeedError> {
    let mut reader = csv::ReaderBuilder::new()
        // Short or long rows are reported per row (missing fields), not as a broken file.
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| FeedError::Csv(e.to_string()))?
        .clone();
    let column = |name: &str| {
        headers.iter().position(|h| {
            h.trim_start_matches(BYTE_ORDER_MARK)
                .trim()
                .eq_ignore_ascii_case(name)
        })
    };
    let required = |name: &'static str| column(name).ok_or(FeedError::MissingColumn(name));
    let topic = required("topic")?;
    let source = required("source")?;
    let score = required("score")?;
    let observed_at = required("observed_at")?;
    let hashtag = column("hashtag");

    let mut rows: Rows = Vec::new();
    let mut lines = LineCounter::new(body);
    let mut line_of = |position: Option<&csv::Position>| {
        let offset = position.map_or(body.len(), |p| {
            usize::try_from(p.byte()).unwrap_or(usize::MAX)
        });
        lines.line_at(record_start(body.as_bytes(), offset))
    };
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = line_of(e.position());
                rows.push((line, Err(vec![format!("unreadable row: {e}")])));
                continue;
            }
        };
        let line = line_of(record.position());
        // A row of empty cells (`,,,,`) is what spreadsheets leave at the end; not an error.
        if record.iter().all(str::is_empty) {
            continue;
        }
        let get = |i: usize| record.get(i).and_then(non_empty);
        rows.push((
            line,
            Ok(Fields {
                topic: get(topic),
                hashtag: hashtag.and_then(get),
                source: get(source),
                score: get(score).map(Score::Text),
                observed_at: get(observed_at),
            }),
        ));
        if rows.len() > MAX_ROWS {
            return Err(FeedError::TooManyRows);
        }
    }
    Ok(rows)
}

/// Where the record the csv crate placed at `offset` really starts.
///
/// The crate's position is where it started reading: before the `\n` of a CRLF ending the
/// previous record, and before any blank lines it skipped. Its own line numbers are off by one
/// for every row of a CRLF file (what spreadsheets write) and after blank lines, so the line is
/// counted here from the first byte of the record instead. No record starts with a line break
/// (that would be a blank line), so skipping them is safe.
fn record_start(body: &[u8], offset: usize) -> usize {
    let mut i = offset.min(body.len());
    while matches!(body.get(i), Some(b'\r' | b'\n')) {
        i += 1;
    }
    i
}

/// `value` in backticks for an error message, cut short if long.
fn quoted(value: &str) -> String {
    let mut shown: String = value.chars().take(QUOTED_CHARS).collect();
    if value.chars().nth(QUOTED_CHARS).is_some() {
        shown.push('…');
    }
    format!("`{shown}`")
}

/// Checks every field and normalises it for storage; all of a row's problems are reported
/// together, so one round of fixes is enough.
fn validate(f: Fields, now: DateTime<Utc>) -> Result<ImportedTrend, Vec<String>> {
    let mut problems = Vec::new();

    let topic = match f.topic.as_deref() {
        None => {
            problems.push("topic: missing".to_owned());
            None
        }
        Some(raw) => {
            let topic = normalise_topic(raw);
            if topic.is_none() {
                problems.push(format!(
                    "topic: {} must be 2 to 40 letters, digits, spaces or hyphens",
                    quoted(raw)
                ));
            }
            topic
        }
    };

    let hashtag = match f.hashtag.as_deref() {
        None => None,
        Some(raw) => {
            let tag = normalise_hashtag(raw);
            if tag.is_none() {
                problems.push(format!(
                    "hashtag: {} is not a hashtag (an optional # and 1 to 40 letters, digits \
                     or underscores)",
                    quoted(raw)
                ));
            }
            tag
        }
    };

    let source = match f.source.as_deref() {
        None => {
            problems.push("source: missing".to_owned());
            None
        }
        Some(raw) => {
            let source = raw.to_lowercase();
            let valid = (1..=MAX_SOURCE_CHARS).contains(&source.chars().count())
                && source.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
                });
            if !valid {
                problems.push(format!(
                    "source: {} must be 1 to 40 letters, digits, `-`, `_` or `.`",
                    quoted(raw)
                ));
                None
            } else if source == COMPUTED_SOURCE {
                // Our label means "creators here did this"; a feed may not claim it.
                problems.push(format!(
                    "source: `{COMPUTED_SOURCE}` is reserved for the trends computed here"
                ));
                None
            } else {
                Some(source)
            }
        }
    };

    let score = match f.score {
        None => {
            problems.push("score: missing".to_owned());
            None
        }
        Some(score) => {
            let (value, raw) = match score {
                Score::Number(n) => (Some(n), n.to_string()),
                Score::Text(t) => (t.parse::<f64>().ok(), t),
            };
            match value {
                None => {
                    problems.push(format!("score: {} is not a number", quoted(&raw)));
                    None
                }
                // `inf` and `NaN` parse as floats but rank nothing.
                Some(v) if !v.is_finite() || v < 0.0 => {
                    problems.push(format!(
                        "score: must be a finite number of at least 0, not {}",
                        quoted(&raw)
                    ));
                    None
                }
                // `-0` is a valid zero; store it as plain 0.
                Some(v) => Some(v.abs()),
            }
        }
    };

    let observed_at = match f.observed_at.as_deref() {
        None => {
            problems.push("observed_at: missing".to_owned());
            None
        }
        Some(raw) => match parse_time(raw) {
            None => {
                problems.push(format!(
                    "observed_at: {} is not an RFC 3339 time (2026-11-21T10:00:00Z) or a date \
                     (2026-11-21)",
                    quoted(raw)
                ));
                None
            }
            Some(t) if t.signed_duration_since(now) > FUTURE_SLACK => {
                problems.push(format!("observed_at: {} is in the future", quoted(raw)));
                None
            }
            Some(t) => Some(t),
        },
    };

    match (topic, source, score, observed_at) {
        (Some(topic), Some(source), Some(score), Some(observed_at)) if problems.is_empty() => {
            Ok(ImportedTrend {
                hashtag: hashtag.unwrap_or_else(|| hashtag_for(&topic)),
                topic,
                source,
                score,
                observed_at,
            })
        }
        _ => Err(problems),
    }
}

/// An RFC 3339 time in UTC, or a `YYYY-MM-DD` date as its midnight UTC (many feeds are daily).
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    fn csv(body: &str) -> FeedReport {
        parse(body, FeedFormat::Csv, now()).unwrap()
    }

    fn json(body: &str) -> FeedReport {
        parse(body, FeedFormat::Json, now()).unwrap()
    }

    fn lines(report: &FeedReport) -> Vec<usize> {
        report.errors.iter().map(|e| e.line).collect()
    }

    fn topics(report: &FeedReport) -> Vec<&str> {
        report.rows.iter().map(|t| t.topic.as_str()).collect()
    }

    /// The one error of a one-row CSV with the given cells (after the standard header).
    fn row_error(row: &str) -> String {
        let r = csv(&format!("topic,hashtag,source,score,observed_at\n{row}\n"));
        assert!(r.rows.is_empty(), "{row}: {:?}", r.rows);
        assert_eq!(lines(&r), vec![2], "{row}");
        r.errors[0].message.clone()
    }

    #[test]
    fn a_good_csv_imports_every_row_normalised() {
        let r = csv("topic,hashtag,source,score,observed_at\n\
                     Golden  Hour,#GoldenHour,TrendWire,120.5,2026-11-21T10:00:00Z\n\
                     coffee,,trendwire,3,2026-11-20\n\
                     late night,night_owl,wire.io,0,2026-11-22T13:04:00+01:00\n");
        assert_eq!(r.errors, vec![]);
        assert_eq!(
            r.rows[0],
            ImportedTrend {
                topic: "golden hour".to_owned(),
                hashtag: "#goldenhour".to_owned(),
                source: "trendwire".to_owned(),
                score: 120.5,
                observed_at: Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap(),
            }
        );
        assert_eq!(r.rows[1].hashtag, "#coffee", "derived from the topic");
        assert_eq!(
            r.rows[1].observed_at,
            Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap(),
            "a date is its midnight UTC"
        );
        assert_eq!(r.rows[2].hashtag, "#night_owl");
        assert_eq!(r.rows[2].source, "wire.io");
        assert_eq!(
            r.rows[2].observed_at,
            Utc.with_ymd_and_hms(2026, 11, 22, 12, 4, 0).unwrap(),
            "an offset is converted to UTC (and four minutes ahead is clock skew, allowed)"
        );
    }

    #[test]
    fn csv_columns_may_come_in_any_order_and_case_with_extras() {
        let r = csv("\u{feff}Score , extra, OBSERVED_AT,Source,Topic\n\
                     7,ignored,2026-11-21,wire,tea\n\
                     8,ignored,2026-11-21,wire,cake,and,more,cells\n\
                     ,,,,\n");
        assert_eq!(r.errors, vec![]);
        assert_eq!(topics(&r), vec!["tea", "cake"]);
        assert_eq!(r.rows[1].score, 8.0);
        assert_eq!(r.rows[0].hashtag, "#tea", "no hashtag column: derived");
    }

    #[test]
    fn bad_csv_rows_are_reported_by_file_line_and_the_rest_imports() {
        let r = csv("source,topic,score,observed_at,hashtag\n\
                     wire,good one,1,2026-11-21,\n\
                     wire,bad score,lots,2026-11-21,\n\
                     wire,from the future,1,2026-11-22T12:06:00Z,\n\
                     wire,,1,2026-11-21,\n\
                     socialcraft,reserved,1,2026-11-21,\n\
                     wire,\"coffee, tea\",2,2026-11-21,\n\
                     wire,\"a topic over\ntwo lines\",3,2026-11-21,\n\
                     wire,\"bad, tag\",1,2026-11-21,#no spaces\n\
                     \n\
                     wire,short row\n\
                     wire,last good,5,2026-11-21T00:00:00+02:00,\n");
        assert_eq!(lines(&r), vec![3, 4, 5, 6, 10, 12], "{:?}", r.errors);
        let messages: Vec<&str> = r.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages[0], "score: `lots` is not a number");
        assert_eq!(
            messages[1],
            "observed_at: `2026-11-22T12:06:00Z` is in the future"
        );
        assert_eq!(messages[2], "topic: missing");
        assert_eq!(
            messages[3],
            "source: `socialcraft` is reserved for the trends computed here"
        );
        assert!(
            messages[4].starts_with("hashtag: `#no spaces`"),
            "{}",
            messages[4]
        );
        assert_eq!(messages[5], "score: missing; observed_at: missing");
        // The quoted comma stays in its field (and normalising drops it); the quoted newline
        // makes its row span lines 8 and 9, and later rows keep their file line numbers.
        assert_eq!(
            topics(&r),
            vec![
                "good one",
                "coffee tea",
                "a topic over two lines",
                "last good"
            ]
        );
        assert_eq!(
            r.rows[3].observed_at,
            Utc.with_ymd_and_hms(2026, 11, 20, 22, 0, 0).unwrap()
        );
    }

    #[test]
    fn csv_lines_are_right_with_crlf_blank_lines_and_lone_cr() {
        let body = "topic,source,score,observed_at\n\
                    \n\
                    tea,wire,x,2026-11-21\n\
                    \n\
                    \n\
                    \"multi\nline\",wire,1,2026-11-21\n\
                    cake,wire,y,2026-11-21\n";
        assert_eq!(lines(&csv(body)), vec![3, 8]);
        let crlf = body.replace('\n', "\r\n");
        let r = csv(&crlf);
        assert_eq!(lines(&r), vec![3, 8]);
        assert_eq!(topics(&r), vec!["multi line"]);
        assert_eq!(lines(&csv(&body.replace('\n', "\r"))), vec![3, 8]);
    }

    #[test]
    fn every_field_is_checked_and_named() {
        let long = "a".repeat(41);
        let cases = [
            (format!("{long},,wire,1,2026-11-21"), "topic: `aaaa"),
            ("!?,,wire,1,2026-11-21".to_owned(), "topic: `!?` must be"),
            (format!("tea,#{long},wire,1,2026-11-21"), "hashtag: `#aaa"),
            ("tea,,,1,2026-11-21".to_owned(), "source: missing"),
            (
                "tea,,my feed,1,2026-11-21".to_owned(),
                "source: `my feed` must",
            ),
            (format!("tea,,{long},1,2026-11-21"), "source: `aaa"),
            (
                "tea,,wire,-1,2026-11-21".to_owned(),
                "score: must be a finite",
            ),
            (
                "tea,,wire,inf,2026-11-21".to_owned(),
                "score: must be a finite",
            ),
            (
                "tea,,wire,NaN,2026-11-21".to_owned(),
                "score: must be a finite",
            ),
            (
                "tea,,wire,1,yesterday".to_owned(),
                "observed_at: `yesterday` is not",
            ),
            (
                "tea,,wire,1,2026-13-01".to_owned(),
                "observed_at: `2026-13-01` is not",
            ),
            (
                "tea,,wire,1,2026-11-23".to_owned(),
                "observed_at: `2026-11-23` is in the future",
            ),
        ];
        for (row, start) in cases {
            let message = row_error(&row);
            assert!(message.starts_with(start), "{row}: {message}");
        }
        // Every problem of a row at once.
        assert_eq!(
            row_error("x,,,,"),
            "topic: `x` must be 2 to 40 letters, digits, spaces or hyphens; source: missing; \
             score: missing; observed_at: missing"
        );
        // A runaway value is quoted cut short.
        let message = row_error(&format!("{},,wire,1,2026-11-21", "b".repeat(500)));
        assert!(message.len() < 150, "{message}");
        assert!(message.contains('…'));
    }

    #[test]
    fn accepted_edge_values() {
        let r = csv("topic,source,score,observed_at\n\
                     ab,a,0,2026-11-22T12:05:00Z\n\
                     tea,Wire-2_b.C,-0,2026-11-21\n\
                     tea,wire,1e3,2026-11-21\n");
        assert_eq!(r.errors, vec![]);
        assert_eq!(r.rows[1].source, "wire-2_b.c", "lowercased");
        assert_eq!(r.rows[1].score.to_bits(), 0f64.to_bits(), "-0 stored as 0");
        assert_eq!(r.rows[2].score, 1000.0);
    }

    #[test]
    fn a_csv_without_a_required_column_is_refused_whole() {
        let refused = |body: &str| parse(body, FeedFormat::Csv, now());
        assert_eq!(
            refused("topic,source,observed_at\ntea,wire,2026-11-21\n"),
            Err(FeedError::MissingColumn("score"))
        );
        // A file whose first line is data has no header.
        assert_eq!(
            refused("tea,,wire,1,2026-11-21\n"),
            Err(FeedError::MissingColumn("topic"))
        );
        assert_eq!(refused(""), Err(FeedError::Empty));
        assert_eq!(refused(" \n\t\n"), Err(FeedError::Empty));
        assert_eq!(refused("\u{feff}"), Err(FeedError::Empty));
        // A header alone is a valid, empty feed.
        assert_eq!(
            refused("topic,source,score,observed_at\n"),
            Ok(FeedReport::default())
        );
        assert!(
            FeedError::MissingColumn("score")
                .to_string()
                .contains("`score`")
        );
    }

    #[test]
    fn more_than_the_row_limit_is_refused_whole() {
        let mut body = String::from("topic,source,score,observed_at\n");
        for _ in 0..MAX_ROWS {
            body.push_str("tea,wire,1,2026-11-21\n");
        }
        assert_eq!(csv(&body).rows.len(), MAX_ROWS);
        body.push_str("cake,wire,1,2026-11-21\n");
        assert_eq!(
            parse(&body, FeedFormat::Csv, now()),
            Err(FeedError::TooManyRows)
        );

        let row = r#"{"topic":"tea","source":"wire","score":1,"observed_at":"2026-11-21"}"#;
        let json_body = format!("[{}]", vec![row; MAX_ROWS + 1].join(",\n"));
        assert_eq!(
            parse(&json_body, FeedFormat::Json, now()),
            Err(FeedError::TooManyRows)
        );
        let json_body = format!("[{}]", vec![row; MAX_ROWS].join(",\n"));
        let r = json(&json_body);
        assert_eq!(r.rows.len(), MAX_ROWS);
    }

    #[test]
    fn a_good_json_feed_imports_every_row() {
        let r = json(
            r##"[{"topic": "Golden Hour", "hashtag": "#GoldenHour", "source": "TrendWire",
                 "score": 120.5, "observed_at": "2026-11-21T10:00:00Z"},
                {"Topic": "coffee", "hashtag": null, "source": "wire", "score": "3",
                 "observed_at": "2026-11-20", "extra": [1, 2]}]"##,
        );
        assert_eq!(r.errors, vec![]);
        assert_eq!(
            r.rows,
            vec![
                ImportedTrend {
                    topic: "golden hour".to_owned(),
                    hashtag: "#goldenhour".to_owned(),
                    source: "trendwire".to_owned(),
                    score: 120.5,
                    observed_at: Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap(),
                },
                ImportedTrend {
                    topic: "coffee".to_owned(),
                    hashtag: "#coffee".to_owned(),
                    source: "wire".to_owned(),
                    score: 3.0,
                    observed_at: Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap(),
                },
            ]
        );
        assert_eq!(json("[]"), FeedReport::default());
    }

    #[test]
    fn bad_json_elements_report_the_line_they_start_on() {
        let r = json(
            r##"[
  {"topic": "golden hour", "hashtag": "#goldenhour", "source": "wire", "score": 10,
   "observed_at": "2026-11-21T10:00:00Z"},
  {
    "topic": "negative",
    "source": "wire",
    "score": -1,
    "observed_at": "2026-11-21"
  },
  {"topic": "as text", "source": "wire", "score": "7", "observed_at": "2026-11-21"},
  "not an object",
  {"topic": "no time", "source": "wire", "score": 1},

  {
    "topic": ["wrong", "type"], "source": "wire", "score": true, "observed_at": "2026-11-21"
  },
  {"topic": "huge", "source": "wire", "score": 1e400, "observed_at": "2026-11-21"}, {"topic": "same line", "source": "wire", "score": 1, "observed_at": "2026-11-21"}
]"##,
        );
        assert_eq!(lines(&r), vec![4, 11, 12, 14, 17], "{:?}", r.errors);
        let messages: Vec<&str> = r.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages[0],
            "score: must be a finite number of at least 0, not `-1`"
        );
        assert_eq!(messages[1], "not a trend object but a string");
        assert_eq!(messages[2], "observed_at: missing");
        assert_eq!(
            messages[3],
            "topic: must be a string, not an array; score: must be a number, not a boolean"
        );
        assert!(
            messages[4].starts_with("unreadable element"),
            "{}",
            messages[4]
        );
        assert_eq!(topics(&r), vec!["golden hour", "as text", "same line"]);
        assert_eq!(r.rows[1].score, 7.0);
    }

    #[test]
    fn a_file_that_is_not_a_json_array_of_objects_is_refused_whole() {
        let refused = |body: &str| parse(body, FeedFormat::Json, now());
        assert!(matches!(refused("[1, 2"), Err(FeedError::NotJson(_))));
        assert!(matches!(
            refused("topic,source\nx,y"),
            Err(FeedError::NotJson(_))
        ));
        assert_eq!(
            refused(r#"{"topic": "tea"}"#),
            Err(FeedError::NotArrayOfObjects)
        );
        assert_eq!(refused("42"), Err(FeedError::NotArrayOfObjects));
        assert_eq!(refused("[1, 2, 3]"), Err(FeedError::NotArrayOfObjects));
        assert_eq!(refused("  "), Err(FeedError::Empty));
        // A byte order mark is not a syntax error.
        assert_eq!(refused("\u{feff}[]"), Ok(FeedReport::default()));
    }

    #[test]
    fn format_by_name_then_content_type_then_content() {
        use FeedFormat::{Csv, Json};
        let detect = FeedFormat::detect;
        assert_eq!(detect(Some("feed.JSON"), None, "topic,x"), Json);
        assert_eq!(
            detect(Some("exports/feed.csv"), Some("application/json"), "["),
            Csv
        );
        assert_eq!(detect(Some("v1.2/feed"), Some("text/csv"), "["), Csv);
        assert_eq!(detect(None, Some("text/csv; charset=utf-8"), "["), Csv);
        assert_eq!(detect(None, Some("Application/JSON"), "topic"), Json);
        assert_eq!(
            detect(Some("feed.txt"), Some("text/plain"), "\u{feff} \n [{}]"),
            Json
        );
        assert_eq!(detect(None, None, "{\"a\": 1}"), Json);
        assert_eq!(detect(Some("feed.txt"), None, "topic,source"), Csv);
        assert_eq!(detect(None, None, ""), Csv);
    }

    #[test]
    fn row_errors_serialise_as_line_and_message() {
        let e = RowError {
            line: 3,
            message: "score: missing".to_owned(),
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"line": 3, "message": "score: missing"})
        );
    }
}
