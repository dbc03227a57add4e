//! The audit log's actors in words, for the review console: `partner:<id>/user:<id>` becomes the
//! member's email and the partner's name, `operator:<id>/key:<id>` the operator's email and the
//! key's name, and so on. An actor that names an account or key no longer there, or a form this
//! module does not know, is shown as it is stored.

use std::collections::HashMap;

use crate::store::{Db, partners, users};

/// The words for each actor of `actors` (each looked up once).
pub async fn in_words(db: &Db, actors: &[&str]) -> Result<HashMap<String, String>, sqlx::Error> {
    let mut words = HashMap::new();
    for &actor in actors {
        if !words.contains_key(actor) {
            let w = describe(db, actor).await?;
            words.insert(actor.to_string(), w);
        }
    }
    Ok(words)
}

async fn email(db: &Db, user_id: &str) -> Result<String, sqlx::Error> {
    Ok(match users::by_id(db, user_id).await? {
        Some(u) => u.email,
        None => format!("a deleted account ({user_id})"),
    })
}

async fn partner_name(db: &Db, partner_id: &str) -> Result<String, sqlx::Error> {
    Ok(match partners::by_id(db, partner_id).await? {
        Some(p) => p.name,
        None => format!("partner {partner_id}"),
    })
}

async fn key(db: &Db, key_id: &str) -> Result<String, sqlx::Error> {
    Ok(match partners::key_name(db, key_id).await? {
        Some(name) => format!("the API key “{name}”"),
        None => format!("API key {key_id}"),
    })
}

/// One actor in words.
pub async fn describe(db: &Db, actor: &str) -> Result<String, sqlx::Error> {
    if actor == crate::admin::CLI_ACTOR {
        return Ok("The onyx-id command line".into());
    }
    if actor == "onyx-id" {
        return Ok("Onyx ID, automatically".into());
    }
    let Some((who, how)) = actor.split_once('/') else {
        return Ok(actor.to_string());
    };
    Ok(match (who.split_once(':'), how.split_once(':')) {
        (Some(("operator", user)), None) if how == "console" => {
            format!(
                "{} (operator), in the review console",
                email(db, user).await?
            )
        }
        (Some(("operator", user)), Some(("key", k))) => {
            format!(
                "{} (operator), with {}",
                email(db, user).await?,
                key(db, k).await?
            )
        }
        (Some(("partner", p)), Some(("user", user))) => format!(
            "{} of {}, in the partner console",
            email(db, user).await?,
            partner_name(db, p).await?
        ),
        (Some(("partner", p)), Some(("key", k))) => {
            format!("{}, with {}", partner_name(db, p).await?, key(db, k).await?)
        }
        _ => actor.to_string(),
    })
}
