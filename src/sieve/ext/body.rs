//! RFC 5173 `body`: the texts a body test compares, by transform.

use crate::mime::{MessageInfo, PartKind};

use super::super::ast::BodyTransform;

/// The texts `transform` selects from `raw` (the whole message, whose structure is `info`).
/// `types` are the expanded `:content` types.
pub fn texts(
    raw: &[u8],
    info: &MessageInfo,
    transform: &BodyTransform,
    types: &[String],
) -> Vec<String> {
    match transform {
        BodyTransform::Raw => {
            let body = info.root().body.slice(raw);
            vec![String::from_utf8_lossy(body).into_owned()]
        }
        BodyTransform::Text => vec![info.body_text(raw)],
        BodyTransform::Content(_) => {
            let mut out = Vec::new();
            for p in &info.parts {
                if p.kind != PartKind::Leaf {
                    continue;
                }
                let ctype = p.content.ctype.as_deref().map_or("text".to_string(), |t| {
                    String::from_utf8_lossy(t).to_ascii_lowercase()
                });
                let sub = p
                    .content
                    .subtype
                    .as_deref()
                    .map_or("plain".to_string(), |t| {
                        String::from_utf8_lossy(t).to_ascii_lowercase()
                    });
                let wanted = types.iter().any(|t| {
                    let t = t.to_ascii_lowercase();
                    t.is_empty() || t == ctype || t == format!("{ctype}/{sub}")
                });
                if !wanted {
                    continue;
                }
                let body = p.body.slice(raw);
                out.push(crate::mime::decoded_text(&p.content, body).into_owned());
            }
            out
        }
    }
}
