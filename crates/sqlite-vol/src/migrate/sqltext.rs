//! SQL as text: a small tokenizer that drops comments and whitespace, so that two texts can be compared for
//! what they do rather than how they are laid out, and a line diff to show how two texts differ.
//!
//! The tokenizer knows what SQLite's does about layout: `--` and `/* */` comments, string literals with
//! doubled quotes, and the four ways of quoting an identifier. It is not a parser; two texts with equal
//! tokens run the same statements, which is all a checksum repair and a schema comparison need.

/// One token of SQL text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// A keyword, bare identifier or number, as written.
    Word(String),
    /// A quoted identifier (`"x"`, `` `x` ``, `[x]`), without its quotes.
    Quoted(String),
    /// A string literal, with its quotes, as written.
    Str(String),
    /// Punctuation or an operator.
    Punct(String),
}

impl Token {
    /// The token for comparing schemas: words and identifiers in lower case, without quotes; literals kept.
    pub(crate) fn folded(&self) -> String {
        match self {
            Token::Word(w) | Token::Quoted(w) => w.to_lowercase(),
            Token::Str(s) | Token::Punct(s) => s.clone(),
        }
    }

    /// Whether this is the keyword `kw` (any case).
    pub(crate) fn is(&self, kw: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(kw))
    }
}

const OPERATORS: [&str; 10] = ["->>", "->", "||", "<=", ">=", "<>", "!=", "==", "<<", ">>"];

/// Splits `sql` into tokens, dropping comments and whitespace. An unterminated comment, string or quoted
/// identifier runs to the end of the text.
pub(crate) fn tokens(sql: &str) -> Vec<Token> {
    let s: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let until = |from: usize, end: &dyn Fn(usize) -> bool| -> usize {
        let mut j = from;
        while j < s.len() && !end(j) {
            j += 1;
        }
        j
    };
    while i < s.len() {
        let c = s[i];
        let next = s.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && next == Some('-') {
            i = until(i, &|j| s[j] == '\n');
        } else if c == '/' && next == Some('*') {
            let j = until(i + 2, &|j| s[j] == '*' && s.get(j + 1) == Some(&'/'));
            i = (j + 2).min(s.len());
        } else if c == '\'' || c == '"' || c == '`' || c == '[' {
            let close = if c == '[' { ']' } else { c };
            let mut j = i + 1;
            let mut text = String::new();
            while j < s.len() {
                if s[j] == close {
                    // A doubled quote inside is the quote itself (not for `[...]`).
                    if close != ']' && s.get(j + 1) == Some(&close) {
                        text.push(close);
                        j += 2;
                        continue;
                    }
                    break;
                }
                text.push(s[j]);
                j += 1;
            }
            let raw: String = s[i..(j + 1).min(s.len())].iter().collect();
            out.push(if c == '\'' {
                Token::Str(raw)
            } else {
                Token::Quoted(text)
            });
            i = j + 1;
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let j = until(i, &|j| {
                !(s[j].is_alphanumeric() || s[j] == '_' || s[j] == '$')
            });
            out.push(Token::Word(s[i..j].iter().collect()));
            i = j;
        } else {
            let rest: String = s[i..(i + 3).min(s.len())].iter().collect();
            let op = OPERATORS.iter().find(|op| rest.starts_with(**op));
            let len = op.map_or(1, |op| op.len());
            out.push(Token::Punct(s[i..i + len].iter().collect()));
            i += len;
        }
    }
    out
}

/// Whether two texts are the same SQL once comments and whitespace are set aside (case and quoting count).
pub(crate) fn same_statements(a: &str, b: &str) -> bool {
    tokens(a) == tokens(b)
}

/// The text with comments and layout normalised away and names folded to lower case: `create table t (x
/// integer)`. For comparing schema objects.
pub(crate) fn normalised(sql: &str) -> String {
    let toks: Vec<String> = tokens(sql).iter().map(Token::folded).collect();
    toks.join(" ")
}

/// A line diff of `old` and `new` (longest common subsequence): lines prefixed `-`, `+` or ` `. Texts of
/// more than 2000 lines each are not compared line by line; both are then shown whole.
pub fn line_diff(old: &str, new: &str) -> Vec<String> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a.len() > 2000 || b.len() > 2000 {
        let minus = a.iter().map(|l| format!("-{l}"));
        return minus.chain(b.iter().map(|l| format!("+{l}"))).collect();
    }
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push(format!(" {}", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(format!("-{}", a[i]));
            i += 1;
        } else {
            out.push(format!("+{}", b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_layout_do_not_count() {
        let a = "-- users\nCREATE TABLE users (id INTEGER PRIMARY KEY, /* mail */ email TEXT);";
        let b = "CREATE TABLE users(\n  id INTEGER PRIMARY KEY,\n  email TEXT -- the address\n);\n";
        assert!(same_statements(a, b));
        assert!(!same_statements(a, &b.replace("TEXT", "BLOB")));
        assert!(!same_statements("SELECT '--x'", "SELECT ''"));
    }

    #[test]
    fn quoting_and_case_fold_for_schemas() {
        assert_eq!(
            normalised(r#"CREATE TABLE "Users" ([id] int, `v` TEXT DEFAULT 'A b')"#),
            "create table users ( id int , v text default 'A b' )"
        );
        assert_eq!(normalised("a->>'x' || b"), "a ->> 'x' || b");
    }

    #[test]
    fn line_diff_marks_changed_lines() {
        let d = line_diff("a\nb\nc", "a\nB\nc");
        assert_eq!(d, vec![" a", "-b", "+B", " c"]);
    }
}
