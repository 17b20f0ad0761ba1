//! What the client subcommands write to stdout: lines that stop quietly
//! when the reader goes away (`tail | head`).

use std::io::Write;

/// Writes `line` and a newline to stdout, flushed; an error (a closed
/// pipe) says the reader is gone.
pub(crate) fn emit(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// `json` (valid JSON text) indented by two spaces per level, keys and
/// every value exactly in the order and form the text has them (parsing
/// into a map would sort the keys).
pub(crate) fn pretty(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = json.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                let close = if c == '{' { '}' } else { ']' };
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&close) {
                    out.push(close);
                    chars.next();
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_keeps_every_key_in_its_order_and_strings_as_they_are() {
        let text = r#"{"z":1,"a":[1,{"k":"x, {y}: \"q\""}],"e":{},"l":[ ]}"#;
        let shown = pretty(text);
        assert_eq!(
            shown,
            "{\n  \"z\": 1,\n  \"a\": [\n    1,\n    {\n      \"k\": \"x, {y}: \\\"q\\\"\"\n    }\n  ],\n  \"e\": {},\n  \"l\": []\n}"
        );
        let back: serde_json::Value = serde_json::from_str(&shown).expect("still JSON");
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(text).expect("JSON")
        );
    }
}
