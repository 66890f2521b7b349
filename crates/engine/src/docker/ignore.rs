//! `.dockerignore`: the files of a build context the engine never receives, decided by
//! Docker's rules so that a repository built by Helvetia sends what `docker build` would send.
//! (The engine applies no ignore file to a context uploaded through its API: the docker CLI
//! filters on the client's side, and so does Helvetia.)
//!
//! The rules, as moby's pattern matcher applies them: a line whose first character is `#` is a
//! comment; lines are trimmed and blank ones skipped; `!` makes an exception. A pattern is
//! cleaned like a path (`./a`, `/a` and `a/` all mean `a`) and anchored at the context's
//! root. `*` and `?` never cross a `/`; `**` crosses any number of directories, none included;
//! `[...]` is a character class (`[^...]` negated); `\` escapes the next character. A pattern
//! that matches a directory matches everything inside it, and the last matching line decides.

use regex::Regex;

/// The parsed lines of an ignore file.
#[derive(Debug, Default)]
pub struct IgnoreRules {
    rules: Vec<Rule>,
}

#[derive(Debug)]
struct Rule {
    exception: bool,
    /// The cleaned pattern, as written.
    text: String,
    pattern: Regex,
}

impl IgnoreRules {
    /// Parses an ignore file's text. A line Docker would refuse — a lone `!`, an unterminated
    /// character class, a trailing `\` — is an error naming the line.
    pub fn parse(text: &str) -> Result<IgnoreRules, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = vec![];
        for (number, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let invalid = |why: &str| format!("line {}: `{line}`: {why}", number + 1);
            if pattern.is_empty() {
                return Err(invalid("an exception needs a pattern after `!`"));
            }
            let text = clean(pattern);
            let pattern = Regex::new(&translate(&text).map_err(|why| invalid(&why))?)
                .map_err(|e| invalid(&e.to_string()))?;
            rules.push(Rule {
                exception,
                text,
                pattern,
            });
        }
        Ok(IgnoreRules { rules })
    }

    /// Whether `path` (relative to the context's root, `/`-separated) is left out.
    pub fn excludes(&self, path: &str) -> bool {
        self.rules
            .iter()
            .rev()
            .find(|rule| rule.matches(path))
            .is_some_and(|rule| !rule.exception)
    }

    /// Sends `path` whatever the lines say, as Docker does for the Dockerfile and the ignore
    /// file itself (the builder needs them; `COPY` still sees them only if not excluded).
    pub fn keep(&mut self, path: &str) -> Result<(), String> {
        let text = clean(path);
        // Only a path longer than the expression size limit could fail here.
        let pattern = Regex::new(&format!("(?s)^{}$", regex::escape(&text)))
            .map_err(|e| format!("`{path}`: {e}"))?;
        self.rules.push(Rule {
            exception: true,
            text,
            pattern,
        });
        Ok(())
    }

    /// Whether an excluded directory must still be walked because an exception names
    /// something inside it. Like the docker CLI, only an exception whose text starts with the
    /// directory's path counts: walking every excluded tree (`node_modules`) for a `**/x`
    /// exception would cost more than Docker users expect to pay, and send what Docker would not.
    pub fn reincludes_inside(&self, dir: &str) -> bool {
        let dir = format!("{dir}/");
        self.rules
            .iter()
            .any(|rule| rule.exception && format!("{}/", rule.text).starts_with(&dir))
    }
}

impl Rule {
    /// The pattern matches the path itself or one of the directories above it.
    fn matches(&self, path: &str) -> bool {
        self.pattern.is_match(path)
            || path
                .match_indices('/')
                .any(|(end, _)| self.pattern.is_match(&path[..end]))
    }
}

/// A pattern as a path, cleaned the way Go's `filepath.Clean` cleans it, without a leading `/`.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = vec![];
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|last| *last != "..") => {
                parts.pop();
            }
            // Above the context's root there is nothing: `/..` is `/`.
            ".." if pattern.starts_with('/') => {}
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

/// The regular expression a cleaned pattern stands for, anchored at both ends.
fn translate(pattern: &str) -> Result<String, String> {
    let mut expression = String::from("(?s)^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                chars.next_if_eq(&'/');
                expression.push_str(if chars.peek().is_none() {
                    ".*"
                } else {
                    "(?:.*/)?"
                });
            }
            '*' => expression.push_str("[^/]*"),
            '?' => expression.push_str("[^/]"),
            '\\' => {
                let escaped = chars.next().ok_or("ends with an escaping `\\`")?;
                push_literal(&mut expression, escaped);
            }
            '[' => {
                expression.push('[');
                if chars.next_if_eq(&'^').is_some() {
                    expression.push('^');
                }
                let mut empty = true;
                loop {
                    match chars.next().ok_or("a `[` is never closed")? {
                        ']' if !empty => break,
                        ']' => return Err("an empty character class `[]`".to_owned()),
                        '-' => expression.push('-'),
                        '\\' => {
                            let escaped = chars.next().ok_or("a `[` is never closed")?;
                            push_literal(&mut expression, escaped);
                        }
                        member => push_literal(&mut expression, member),
                    }
                    empty = false;
                }
                expression.push(']');
            }
            other => push_literal(&mut expression, other),
        }
    }
    expression.push('$');
    Ok(expression)
}

