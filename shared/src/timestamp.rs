//! Timestamps as the browser reads them.
//!
//! Records carry `chrono::DateTime<Utc>` and travel as RFC 3339 text, the shape chrono's serde
//! support writes (`2026-11-22T14:05:03.123456Z`). chrono's general-purpose parser (RFC 2822,
//! relaxed forms, format strings) is about 20 KB of the WASM module before optimisation, for
//! the one shape the server sends. So the hydrate build reads those fields with
//! [`deserialize`] (`#[cfg_attr(feature = "hydrate", serde(deserialize_with = …))]` on each),
//! and the server keeps chrono's own parser. The tests check [`parse`] against chrono.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};

/// Reads `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`: what chrono writes for a `DateTime`
/// (fractions of 0 to 9 digits, `Z` for UTC), plus explicit offsets. `None` for anything else,
/// including years outside 0000-9999 and dates or times that do not exist.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let mut second = digits(&b[17..19])?;
    let mut rest = &b[19..];
    let mut nanos = 0;
    if let Some((b'.', after)) = rest.split_first() {
        let len = after.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 || len > 9 {
            return None;
        }
        nanos = digits(&after[..len])? * 10u32.pow(9 - len as u32);
        rest = &after[len..];
    }
    let offset_secs = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = (h * 3600 + m * 60) as i32;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    // A leap second, as chrono writes one: the 59th second with a second's worth of nanos.
    if second == 60 {
        second = 59;
        nanos += 1_000_000_000;
    }
    let local = NaiveDate::from_ymd_opt(year as i32, month, day)?
        .and_hms_nano_opt(hour, minute, second, nanos)?;
    // Through the offset as chrono's own parser goes, so a leap second lands where it puts it.
    let utc = FixedOffset::east_opt(offset_secs)?
        .from_local_datetime(&local)
        .single()?;
    Some(utc.with_timezone(&Utc))
}

/// The value of a run of ASCII digits.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

/// A serde `deserialize_with` reading a timestamp with [`parse`].
pub fn deserialize<'de, D>(deserializer: D) -> Result<DateTime<Utc>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
    parse(&text).ok_or_else(|| serde::de::Error::custom("not an RFC 3339 timestamp"))
}

#[cfg(test)]
mod tests {
    use chrono::{FixedOffset, SecondsFormat, TimeDelta, TimeZone};

    use super::*;

    #[test]
    fn reads_what_chrono_writes_as_chrono_reads_it() {
        let base = Utc.with_ymd_and_hms(2026, 11, 22, 14, 5, 3).unwrap();
        let times = [
            base,
            base + TimeDelta::nanoseconds(123_000_000),
            base + TimeDelta::nanoseconds(123_456_000),
            base + TimeDelta::nanoseconds(123_456_789),
            Utc.with_ymd_and_hms(2024, 2, 29, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 30, 23, 59, 59).unwrap(),
        ];
        for t in times {
            // chrono's serde format, and every other precision it writes.
            let json = serde_json::to_string(&t).unwrap();
            let text: String = serde_json::from_str(&json).unwrap();
            assert_eq!(parse(&text), Some(t), "{text}");
            for format in [
                SecondsFormat::Secs,
                SecondsFormat::Millis,
                SecondsFormat::Nanos,
            ] {
                let text = t.to_rfc3339_opts(format, true);
                let chrono = DateTime::parse_from_rfc3339(&text)
                    .unwrap()
                    .with_timezone(&Utc);
                assert_eq!(parse(&text), Some(chrono), "{text}");
            }
            // With an offset instead of `Z`.
            for hours in [-11, -3, 5] {
                let zone = FixedOffset::east_opt(hours * 3600 + 1800).unwrap();
                let text = t.with_timezone(&zone).to_rfc3339();
                assert_eq!(parse(&text), Some(t), "{text}");
            }
        }
        // Leap seconds, in UTC and through an offset (found by the `forms` fuzz target).
        for leap in ["2016-12-31T23:59:60.5Z", "2017-01-01T00:59:60.5+01:00"] {
            let chrono = DateTime::parse_from_rfc3339(leap)
                .unwrap()
                .with_timezone(&Utc);
            assert_eq!(parse(leap), Some(chrono), "{leap}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_timestamp() {
        for bad in [
            "",
            "2026-11-22",
            "2026-11-22T14:05:03",
            "2026-11-22 14:05:03Z",
            "2026-11-22T14:05:03.Z",
            "2026-11-22T14:05:03.1234567890Z",
            "2026-02-30T14:05:03Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T14:60:00Z",
            "2026-11-22T14:05:03+0100",
            "2026-11-22T14:05:03+24:00",
            "2026-11-22T14:05:03-00:60",
            "2026-11-22T14:05:03+01:00junk",
            "+2026-11-22T14:05:03Z",
            "2026-1x-22T14:05:03Z",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        let err = serde_json::from_str::<Wrapper>(r#"{"t":"yesterday"}"#).unwrap_err();
        assert!(err.to_string().contains("RFC 3339"), "{err}");
        let ok: Wrapper = serde_json::from_str(r#"{"t":"2026-11-22T14:05:03Z"}"#).unwrap();
        assert_eq!(ok.t, Utc.with_ymd_and_hms(2026, 11, 22, 14, 5, 3).unwrap());
    }

    #[derive(Debug, serde::Deserialize)]
    struct Wrapper {
        #[serde(deserialize_with = "deserialize")]
        t: DateTime<Utc>,
    }
}
