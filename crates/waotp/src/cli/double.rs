//! `waotp graph-double`: a Graph API test double for local trials (never talks to Meta).

use std::net::SocketAddr;

use anyhow::Context;
use clap::Args;

use super::serve::shutdown_signal;

#[derive(Args, Debug)]
pub(super) struct DoubleArgs {
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The access token it accepts.
    #[arg(long, default_value = "double-token")]
    token: String,
    /// The phone number id it accepts.
    #[arg(long, default_value = "1234567890")]
    phone_number_id: String,
    /// Signs its status webhooks (set waotp's WAOTP_WHATSAPP_APP_SECRET to the same).
    #[arg(long, default_value = "double-app-secret")]
    app_secret: String,
    /// Where to send status webhooks, e.g. http://127.0.0.1:8080/webhooks/whatsapp
    #[arg(long)]
    webhook_url: Option<String>,
    /// Messages per second before it answers 130429.
    #[arg(long, default_value_t = 80)]
    rate: u32,
}

pub(super) async fn graph_double(args: DoubleArgs) -> anyhow::Result<()> {
    use waotp_whatsapp::double::{DoubleConfig, GraphDouble};
    let mut config = DoubleConfig::new(&args.token, &args.phone_number_id, &args.app_secret);
    config.webhook_url = args.webhook_url.clone();
    config.max_per_second = args.rate;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let double = GraphDouble::start(config, listener)?;
    println!("Graph API double on {}", double.base());
    println!("  run waotp with:");
    println!(
        "    WAOTP_WHATSAPP_API_BASE={} WAOTP_WHATSAPP_PHONE_NUMBER_ID={} \\",
        double.base(),
        args.phone_number_id
    );
    println!(
        "    WAOTP_WHATSAPP_ACCESS_TOKEN={} WAOTP_WHATSAPP_APP_SECRET={} waotp serve",
        args.token, args.app_secret
    );
    println!(
        "  for `waotp whatsapp doctor` also: WAOTP_WHATSAPP_WABA_ID={} WAOTP_WHATSAPP_APP_ID={}",
        double.meta(|m| m.waba_id.clone()),
        double.meta(|m| m.app_id.clone())
    );
    match &args.webhook_url {
        Some(url) => println!("  status webhooks go to {url}"),
        None => println!("  no --webhook-url: no status webhooks"),
    }
    shutdown_signal().await;
    Ok(())
}
