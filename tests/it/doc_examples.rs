//! Every ```` ```console ```` example in the README and in `docs/` is run
//! against the demo and its output compared with what the page shows, so
//! the pages cannot drift from the server.
//!
//! A block is lines of `$ COMMAND` each followed by its expected output.
//! Commands run with `sh -c` in the repository, with `ecs-dns` on the PATH
//! (this build), against one demo server: `-p 5380` (the demo's DNS port)
//! and `127.0.0.1:5381` (its ops listener) are rewritten to the test
//! server's ports. Masked on both sides: SOA serials (any 10-digit number)
//! and timestamps. `dig`'s lines are compared as a set, since answers
//! rotate (`rotate_answers`); everything else line for line.

use crate::harness::{Server, bin, demo_config, free_port, repo, require};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One `$ COMMAND` and the output a page shows for it.
#[derive(Debug)]
struct Example {
    /// `FILE:LINE` of the command, for the failure message.
    place: String,
    command: String,
    expected: Vec<String>,
}

/// The pages whose examples run: the README and every page in `docs/`.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

fn examples_of(page: &Path) -> Vec<Example> {
    let text = std::fs::read_to_string(page).expect("read page");
    let name = page
        .strip_prefix(repo())
        .unwrap_or(page)
        .display()
        .to_string();
    let mut examples: Vec<Example> = Vec::new();
    let mut in_console = false;
    for (index, line) in text.lines().enumerate() {
        match (in_console, line.trim_end()) {
            (false, "```console") => in_console = true,
            (true, "```") => in_console = false,
            (true, line) => match line.strip_prefix("$ ") {
                Some(command) => examples.push(Example {
                    place: format!("{name}:{}", index + 1),
                    command: command.to_string(),
                    expected: Vec::new(),
                }),
                None => match examples.last_mut() {
                    Some(example) => example.expected.push(line.to_string()),
                    None => panic!("{name}:{}: output before any `$ ` command", index + 1),
                },
            },
            (false, _) => {}
        }
    }
    assert!(!in_console, "{name}: a ```console block is not closed");
    examples
}

/// Serials and times differ from run to run: a run of exactly 10 digits
/// (an SOA serial) becomes `SERIAL`, an RFC 3339 time `TIME`.
fn masked(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let digits = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let starts_word = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        if starts_word && digits == 4 && chars.get(i + 4) == Some(&'-') {
            let end = chars[i..]
                .iter()
                .position(|c| !(c.is_ascii_digit() || ":-.TZ+".contains(*c)))
                .map_or(chars.len(), |n| i + n);
            if end - i >= 19 && chars[i + 10] == 'T' {
                out.push_str("TIME");
                i = end;
                continue;
            }
        }
        let ends_word = chars
            .get(i + digits)
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        if starts_word && digits == 10 && ends_word {
            out.push_str("SERIAL");
            i += digits;
            continue;
        }
        let take = digits.max(1);
        out.extend(&chars[i..i + take]);
        i += take;
    }
    out
}

fn compared(command: &str, lines: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = lines.iter().map(|l| masked(l)).collect();
    if command.starts_with("dig ") {
        lines.sort();
    }
    lines
}

#[test]
fn every_console_example_in_the_readme_and_docs_runs_as_shown() {
    require("dig");
    require("curl");
    require("jq");
    let examples: Vec<Example> = pages().iter().flat_map(|p| examples_of(p)).collect();
    // The README's querying section alone has five: a parser that found
    // none would pass everything.
    assert!(
        examples.len() >= 8,
        "only {} examples found",
        examples.len()
    );

    let http = free_port();
    let http_addr = format!("127.0.0.1:{http}");
    let server = Server::start(&demo_config(), &["--http", &http_addr], "local");
    let bin_dir = Path::new(bin()).parent().expect("binary's folder");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut failures = Vec::new();
    for example in &examples {
        let command = example
            .command
            .replace("-p 5380", &format!("-p {}", server.port))
            .replace("127.0.0.1:5381", &http_addr);
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!("{command} 2>&1"))
            .current_dir(repo())
            .env("PATH", &path)
            .env_remove("ECS_DNS_CONFIG")
            .output()
            .expect("run sh");
        let got: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        let (want, got) = (
            compared(&example.command, &example.expected),
            compared(&example.command, &got),
        );
        if want != got {
            failures.push(format!(
                "{}: $ {}\n--- the page shows\n{}\n--- it printed\n{}",
                example.place,
                example.command,
                want.join("\n"),
                got.join("\n")
            ));
        }
    }
    eprintln!(
        "ran {} console examples from {} pages",
        examples.len(),
        pages().len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_example_parser_reads_commands_and_their_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let page = dir.path().join("page.md");
    std::fs::write(
        &page,
        "text\n```console\n$ dig a\nline 1\nline 2\n$ dig b\n```\n```sh\n$ not run\n```\n",
    )
    .expect("write page");
    let examples = examples_of(&page);
    assert_eq!(examples.len(), 2, "{examples:?}");
    assert_eq!(examples[0].command, "dig a");
    assert_eq!(examples[0].expected, ["line 1", "line 2"]);
    assert!(examples[1].expected.is_empty());
    assert_eq!(
        masked("local. 5 IN SOA ns1.local. hostmaster.local. 1795614808 60"),
        "local. 5 IN SOA ns1.local. hostmaster.local. SERIAL 60"
    );
    assert_eq!(
        masked("at 2026-12-05T21:03:40.5Z, id 0a1b2c3d4e5f6071829, 12345678901"),
        "at TIME, id 0a1b2c3d4e5f6071829, 12345678901"
    );
}
