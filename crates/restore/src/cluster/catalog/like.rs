//! SQL `LIKE` as obshell's listing filters use it.

/// SQL `LIKE` as obshell's `filter` query uses it: `%` is any run, `_` any one
/// character, `\` escapes; letters compare case-insensitively (the `_ci` collations of
/// the views it queries).
pub fn sql_like(pattern: &str, text: &str) -> bool {
    enum Token {
        Any,
        One,
        Literal(char),
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::with_capacity(chars.len());
    let mut index = 0;
    while index < chars.len() {
        tokens.push(match chars[index] {
            '%' => Token::Any,
            '_' => Token::One,
            '\\' if index + 1 < chars.len() => {
                index += 1;
                Token::Literal(chars[index])
            }
            literal => Token::Literal(literal),
        });
        index += 1;
    }
    // matched[j]: the tokens so far match the first j characters. One pass per token,
    // so a pattern from a request costs O(pattern × text) whatever its `%`s.
    let text: Vec<char> = text.chars().collect();
    let mut matched = vec![false; text.len() + 1];
    matched[0] = true;
    for token in &tokens {
        let mut next = vec![false; text.len() + 1];
        match token {
            Token::Any => {
                let mut reached = false;
                for (j, slot) in next.iter_mut().enumerate() {
                    reached |= matched[j];
                    *slot = reached;
                }
            }
            Token::One => {
                next[1..].copy_from_slice(&matched[..text.len()]);
            }
            Token::Literal(literal) => {
                for j in 1..=text.len() {
                    next[j] = matched[j - 1] && same_char(*literal, Some(text[j - 1]));
                }
            }
        }
        matched = next;
    }
    matched[text.len()]
}

fn same_char(expected: char, found: Option<char>) -> bool {
    found.is_some_and(|found| found.to_lowercase().eq(expected.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        let cases = [
            ("%", "anything", true),
            ("ob_%", "ob_query_timeout", true),
            ("OB_%TIMEOUT", "ob_query_timeout", true),
            ("ob\\_%", "obx", false),
            ("ob\\_q%", "ob_query_timeout", true),
            ("_utocommit", "autocommit", true),
            ("autocommit_", "autocommit", false),
            ("", "", true),
            ("", "a", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(sql_like(pattern, text), expected, "{pattern} {text}");
        }
        // A request's `filter` with many `%`: backtracking would take forever here.
        let text = "a".repeat(200);
        assert!(!sql_like(&format!("{}b", "%a".repeat(40)), &text));
        assert!(sql_like(&format!("{}%", "%a".repeat(40)), &text));
        assert!(sql_like("\\", "\\"), "a trailing backslash is itself");
    }
}
