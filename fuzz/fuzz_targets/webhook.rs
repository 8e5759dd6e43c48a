//! Meta's webhooks: the signature check and the payload parser never panic; a payload is
//! parsed exactly when it is JSON; the signature of a body is valid for it (also upper-cased
//! and padded, as the check allows) and for no other body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use waotp_whatsapp::webhook::{parse, sign, signature_valid, Event};

const SECRET: &[u8] = b"app-secret";

fuzz_target!(|data: &[u8]| {
    let events = parse(data);
    let json = serde_json::from_slice::<serde_json::Value>(data);
    assert_eq!(events.is_ok(), json.is_ok());
    // Every event names the message it is about, by a string taken from the payload: written
    // back as JSON, the payload holds that string (serde_json writes strings one way only).
    let written = json.map(|v| v.to_string()).unwrap_or_default();
    for event in events.into_iter().flatten() {
        let (Event::Status { wamid, .. } | Event::NotRequested { wamid }) = event;
        let quoted = serde_json::Value::String(wamid).to_string();
        assert!(written.contains(&quoted), "{quoted} is not in the payload");
    }

    let signature = sign(SECRET, data);
    assert!(signature.starts_with("sha256=") && signature.len() == 71, "{signature}");
    assert!(signature_valid(SECRET, data, Some(&signature)));
    assert!(signature_valid(
        SECRET,
        data,
        Some(&format!(" {} ", signature.to_uppercase().replace("SHA256", "sha256")))
    ));
    assert!(!signature_valid(SECRET, data, None));
    assert!(!signature_valid(b"other-secret", data, Some(&signature)));
    let mut changed = data.to_vec();
    match changed.last_mut() {
        Some(last) => *last ^= 1,
        None => changed.push(b' '),
    }
    assert!(!signature_valid(SECRET, &changed, Some(&signature)));
    // The body itself presented as a header: no panic, and (short of an HMAC collision) refused.
    let header = String::from_utf8_lossy(data);
    assert!(!signature_valid(SECRET, data, Some(&header)));
});
