//! The server in process wired to the Graph API double (`waotp_whatsapp::double`), the
//! double's webhooks wired back to the server: what every WhatsApp test starts from.

use waotp_server::config::{Secret, WhatsAppConfig};
use waotp_server::Config;
use waotp_whatsapp::double::{DoubleConfig, GraphDouble};

use crate::app::{spawn_app_with, TestApp};

/// The access token both sides use.
pub const TOKEN: &str = "test-token";
/// The business number's phone-number id.
pub const PNID: &str = "106540352242922";
/// Meta's app secret, which signs the webhooks.
pub const APP_SECRET: &str = "meta-app-secret";

/// A server sending through a Graph API double (its `whatsapp` set to the double with
/// [`TOKEN`], [`PNID`] and [`APP_SECRET`], then `adjust`ed: `c.whatsapp` is `Some`), and the
/// double (its webhooks to the server, then `adjust_double`ed).
pub async fn spawn_app_with_double(
    adjust: impl FnOnce(&mut Config),
    adjust_double: impl FnOnce(&mut DoubleConfig),
) -> (TestApp, GraphDouble) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port for the double");
    let base = format!("http://{}", listener.local_addr().expect("the double's address"));
    let app = spawn_app_with(|c| {
        let mut w = WhatsAppConfig::new(&base, PNID, TOKEN);
        w.app_secret = Some(Secret::new(APP_SECRET));
        c.whatsapp = Some(w);
        adjust(c);
    })
    .await;
    let mut config = DoubleConfig::new(TOKEN, PNID, APP_SECRET);
    config.webhook_url = Some(format!("{}/webhooks/whatsapp", app.base));
    adjust_double(&mut config);
    let double = GraphDouble::start(config, listener).expect("the double starts");
    (app, double)
}

/// The server's WhatsApp settings, inside an `adjust` of [`spawn_app_with_double`].
pub fn whatsapp(c: &mut Config) -> &mut WhatsAppConfig {
    c.whatsapp.as_mut().expect("spawn_app_with_double sets whatsapp")
}
