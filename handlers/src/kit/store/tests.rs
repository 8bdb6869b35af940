use super::*;

#[test]
fn keys_are_validated() {
    assert!(validate_key("state.p1.save/slot=1").is_ok());
    assert!(validate_key("").is_err());
    assert!(validate_key(".a").is_err());
    assert!(validate_key("a.").is_err());
    assert!(validate_key("a..b").is_err());
    assert!(validate_key("a b").is_err());
    assert!(validate_key("a*").is_err());
    assert!(validate_key(&"a".repeat(MAX_KEY_LEN + 1)).is_err());
    assert!(validate_prefix("a.").is_ok());
    assert!(validate_prefix("").is_ok());
    assert!(validate_prefix("a..").is_err());
}

/// The one-pass check accepts exactly the keys the segment walk accepts.
#[test]
fn key_checks_agree_with_the_segment_walk() {
    use proptest::prelude::*;
    fn walk(key: &str) -> bool {
        key.split('.').all(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '='))
        })
    }
    proptest!(|(key in "[a-zA-Z0-9_=/.\\-é \\u{0}:*>]{0,40}")| {
        prop_assert_eq!(validate_key(&key).is_ok(), !key.is_empty() && walk(&key), "{:?}", key);
    });
    for bad in ["", ".", "a.", ".a", "a..b", "a b", "a.*", "é"] {
        assert!(validate_key(bad).is_err(), "{bad:?}");
    }
    for good in ["a", "a.b", "auth.sessions.x-1", "k/v=1._"] {
        assert!(validate_key(good).is_ok(), "{good:?}");
    }
}
