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
