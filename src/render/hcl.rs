//! The `hcl` template filter: any value as an HCL literal.
//!
//! Templates never paste a user's string into HCL unquoted: a value goes
//! through this filter, which quotes and escapes it (including Terraform's
//! `${` and `%{` template sequences), so no configuration value can inject
//! HCL.

use std::collections::HashMap;
use std::fmt::Write;

use serde_json::Value;

pub fn filter(value: &Value, _args: &HashMap<String, Value>) -> tera::Result<Value> {
    Ok(Value::String(literal(value)))
}

pub fn literal(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => write!(out, "{b}").unwrap_or(()),
        Value::Number(n) => write!(out, "{n}").unwrap_or(()),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                out.push_str(if i > 0 { ", " } else { " " });
                write_string(out, key);
                out.push_str(" = ");
                write_value(out, item);
            }
            out.push_str(if map.is_empty() { "}" } else { " }" });
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => write!(out, "\\u{:04x}", c as u32).unwrap_or(()),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn literals() {
        assert_eq!(literal(&json!("a")), r#""a""#);
        assert_eq!(literal(&json!(["a", "b"])), r#"["a", "b"]"#);
        assert_eq!(literal(&json!(3)), "3");
        assert_eq!(literal(&json!(true)), "true");
        assert_eq!(literal(&json!({"k": "v"})), r#"{ "k" = "v" }"#);
        assert_eq!(literal(&json!({})), "{}");
    }

    #[test]
    fn escapes_template_sequences_and_quotes() {
        assert_eq!(
            literal(&json!("${x} %{y} $z \"q\" \\")),
            r#""$${x} %%{y} $z \"q\" \\""#
        );
        assert_eq!(literal(&json!("a\nb")), r#""a\nb""#);
    }
}
