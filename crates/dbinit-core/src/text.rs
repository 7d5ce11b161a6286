//! Text that must fit a limit set elsewhere: PostgreSQL's 63-byte names, Kubernetes' 4096-byte
//! termination message and 1024-byte Event message. A leaf, so the rooms that meet those
//! limits share one cut without importing each other.

/// The longest prefix of `s` that fits in `max` bytes without splitting a character.
pub fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` cut to at most `max` bytes by dropping its middle, not its end: a failed migration
/// command's message ends with its last stderr lines, where the error is. The start (what
/// failed, the exit status) stays, then ` … `, then as much of the end as fits.
pub fn elide_middle(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    const GAP: &str = " … ";
    if s.len() <= max {
        return s.into();
    }
    if max <= GAP.len() {
        return truncate(s, max).into();
    }
    let room = max - GAP.len();
    let head = truncate(s, room / 3);
    let mut start = s.len() - (room - head.len());
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("{head}{GAP}{}", &s[start..]).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_middle_goes_the_end_stays() {
        let s = format!(
            "failed: status 1; lines: {} the error at the end",
            "x".repeat(5000)
        );
        let cut = elide_middle(&s, 200);
        assert!(cut.len() <= 200, "{}", cut.len());
        assert!(
            cut.starts_with("failed: status 1") && cut.ends_with("the error at the end"),
            "{cut}"
        );
        assert_eq!(elide_middle("short", 200), "short");
        let u = "é".repeat(300);
        assert!(elide_middle(&u, 101).len() <= 101);
    }
}
