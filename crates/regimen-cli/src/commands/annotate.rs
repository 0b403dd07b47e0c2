//! `regimen note` and `regimen tag`: what a person adds to a run after the fact.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::Context;
use clap::Args;

use super::{StoreArg, open};

/// The comment at the top of a note opened with `--edit`; removed from what is saved.
const EDIT_HINT: &str = "<!-- Write the note for run {run} in markdown below; this line is removed. \
Save an empty note to cancel. -->\n";

/// Flags of `regimen note`.
#[derive(Debug, Args)]
pub struct NoteArgs {
    /// Run id, or a unique prefix of it.
    pub run: String,
    /// The note, in markdown; quote it.
    #[arg(required_unless_present = "edit", conflicts_with = "edit")]
    pub text: Option<String>,
    /// Write the note in your editor ($VISUAL, else $EDITOR, else vi) instead.
    #[arg(long, short)]
    pub edit: bool,
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
    let draft = super::files_root(store.as_ref(), &args.store.store)?.join(format!("note-{id}.md"));
    let text = match &args.text {
        Some(text) => text.clone(),
        None => edit_note(&id, &draft)?,
    };
    if text.trim().is_empty() {
        anyhow::bail!("the note is empty; nothing was saved");
    }
    store.add_note(&id, &text)?;
    if args.text.is_none() {
        let _ = std::fs::remove_file(&draft);
    }
    say!("noted on run {id}");
    Ok(ExitCode::SUCCESS)
}

/// Opens `draft` (a hint, or what an earlier failed edit left there) in the user's editor and
/// returns the text without the hint. The draft stays on disk until the note is saved, so a crash
/// or a failing editor loses nothing.
fn edit_note(run: &str, draft: &Path) -> anyhow::Result<String> {
    let hint = EDIT_HINT.replace("{run}", run);
    if !draft.exists() {
        std::fs::write(draft, &hint).with_context(|| format!("could not write the draft {}", draft.display()))?;
    }
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "vi".to_string());
    // Through the shell, as git does, so that EDITOR may carry arguments (`code --wait`).
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$@\""))
        .arg(&editor)
        .arg(draft)
        .status()
        .with_context(|| format!("could not start the editor `{editor}`"))?;
    if !status.success() {
        anyhow::bail!(
            "the editor `{editor}` exited with {status}; nothing was saved, and your draft is kept in {} \
             (`regimen note {run} --edit` opens it again)",
            draft.display()
        );
    }
    let text =
        std::fs::read_to_string(draft).with_context(|| format!("could not read the draft {}", draft.display()))?;
    Ok(text.replacen(&hint, "", 1))
}

/// Sets tags.
pub fn tag(args: &TagArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store.store)?;
    let id = store.resolve(&args.run)?;
    for (key, value) in &args.tags {
        store.set_tag(&id, key, value)?;
    }
    let list: Vec<String> = args.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    say!("tagged run {id}: {}", list.join(" "));
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
