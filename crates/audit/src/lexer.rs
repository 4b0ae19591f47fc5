//! Tokeniser for Solidity source text with byte-offset spans.

use crate::span::Span;

/// The kind of a token; its text is the source slice under its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// An identifier or keyword.
    Ident,
    /// A number literal (decimal, hex or scientific).
    Number,
    /// A string literal, including `hex"…"` and `unicode"…"`.
    Str,
    /// Punctuation or an operator.
    Punct,
    /// The raw text of a pragma directive after the word `pragma`, up to the `;`.
    PragmaBody,
    /// End of input.
    Eof,
}

/// One token of source text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) span: Span,
}

/// A problem found while tokenising.
#[derive(Debug, Clone)]
pub(crate) struct LexError {
    pub(crate) message: String,
    pub(crate) span: Span,
}

/// Operators, longest first so that the first match is the longest one.
const PUNCTS: &[&str] = &[
    ">>>=", "<<=", ">>=", ">>>", "**", "==", "!=", "<=", ">=", "&&", "||", "++", "--", "+=", "-=",
    "*=", "/=", "%=", "|=", "&=", "^=", "=>", "->", ":=", "<<", ">>", "(", ")", "[", "]", "{", "}",
    ";", ",", ".", "?", ":", "=", "+", "-", "*", "/", "%", "!", "~", "&", "|", "^", "<", ">", "@",
];

/// Splits `src` into tokens; stops at the first error, which is returned beside the tokens so far.
pub(crate) fn tokenize(src: &str) -> (Vec<Token>, Option<LexError>) {
    let bytes = src.as_bytes();
    let mut tokens = Vec::with_capacity(src.len() / 4);
    let mut i = 0usize;
    let mut error = None;
    let mut after_pragma = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'/' && bytes.get(i + 1) == Some(&b'/') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && bytes.get(i + 1) == Some(&b'*') {
            match src[i + 2..].find("*/") {
                Some(end) => i = i + 2 + end + 2,
                None => {
                    error = Some(LexError {
                        message: "unterminated block comment".into(),
                        span: Span::new(i, i + 2),
                    });
                    break;
                }
            }
            continue;
        }
        let start = i;
        if after_pragma {
            after_pragma = false;
            let end = src[i..].find(';').map_or(bytes.len(), |e| i + e);
            tokens.push(Token {
                kind: TokenKind::PragmaBody,
                span: Span::new(start, end),
            });
            i = end;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'$')
            {
                i += 1;
            }
            let word = &src[start..i];
            if (word == "hex" || word == "unicode") && matches!(bytes.get(i), Some(b'"' | b'\'')) {
                match scan_string(bytes, i) {
                    Ok(end) => {
                        tokens.push(Token {
                            kind: TokenKind::Str,
                            span: Span::new(start, end),
                        });
                        i = end;
                    }
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
                continue;
            }
            after_pragma = word == "pragma";
            tokens.push(Token {
                kind: TokenKind::Ident,
                span: Span::new(start, i),
            });
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            if c == b'0' && matches!(bytes.get(i + 1), Some(b'x' | b'X')) {
                i += 2;
                while i < bytes.len() && (bytes[i].is_ascii_hexdigit() || bytes[i] == b'_') {
                    i += 1;
                }
            } else {
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
                    i += 1;
                }
                if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
                        i += 1;
                    }
                }
                if matches!(bytes.get(i), Some(b'e' | b'E'))
                    && bytes
                        .get(i + 1)
                        .is_some_and(|b| b.is_ascii_digit() || *b == b'-')
                {
                    i += 2;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            tokens.push(Token {
                kind: TokenKind::Number,
                span: Span::new(start, i),
            });
            continue;
        }
        if c == b'"' || c == b'\'' {
            match scan_string(bytes, i) {
                Ok(end) => {
                    tokens.push(Token {
                        kind: TokenKind::Str,
                        span: Span::new(start, end),
                    });
                    i = end;
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
            continue;
        }
        let rest = &src[i..];
        match PUNCTS.iter().find(|p| rest.starts_with(**p)) {
            Some(p) => {
                i += p.len();
                tokens.push(Token {
                    kind: TokenKind::Punct,
                    span: Span::new(start, i),
                });
            }
            None => {
                let width = rest.chars().next().map_or(1, char::len_utf8);
                error = Some(LexError {
                    message: format!(
                        "unexpected character {:?}",
                        rest.chars().next().unwrap_or('?')
                    ),
                    span: Span::new(i, i + width),
                });
                break;
            }
        }
    }
    let end = if error.is_some() {
        src.len()
    } else {
        i.min(src.len())
    };
    tokens.push(Token {
        kind: TokenKind::Eof,
        span: Span::new(end, end),
    });
    (tokens, error)
}

/// Scans a quoted string starting at `start` (the quote); returns the offset after the closing quote.
fn scan_string(bytes: &[u8], start: usize) -> Result<usize, LexError> {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\n' => break,
            b if b == quote => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(LexError {
        message: "unterminated string literal".into(),
        span: Span::new(start, start + 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(TokenKind, String)> {
        let (toks, err) = tokenize(src);
        assert!(err.is_none(), "{err:?}");
        toks.iter()
            .map(|t| (t.kind, src[t.span.start..t.span.end].to_string()))
            .collect()
    }

    #[test]
    fn splits_operators_longest_first() {
        let toks = kinds("a >>= b ** 2; x.call.value(1 ether)();");
        let texts: Vec<_> = toks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(
            texts,
            [
                "a", ">>=", "b", "**", "2", ";", "x", ".", "call", ".", "value", "(", "1", "ether",
                ")", "(", ")", ";", ""
            ]
        );
    }

    #[test]
    fn pragma_body_is_one_token() {
        let toks = kinds("pragma solidity >=0.4.22 <0.6.0;");
        assert_eq!(
            toks[1],
            (
                TokenKind::PragmaBody,
                "solidity >=0.4.22 <0.6.0".to_string()
            )
        );
    }

    #[test]
    fn reports_unterminated_comment_and_string() {
        assert!(tokenize("contract A { /* never closed").1.is_some());
        assert!(tokenize("string s = \"open").1.is_some());
    }
}
