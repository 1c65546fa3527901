//! The development app of the default tenant (rulings.md 9). On loopback it has the
//! well-known secret printed in the README, like Azurite's well-known account. On any other
//! listener that secret would open the default tenant to whoever read the README (`--auth
//! off` by another name, which is refused off loopback), so there the app gets a random
//! secret instead, printed once, and the token endpoint refuses the well-known one even
//! where a loopback server stored it in a shared database (issue 18 item 5).

use enrollgraph_auth::permissions;
use enrollgraph_service::{App, Service};

/// Makes the development app of `tenant` what the listener allows; returns what the banner
/// shows as its secret.
///
/// # Errors
/// Storage failures.
pub async fn ensure(
    service: &Service,
    tenant: &str,
    client_id: &str,
    well_known_secret: &str,
    loopback: bool,
) -> Result<String, String> {
    // The development app may manage the groups it assigns to (README); a data dir made
    // before groups existed gets the new permission on the next start.
    let roles =
        vec![permissions::SERVICE_CONFIG_READ_WRITE_ALL.to_owned(), permissions::GROUP_READ_WRITE_ALL.to_owned()];
    let existing = service.find_app(tenant, client_id).map_err(|e| e.to_string())?;
    let hashes = existing.as_ref().map(|a| a.secret_hashes.clone()).unwrap_or_default();
    let certificates = existing.as_ref().map(|a| a.certificates.clone()).unwrap_or_default();
    // The well-known secret is public (README), so stretching its hash protects nothing; it is
    // stored with the cheap count of generated secrets and only such hashes are tried here:
    // verifying it against 100,000-round hashes cost every start ~20 ms per stored hash (the
    // bench's start-up line). An older data dir's 100,000-round copy is kept among `others`
    // and refused off loopback by `Identity::refusing_secret`.
    let cheap = |h: &String| {
        enrollgraph_auth::hash_iterations(h).is_some_and(|i| i <= enrollgraph_auth::GENERATED_SECRET_ITERATIONS)
    };
    let (well_known, others): (Vec<String>, Vec<String>) =
        hashes.into_iter().partition(|h| cheap(h) && enrollgraph_auth::verify_secret(well_known_secret, h));
    let roles_changed = existing.as_ref().is_none_or(|a| a.roles != roles);
    let save = |secret_hashes: Vec<String>| {
        let app = App {
            app_id: client_id.to_owned(),
            display_name: "enrollgraph development app".into(),
            roles: roles.clone(),
            secret_hashes,
            certificates: certificates.clone(),
        };
        service.save_app(tenant, app)
    };
    if loopback {
        if roles_changed || well_known.is_empty() {
            let mut hashes = vec![enrollgraph_auth::hash_generated_secret(well_known_secret)];
            hashes.extend(others);
            save(hashes).await.map_err(|e| e.to_string())?;
        }
        return Ok(well_known_secret.to_owned());
    }
    // Off loopback (rare): an older data dir may hold the well-known secret stretched; find
    // it the slow way, so that it is removed and a random secret made.
    let (stretched, others): (Vec<String>, Vec<String>) =
        others.into_iter().partition(|h| enrollgraph_auth::verify_secret(well_known_secret, h));
    if others.is_empty() {
        let secret = enrollgraph_auth::generate_secret();
        save(vec![enrollgraph_auth::hash_generated_secret(&secret)]).await.map_err(|e| e.to_string())?;
        return Ok(format!(
            "{secret}   (random, shown once: the well-known development secret is refused off loopback)"
        ));
    }
    if roles_changed || !well_known.is_empty() || !stretched.is_empty() {
        save(others).await.map_err(|e| e.to_string())?;
    }
    Ok("(random, shown when it was made: the well-known development secret is refused off loopback)".to_owned())
}
