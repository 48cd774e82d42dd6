//! The login form. Its CSRF token is a double-submit one (a cookie and a hidden field), since
//! there is no session yet.

use maud::{Markup, html};

use super::{Nav, frame};

pub fn render(login_csrf: &str, next: &str, error: Option<&str>, name: &str) -> Markup {
    frame(
        "Connexion",
        None,
        Nav::None,
        3600,
        html! {
            @if let Some(error) = error {
                p class="error" role="alert" id="login-error" { (error) }
            }
            form class="login" method="post" action="/connexion" {
                input type="hidden" name="csrf" value=(login_csrf);
                input type="hidden" name="suite" value=(next);
                p {
                    label for="name" { "Identifiant" }
                    input id="name" name="name" type="text" autocomplete="username" required
                        value=(name) autofocus;
                }
                p {
                    label for="password" { "Mot de passe" }
                    input id="password" name="password" type="password"
                        autocomplete="current-password" required;
                }
                p { button type="submit" { "Se connecter" } }
            }
        },
    )
}
