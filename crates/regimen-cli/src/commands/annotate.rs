//! `regimen note` and `regimen tag`: what a person adds to a run after the fact.

use std::process::ExitCode;

use clap::Args;

use super::{StoreArg, open};

/// Flags of `regimen note`.
#[derive(Debug, Args)]
pub struct NoteArgs {
    /// Run id, or a unique prefix of it.
    pub run: String,
    /// The note, in markdown; quote it.
    pub text: String,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Flags of `regimen tag`.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// Run id, or a unique prefix of it.
    pub run: String,
    /// Tags to set, each KEY=VALUE; a key set again replaces its value.
    #[arg(required = true, value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Parses `key=value`, naming the argument when it is not one.
fn parse_tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.to_string())),
        Some(_) => Err(format!("`{text}` has no key before `=`; write KEY=VALUE, e.g. arch=cnn")),
        None => Err(format!("`{text}` has no `=`; write KEY=VALUE, e.g. arch=cnn")),
    }
}

/// Appends a note.
pub fn note(args: &NoteArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store.store)?;
    let id = store.resolve(&args.run)?;
    store.add_note(&id, &args.text)?;
    eprintln!("noted on run {id}");
    Ok(ExitCode::SUCCESS)
}

/// Sets tags.
pub fn tag(args: &TagArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store.store)?;
    let id = store.resolve(&args.run)?;
    for (key, value) in &args.tags {
        store.set_tag(&id, key, value)?;
    }
    let list: Vec<String> = args.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    eprintln!("tagged run {id}: {}", list.join(" "));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_at_the_first_equals_sign_and_name_bad_arguments() {
        assert_eq!(parse_tag("arch=cnn"), Ok(("arch".into(), "cnn".into())));
        assert_eq!(parse_tag("expr=a=b"), Ok(("expr".into(), "a=b".into())));
        assert_eq!(parse_tag("empty="), Ok(("empty".into(), String::new())));
        assert!(parse_tag("archcnn").unwrap_err().contains("`archcnn` has no `=`"));
        assert!(parse_tag("=cnn").unwrap_err().contains("`=cnn` has no key"));
    }
}
