//! Account rules, compiled into the browser and the server alike.

use crate::error::FieldError;

/// Fewest characters in a password. OWASP asks for at least 8 with a second factor and 15
/// without; 12 plus the checks below is our floor until a second factor exists.
pub const PASSWORD_MIN_CHARS: usize = 12;
/// Most characters in a password (argon2 would take more; this bounds the work per request).
pub const PASSWORD_MAX_CHARS: usize = 128;
/// Longest email address (RFC 5321's path limit).
pub const EMAIL_MAX_CHARS: usize = 254;

/// Normalises and checks an email address: trimmed and lowercased, one `@`, something on
/// both sides, a dot in the domain, no spaces or control characters.
pub fn validate_email(email: &str) -> Result<String, FieldError> {
    let email = email.trim().to_lowercase();
    let bad = || {
        FieldError::new(
            "email",
            "invalid_email",
            "Enter an email address like name@example.com.",
        )
    };
    if email.chars().count() > EMAIL_MAX_CHARS {
        return Err(FieldError::new(
            "email",
            "too_long",
            format!("An email address has at most {EMAIL_MAX_CHARS} characters."),
        ));
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { Ok(email) } else { Err(bad()) }
}

/// Checks a new password: long enough, not too long, not one repeated character, not the
/// email address itself.
pub fn validate_new_password(password: &str, email: &str) -> Result<(), FieldError> {
    let chars = password.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(FieldError::new(
            "password",
            "too_short",
            format!("Use at least {PASSWORD_MIN_CHARS} characters."),
        ));
    }
    if chars > PASSWORD_MAX_CHARS {
        return Err(FieldError::new(
            "password",
            "too_long",
            format!("Use at most {PASSWORD_MAX_CHARS} characters."),
        ));
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 4 {
        return Err(FieldError::new(
            "password",
            "too_simple",
            "Use a password with more variety than a few repeated characters.",
        ));
    }
    if password.trim().eq_ignore_ascii_case(email.trim()) {
        return Err(FieldError::new(
            "password",
            "is_email",
            "Your password cannot be your email address.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            validate_email("  Ana.Silva@Example.COM ").unwrap(),
            "ana.silva@example.com"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "a na@example.com",
            "ana@.com",
            "a@b@c.com",
        ] {
            assert_eq!(
                validate_email(bad).unwrap_err().code,
                "invalid_email",
                "{bad}"
            );
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(validate_email(&long).unwrap_err().code, "too_long");
    }

    #[test]
    fn passwords_need_length_and_variety() {
        assert!(validate_new_password("correct horse battery", "a@b.co").is_ok());
        assert_eq!(
            validate_new_password("short", "a@b.co").unwrap_err().code,
            "too_short"
        );
        assert_eq!(
            validate_new_password(&"ab".repeat(65), "a@b.co")
                .unwrap_err()
                .code,
            "too_long"
        );
        assert_eq!(
            validate_new_password("aaaaaaaaaaaaaaaa", "a@b.co")
                .unwrap_err()
                .code,
            "too_simple"
        );
        assert_eq!(
            validate_new_password("longname@example.com", "LongName@example.com")
                .unwrap_err()
                .code,
            "is_email"
        );
    }
}
