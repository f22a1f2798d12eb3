//! Numbers as people read them: sizes in binary units named as such, counts with thousands
//! separators, times with their offset from UTC.

/// `812 B`, `25.1 KiB`, `3.4 MiB`.
pub fn human_size(bytes: usize) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

/// A moment as a sentence, in the zone it is given in, with its offset from UTC rather than
/// an abbreviation (`CST` names three zones): `Monday December 7, 2026 at 09:00 +01:00`.
pub fn slot_time<Zone: chrono::TimeZone>(time: &chrono::DateTime<Zone>) -> String
where
    Zone::Offset: std::fmt::Display,
{
    time.format("%A %B %-d, %Y at %H:%M %:z").to_string()
}

/// A moment in a listing: `Mon 2026-12-07 09:00 +01:00`.
pub fn short_time<Zone: chrono::TimeZone>(time: &chrono::DateTime<Zone>) -> String
where
    Zone::Offset: std::fmt::Display,
{
    time.format("%a %Y-%m-%d %H:%M %:z").to_string()
}

/// `Monday`.
pub fn weekday_name(day: chrono::Weekday) -> &'static str {
    match day {
        chrono::Weekday::Mon => "Monday",
        chrono::Weekday::Tue => "Tuesday",
        chrono::Weekday::Wed => "Wednesday",
        chrono::Weekday::Thu => "Thursday",
        chrono::Weekday::Fri => "Friday",
        chrono::Weekday::Sat => "Saturday",
        chrono::Weekday::Sun => "Sunday",
    }
}

/// `1,204`.
pub fn grouped(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Text from elsewhere (a relay's reply, a bounce) made safe for a terminal: control
/// characters are shown escaped (`\u{1b}`), so a reply carrying `ESC[2J` or a title sequence
/// cannot clear the screen or rename the window. Line breaks of a multi-line reply stay
/// visible as `\n`.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    // Bidirectional overrides reorder what follows them on screen: shown escaped too.
    let hidden =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `s` after a count that is not one.
pub fn plural(count: u64) -> &'static str {
    if count == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_counts_read_as_people_write_them() {
        assert_eq!(human_size(812), "812 B");
        assert_eq!(human_size(25_740), "25.1 KiB");
        assert_eq!(human_size(3 * 1024 * 1024 + 400_000), "3.4 MiB");
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(1_204), "1,204");
        assert_eq!(grouped(1_000_000), "1,000,000");
        assert_eq!(
            format!("1 file{}, 2 file{}", plural(1), plural(2)),
            "1 file, 2 files"
        );
    }

    #[test]
    fn control_characters_from_a_relay_are_shown_not_obeyed() {
        assert_eq!(printable("550 no such user"), "550 no such user");
        assert_eq!(
            printable("550 \u{1b}[2J\u{1b}]0;owned\u{7}gone\nline two\u{9b}"),
            "550 \\u{1b}[2J\\u{1b}]0;owned\\u{7}gone\\nline two\\u{9b}"
        );
    }
}
