//! `waotp template …`: the WhatsApp templates an app sends.

use anyhow::bail;
use clap::Subcommand;
use uuid::Uuid;
use waotp_server::admin::TemplateInput;
use waotp_store::Store;

use super::apps::existing;

#[derive(Subcommand, Debug)]
pub(crate) enum TemplateCommand {
    /// Register (or replace) a template for an app in one language.
    Add {
        #[arg(long)]
        app: Uuid,
        /// Template name as approved by Meta ([a-z0-9_]).
        #[arg(long)]
        name: String,
        /// Language code as approved by Meta (e.g. en, id, en_US).
        #[arg(long)]
        lang: String,
        /// `authentication` (Meta's fixed body, one placeholder) or `utility`.
        #[arg(long, default_value = "utility")]
        category: String,
        /// Body text with numbered placeholders, e.g. "Your code is {{1}}. Use it for {{2}}".
        /// Default for authentication: "{{1}} is your verification code."
        #[arg(long)]
        body: Option<String>,
        /// Which placeholder receives the code; `content` fills the others in order.
        #[arg(long, default_value_t = 1)]
        code_placeholder: u32,
        /// Whether a copy-code button carries the code (default: yes for authentication).
        #[arg(long)]
        copy_code_button: Option<bool>,
    },
    /// List an app's templates.
    List {
        #[arg(long)]
        app: Uuid,
        #[arg(long)]
        json: bool,
    },
    /// Remove a template in one language.
    Remove {
        #[arg(long)]
        app: Uuid,
        #[arg(long)]
        name: String,
        #[arg(long)]
        lang: String,
    },
}

pub(super) async fn template(store: &std::sync::Arc<dyn Store>, cmd: TemplateCommand) -> anyhow::Result<()> {
    let store = store.as_ref();
    match cmd {
        TemplateCommand::Add { app, name, lang, category, body, code_placeholder, copy_code_button } => {
            let t = TemplateInput { name, language: lang, category, body, code_placeholder, copy_code_button }
                .into_template()
                .map_err(anyhow::Error::msg)?;
            if !store.put_template(app, t.clone()).await? {
                bail!("no app with id {app}");
            }
            println!(
                "Template {} ({}) saved for app {app}; it needs {} content value(s) per send.",
                t.name,
                t.language,
                t.content_needed()
            );
        }
        TemplateCommand::List { app, json } => {
            existing(store, app).await?;
            let templates = store.list_templates(app).await?;
            if json {
                println!("{}", serde_json::to_string(&templates)?);
            } else if templates.is_empty() {
                println!("No templates: sends use Meta's authentication template shape for any name.");
            } else {
                for t in templates {
                    println!(
                        "{} ({}) [{}] code at {{{{{}}}}}{}: {}",
                        t.name,
                        t.language,
                        t.category.as_str(),
                        t.code_placeholder,
                        if t.copy_code_button { ", copy-code button" } else { "" },
                        t.body
                    );
                }
            }
        }
        TemplateCommand::Remove { app, name, lang } => {
            if !store.delete_template(app, &name, &lang).await? {
                bail!("app {app} has no template {name} ({lang})");
            }
            println!("Removed template {name} ({lang}) from app {app}.");
        }
    }
    Ok(())
}
