//! `subscribers export` (the readers an issue would go to now) and `subscribers form`.

use std::io::Write;
use std::ops::ControlFlow;
use std::process::ExitCode;

use super::{Context, newsletter};
use crate::cli::ExportFormat;
use crate::diagnostic::Invalid;

pub fn export(context: &Context, format: ExportFormat) -> anyhow::Result<ExitCode> {
    let newsletter = newsletter(context)?;
    let list = super::super::require(context.workspace.check_subscribers(&newsletter))?;
    let ledger = context.state.open_existing_ledger()?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if format == ExportFormat::Csv {
        writeln!(out, "email,name")?;
    }
    let mut failure = None;
    crate::delivery::for_each_reader(&list, ledger.as_ref(), |reader| {
        let name = reader.name.as_deref().unwrap_or_default();
        let written = match format {
            ExportFormat::Csv => writeln!(out, "{},{}", csv(reader.email.as_str()), csv(name)),
            ExportFormat::Yaml if name.is_empty() => {
                writeln!(out, "- email: \"{}\"", yaml(reader.email.as_str()))
            }
            ExportFormat::Yaml => writeln!(
                out,
                "- email: \"{}\"\n  name: \"{}\"",
                yaml(reader.email.as_str()),
                yaml(name)
            ),
        };
        match written {
            Ok(()) => ControlFlow::Continue(()),
            Err(error) => {
                failure = Some(error);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(error) = failure {
        return Err(error.into());
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// A CSV field, quoted when it must be (RFC 4180). A field a spreadsheet would take for a
/// formula (a reader who signed up as `=HYPERLINK(…)`) gets a leading `'`, as OWASP advises:
/// the export is opened in Excel more often than it is read back.
fn csv(text: &str) -> String {
    let defused;
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        defused = format!("'{text}");
        defused.as_str()
    } else {
        text
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The inside of a double-quoted YAML string.
fn yaml(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

pub fn form(context: &Context) -> anyhow::Result<ExitCode> {
    let newsletter = newsletter(context)?;
    let Some(site) = &newsletter.site_url else {
        return Err(Invalid::usage(
            "newsletter.yaml has no site_url: the form posts to {site_url}/subscribe, where `letterpress serve` answers; set it first",
        )
        .into());
    };
    let action = site.join("subscribe");
    println!(
        "<!-- The sign-up form of {}: paste it into any page. It posts to `letterpress serve`, which sends the confirmation email. -->",
        newsletter.name
    );
    println!(
        "{}",
        crate::render::web::signup_snippet(&newsletter, &action).into_string()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::csv;

    #[test]
    fn a_csv_cell_a_spreadsheet_would_run_as_a_formula_is_defused_and_others_are_kept() {
        assert_eq!(
            csv("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(csv("+1 555"), "'+1 555");
        assert_eq!(csv("-2+3"), "'-2+3");
        assert_eq!(csv("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv("Ada, Countess"), "\"Ada, Countess\"");
        assert_eq!(csv("Ada O'Kafor"), "Ada O'Kafor");
        assert_eq!(csv("ada@example.com"), "ada@example.com");
    }
}
