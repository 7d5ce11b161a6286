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
