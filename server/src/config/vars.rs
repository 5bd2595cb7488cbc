//! Reading variables: one typed getter per kind of value, each naming the variable in its
//! error, so every section parses the same way and every message names what to fix.
//!
//! Each getter takes the variable's name as a string literal first: the configuration
//! tests find the variables a section reads by those calls (`tests.rs`).

use std::collections::HashMap;
use std::time::Duration;

use super::ConfigError;
use domain::secret::MIN_SECRET_LEN;

/// The variables given to [`super::Config::from_map`]; blank values count as unset.
pub(super) struct Vars<'a>(pub(super) &'a HashMap<String, String>);

impl Vars<'_> {
    /// The trimmed value of `var`, `None` when unset or blank.
    pub(super) fn get(&self, var: &str) -> Option<&str> {
        self.0.get(var).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// The value of `var`, or an error saying when it is required (`why`).
    pub(super) fn required(&self, var: &'static str, why: &str) -> Result<String, ConfigError> {
        self.get(var)
            .map(str::to_owned)
            .ok_or_else(|| err(var, format!("required {why}")))
    }

    /// A whole number, `default` when unset.
    pub(super) fn num(&self, var: &'static str, default: usize) -> Result<usize, ConfigError> {
        self.get(var).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| err(var, format!("`{v}` is not a whole number")))
        })
    }

    /// A whole number above 0, `default` when unset.
    pub(super) fn positive(&self, var: &'static str, default: usize) -> Result<usize, ConfigError> {
        let v = self.num(var, default)?;
        if v == 0 {
            return Err(err(var, "must be above 0"));
        }
        Ok(v)
    }

    /// A positive number of seconds.
    pub(super) fn secs(&self, var: &'static str, default: usize) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.positive(var, default)? as u64))
    }

    /// A positive number of milliseconds.
    pub(super) fn millis(
        &self,
        var: &'static str,
        default: usize,
    ) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.positive(var, default)? as u64))
    }

    /// A positive count that must fit a `u32` (limits per minute, failure counts).
    pub(super) fn per_minute(&self, var: &'static str, default: usize) -> Result<u32, ConfigError> {
        u32::try_from(self.positive(var, default)?).map_err(|_| err(var, "too large"))
    }

    /// A yes or no (`1`/`true`/`yes`/`on`, `0`/`false`/`no`/`off`), `default` when unset.
    pub(super) fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(other) => Err(err(var, format!("`{other}` is not true or false"))),
        }
    }

    /// A non-negative decimal amount (`0.04`) as millionths (`40000`); unset is 0.
    pub(super) fn micros(&self, var: &'static str) -> Result<u64, ConfigError> {
        let Some(v) = self.get(var) else {
            return Ok(0);
        };
        let bad = || err(var, format!("`{v}` is not an amount such as 0.04"));
        let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
        let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty() && frac.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 6
        {
            return Err(bad());
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let frac: u64 = format!("{frac:0<6}").parse().map_err(|_| bad())?;
        whole
            .checked_mul(1_000_000)
            .and_then(|w| w.checked_add(frac))
            .ok_or_else(bad)
    }
}

/// A configuration error for `var`.
pub(super) fn err(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
    }
}

/// `Ok` when `value` starts with one of `schemes` (`"https://"`), else an error for `var`.
pub(super) fn check_scheme(
    var: &'static str,
    value: &str,
    schemes: &[&str],
    problem: &str,
) -> Result<(), ConfigError> {
    if schemes.iter().any(|s| value.starts_with(s)) {
        Ok(())
    } else {
        Err(err(var, problem))
    }
}

/// Rejects secrets an attacker could guess: short, placeholder-like, or low in variety.
pub(super) fn check_secret(key: &str) -> Result<(), String> {
    if key.chars().count() < MIN_SECRET_LEN {
        return Err(format!(
            "too short: use at least {MIN_SECRET_LEN} random characters"
        ));
    }
    let lower = key.to_ascii_lowercase();
    for weak in [
        "changeme",
        "change-me",
        "secret",
        "password",
        "example",
        "xxxxxxxx",
    ] {
        if lower.contains(weak) {
            return Err(format!("looks like a placeholder (contains `{weak}`)"));
        }
    }
    let mut distinct: Vec<char> = key.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 10 {
        return Err("too little variety: use a randomly generated value".to_owned());
    }
    Ok(())
}