/// Appends `c` to an expression as itself, whatever it means to the regex syntax.
fn push_literal(expression: &mut String, c: char) {
    expression.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excluded(rules: &str, path: &str) -> bool {
        IgnoreRules::parse(rules).unwrap().excludes(path)
    }

    #[test]
    fn patterns_are_anchored_at_the_root_and_cover_what_is_inside_a_directory() {
        assert!(excluded("node_modules", "node_modules"));
        assert!(excluded("node_modules", "node_modules/left-pad/index.js"));
        assert!(!excluded("node_modules", "web/node_modules"));
        assert!(excluded("/build/", "build/out.o"));
        assert!(excluded("./build", "build"));
        assert!(excluded("a/../b", "b/c"));
        assert!(excluded("/../b", "b"));
        assert!(!excluded("build", "builder"));
    }

    #[test]
    fn stars_stay_inside_one_directory_and_double_stars_cross_any_number() {
        assert!(excluded("*.md", "README.md"));
        assert!(!excluded("*.md", "docs/guide.md"));
        assert!(excluded("*/*.md", "docs/guide.md"));
        assert!(excluded("**/*.md", "README.md"));
        assert!(excluded("**/*.md", "docs/deep/guide.md"));
        assert!(excluded("docs/**/draft", "docs/draft"));
        assert!(excluded("docs/**/draft", "docs/a/b/draft/x"));
        assert!(excluded("docs/**", "docs/a/b"));
        assert!(excluded("file?.txt", "file1.txt"));
        assert!(!excluded("file?.txt", "file12.txt"));
        assert!(!excluded("a?b", "a/b"));
        assert!(excluded("**", "anything/at/all"));
    }

    #[test]
    fn classes_escapes_and_regex_characters_mean_what_docker_means() {
        assert!(excluded("file[0-9].txt", "file7.txt"));
        assert!(!excluded("file[^0-9].txt", "file7.txt"));
        assert!(excluded("file[^0-9].txt", "fileX.txt"));
        assert!(excluded(r"\*.txt", "*.txt"));
        assert!(!excluded(r"\*.txt", "a.txt"));
        assert!(excluded("a+b(c)|d$.{e}^", "a+b(c)|d$.{e}^"));
        assert!(!excluded("a.b", "axb"));
        assert!(excluded("[a&&b]", "&"));
    }

    #[test]
    fn the_last_matching_line_decides_and_exceptions_reinclude() {
        let rules = "*.md\n!README*.md\nREADME-secret.md\n";
        assert!(excluded(rules, "CHANGES.md"));
        assert!(!excluded(rules, "README.md"));
        assert!(excluded(rules, "README-secret.md"));
    }

    #[test]
    fn only_an_exception_naming_a_path_inside_makes_an_excluded_directory_walked() {
        let mut rules = IgnoreRules::parse("docker\nvendor\n!vendor/keep\n!**/x").unwrap();
        assert!(rules.reincludes_inside("vendor"));
        assert!(!rules.reincludes_inside("vend"));
        assert!(!rules.reincludes_inside("docker"));
        rules.keep("./docker/Dockerfile").unwrap();
        assert!(rules.reincludes_inside("docker"));
        assert!(!rules.excludes("docker/Dockerfile"));
        assert!(rules.excludes("docker/other"));
    }

    #[test]
    fn comments_blank_lines_and_spaces_are_not_patterns() {
        let rules = "\u{feff}# secrets\n\n   .env  \n! .env.example\n";
        assert!(excluded(rules, ".env"));
        assert!(!excluded(rules, ".env.example"));
        assert!(!excluded(rules, "# secrets"));
        assert!(!excluded("", "anything"));
    }

    #[test]
    fn lines_docker_refuses_are_errors_that_name_the_line() {
        for (rules, line) in [
            ("ok\n!\n", "line 2"),
            ("[abc", "line 1"),
            ("a\nb\nx[]", "line 3"),
            ("trailing\\", "line 1"),
            ("[z-a]", "line 1"),
        ] {
            let error = IgnoreRules::parse(rules).unwrap_err();
            assert!(error.starts_with(line), "{rules:?}: {error}");
        }
    }
}
