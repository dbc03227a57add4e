//! The words of the pre-checks' findings: what was typed, shown safely, and names folded to
//! what a reader takes in at a glance.

use super::MAX_SHOWN_CHARS;

/// A name reduced to what a reader takes in at a glance: case, separators, invisible
/// characters and common look-alikes (`0nyx`, `Оnyх` in Cyrillic, `PayPaI`) fold away.
pub(super) fn fold(raw: &str) -> String {
    raw.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            // Fullwidth forms of ASCII (U+FF01..U+FF5E) sit at a fixed offset from it.
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(u32::from(c) - 0xfee0).unwrap_or(c),
            c => c,
        })
        .filter(|&c| !(c.is_whitespace() || is_invisible(c) || matches!(c, '.' | '-' | '_')))
        .map(|c| match c {
            '0' | 'о' | 'ο' => 'o',
            '1' | '|' | '!' | 'i' | 'l' | 'і' | 'ı' => 'l',
            '$' => 's',
            '@' | 'а' => 'a',
            'е' => 'e',
            'р' => 'p',
            'с' => 'c',
            'у' => 'y',
            'х' => 'x',
            'η' => 'n',
            c => c,
        })
        .collect()
}

/// Control characters, and the invisible format characters that hide or reorder text (soft
/// hyphen, zero-width spaces and joiners, bidirectional overrides, byte order mark).
pub(super) fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// A partner's value, quoted and cut short for a message.
pub(super) fn shown(value: &str) -> String {
    if value.chars().count() <= MAX_SHOWN_CHARS {
        format!("{value:?}")
    } else {
        let cut: String = value.chars().take(MAX_SHOWN_CHARS).collect();
        format!("{cut:?}…")
    }
}

/// "a travel product", "an …": a catalogue label read inside a sentence.
pub(super) fn with_article(label: &str) -> String {
    let mut chars = label.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let lower = first.to_lowercase().collect::<String>() + chars.as_str();
    let article = if lower.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {lower}")
}
