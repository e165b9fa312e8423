//! RFC 5183 `environment`: items come from delivery (`Environment::environment`); "name" and
//! "version" (RFC 5183 section 4.1) are this implementation's when delivery does not set them.

/// The value of `item` that mailcove itself knows, if any.
pub fn builtin(item: &str) -> Option<String> {
    match item {
        "name" => Some("mailcove".to_string()),
        "version" => Some(env!("CARGO_PKG_VERSION").to_string()),
        _ => None,
    }
}
