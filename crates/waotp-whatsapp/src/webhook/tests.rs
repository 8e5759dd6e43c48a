use super::*;

#[test]
fn signatures() {
    let body = br#"{"object":"whatsapp_business_account"}"#;
    let sig = sign(b"app-secret", body);
    assert!(sig.starts_with("sha256=") && sig.len() == 71);
    assert!(signature_valid(b"app-secret", body, Some(&sig)));
    assert!(signature_valid(b"app-secret", body, Some(&sig.to_uppercase().replace("SHA256", "sha256"))));
    assert!(!signature_valid(b"other", body, Some(&sig)));
    assert!(!signature_valid(b"app-secret", b"{}", Some(&sig)));
    assert!(!signature_valid(b"app-secret", body, None));
    assert!(!signature_valid(b"app-secret", body, Some("sha256=00")));
}

#[test]
fn parses_statuses_errors_and_the_button() {
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
      {"field":"messages","value":{"messaging_product":"whatsapp","metadata":{},
        "statuses":[
          {"id":"wamid.A","status":"delivered","timestamp":"1","recipient_id":"1","future_field":1},
          {"id":"wamid.B","status":"failed","timestamp":"1","errors":[{"code":131026,"title":"Message undeliverable","error_data":{"details":"x"}}]},
          {"id":"wamid.C","status":"played","timestamp":"1"}],
        "messages":[{"type":"button","button":{"payload":"DID_NOT_REQUEST_CODE"},"context":{"id":"wamid.A"}},
                    {"type":"text","text":{"body":"hi"}}]}},
      {"field":"account_update","value":{}}]}]}"#;
    assert_eq!(
        parse(body).unwrap(),
        vec![
            Event::Status { wamid: "wamid.A".into(), status: DeliveryStatus::Delivered, error: None, pricing: None },
            Event::Status {
                wamid: "wamid.B".into(),
                status: DeliveryStatus::Failed,
                error: Some((131026, "Message undeliverable: x".into())),
                pricing: None,
            },
            Event::NotRequested { wamid: "wamid.A".into() },
        ]
    );
    let not_json = parse(b"nope").unwrap_err();
    assert!(matches!(not_json, PayloadError::NotJson(_)));
    assert!(not_json.to_string().starts_with("not JSON: expected ident"), "{not_json}");
    assert_eq!(parse(b"{}").unwrap(), vec![]);
}

#[test]
fn parses_the_pricing_of_a_status_and_tolerates_a_bad_one() {
    let status = |pricing: &str| {
        let body = format!(
            r#"{{"entry":[{{"changes":[{{"field":"messages","value":{{"statuses":[
              {{"id":"wamid.P","status":"delivered","timestamp":"1","recipient_id":"1","pricing":{pricing}}}]}}}}]}}]}}"#
        );
        match parse(body.as_bytes()).unwrap().pop() {
            Some(Event::Status { pricing, .. }) => pricing,
            other => panic!("{other:?}"),
        }
    };
    let p = status(r#"{"billable":true,"pricing_model":"PMP","type":"regular","category":"authentication"}"#);
    assert_eq!(
        p,
        Some(waotp_core::MessagePricing {
            billable: true,
            category: "authentication".into(),
            pricing_model: "PMP".into(),
            pricing_type: Some("regular".into()),
        })
    );
    let p = status(r#"{"pricing_model":"PMP","type":"free_customer_service","category":"utility"}"#).unwrap();
    assert!(!p.billable, "no billable: from the type");
    let p = status(r#"{"billable":true,"pricing_model":"CBP","category":"a_new_category"}"#).unwrap();
    assert_eq!((p.category.as_str(), p.pricing_type), ("a_new_category", None), "unknown values kept");
    for bad in [r#""PMP""#, "null", "{}", r#"{"billable":"yes","category":"x"}"#, r#"{"billable":true,"category":7}"#] {
        assert_eq!(status(bad), None, "{bad}");
    }
}

#[test]
fn parses_inbound_text_messages() {
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
      {"field":"messages","value":{"messaging_product":"whatsapp",
        "metadata":{"display_phone_number":"15550000000","phone_number_id":"123"},
        "contacts":[{"profile":{"name":"A"},"wa_id":"551187654321"}],
        "messages":[{"from":"551187654321","id":"wamid.IN","timestamp":"1764700000","type":"text",
                     "text":{"body":"ABCDEFGHJK is my verification code"}},
                    {"from":"551187654321","id":"wamid.IMG","timestamp":"1","type":"image","image":{}}]}}]}]}"#;
    let events = parse(body).unwrap();
    assert_eq!(
        events,
        vec![Event::Inbound(InboundText {
            from: Some("551187654321".into()),
            user: UserIds { business: "1".into(), wa_id: Some("551187654321".into()), ..UserIds::default() },
            message_id: "wamid.IN".into(),
            to_phone_number_id: "123".into(),
            body: "ABCDEFGHJK is my verification code".into(),
            timestamp: 1_764_700_000,
        })]
    );
    let shown = format!("{events:?}");
    assert!(!shown.contains("ABCDEFGHJK") && !shown.contains("551187654321"), "{shown}");
    assert_eq!(parse(b"{}").unwrap(), vec![]);
}

const WABA: &str = "102290129340398";
const BSUID: &str = "US.13491208655302741918";
const PARENT: &str = "US.ENT.11815799212886844830";

fn envelope(field: &str, value: &str) -> Vec<u8> {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{WABA}","changes":[{{"field":"{field}","value":{value}}}]}}]}}"#
    )
    .into_bytes()
}

fn identified(wa_id: &str, parent: Option<&str>) -> Event {
    Event::Identified(Identified {
        business: WABA.into(),
        wa_id: wa_id.into(),
        user_id: BSUID.into(),
        parent_user_id: parent.map(Into::into),
    })
}

/// Meta's own example ("Business-scoped user IDs", incoming messages): a username user whose
/// number is not shared, with parent BSUIDs.
#[test]
fn an_inbound_text_without_a_number_names_its_sender_by_bsuid() {
    let body = envelope(
        "messages",
        r#"{"messaging_product":"whatsapp",
          "metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},
          "contacts":[{"profile":{"name":"Sheena Nelson","username":"@realsheenanelson"},
            "user_id":"US.13491208655302741918","parent_user_id":"US.ENT.11815799212886844830"}],
          "messages":[{"from_user_id":"US.13491208655302741918","from_parent_user_id":"US.ENT.11815799212886844830",
            "id":"wamid.HBgL","timestamp":"1749416383","type":"text","text":{"body":"Does it come in another color?"}}]}"#,
    );
    let events = parse(&body).unwrap();
    assert_eq!(
        events,
        vec![
            Event::NoPhoneNumber,
            Event::Inbound(InboundText {
                from: None,
                user: UserIds {
                    business: WABA.into(),
                    wa_id: None,
                    user_id: Some(BSUID.into()),
                    parent_user_id: Some(PARENT.into()),
                    username: Some("@realsheenanelson".into()),
                },
                message_id: "wamid.HBgL".into(),
                to_phone_number_id: "106540352242922".into(),
                body: "Does it come in another color?".into(),
                timestamp: 1_749_416_383,
            }),
        ]
    );
    let shown = format!("{events:?}");
    for secret in [BSUID, PARENT, "realsheenanelson", "13491208655302741918"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("US.13491************918") && shown.contains("@r***"), "{shown}");
}

/// Meta's field template with Meta's sample values: a user whose number is shared names both
/// (learned first, before the message is applied); empty strings are absent.
#[test]
fn an_inbound_text_with_number_and_bsuid_teaches_the_pair() {
    let body = envelope(
        "messages",
        r#"{"messaging_product":"whatsapp","metadata":{"phone_number_id":"106540352242922"},
          "contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234","user_id":"US.13491208655302741918"}],
          "messages":[{"from":"16505551234","from_user_id":"US.13491208655302741918","id":"wamid.A",
            "timestamp":"1749416383","type":"text","text":{"body":"hi"}},
            {"from":"","from_user_id":"","id":"wamid.B","timestamp":"1","type":"text","text":{"body":"x"}}]}"#,
    );
    let events = parse(&body).unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0], identified("16505551234", None));
    let Event::Inbound(m) = &events[1] else { panic!("{events:?}") };
    assert_eq!((m.from.as_deref(), m.user.user_id.as_deref()), (Some("16505551234"), Some(BSUID)));
}

/// Meta's own examples (statuses): a delivered status of a message sent to a number carries the
/// number and the BSUID (and a contact repeating them: one pair); a failed one only the number;
/// one sent to a BSUID whose number is not shared neither number.
#[test]
fn statuses_teach_number_and_bsuid() {
    let body = envelope(
        "messages",
        r#"{"messaging_product":"whatsapp","metadata":{"phone_number_id":"106540352242922"},
          "contacts":[{"profile":{"name":"Pablo M.","username":"@pablomorales"},"wa_id":"16505551234",
            "user_id":"US.13491208655302741918","parent_user_id":"US.ENT.11815799212886844830"}],
          "statuses":[{"id":"wamid.D","status":"delivered","timestamp":"1750030073","recipient_id":"16505551234",
            "recipient_user_id":"US.13491208655302741918","recipient_parent_user_id":"US.ENT.11815799212886844830",
            "pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"marketing"}},
            {"id":"wamid.F","status":"failed","timestamp":"1750030073","recipient_id":"16505551234",
             "errors":[{"code":131049,"title":"t"}]},
            {"id":"wamid.U","status":"read","timestamp":"1750030073","recipient_user_id":"US.13491208655302741918",
             "parent_recipient_user_id":"US.ENT.11815799212886844830"}]}"#,
    );
    let events = parse(&body).unwrap();
    assert_eq!(events[0], identified("16505551234", Some(PARENT)));
    assert!(matches!(&events[1], Event::Status { wamid, status: DeliveryStatus::Delivered, .. } if wamid == "wamid.D"));
    assert!(matches!(&events[2], Event::Status { wamid, status: DeliveryStatus::Failed, .. } if wamid == "wamid.F"));
    assert_eq!(events[3], Event::NoPhoneNumber);
    assert!(matches!(&events[4], Event::Status { wamid, status: DeliveryStatus::Read, .. } if wamid == "wamid.U"));
    assert_eq!(events.len(), 5, "{events:?}");
}

/// The system messages of a changed number or BSUID: the older form (the left number in `from`,
/// the new in `system.wa_id`), May 2026's (`user_id`) and August 2026's (`previous_user_id`).
#[test]
fn system_messages_report_changed_user_ids() {
    let body = envelope(
        "messages",
        r#"{"messaging_product":"whatsapp","metadata":{"phone_number_id":"1"},
          "messages":[
            {"from":"16505551234","id":"wamid.S1","timestamp":"1","type":"system",
             "system":{"body":"User A changed from 16505551234 to 16505550000","wa_id":"16505550000",
                       "user_id":"US.2222","type":"user_changed_number"}},
            {"id":"wamid.S2","timestamp":"1","type":"system",
             "system":{"body":"User A changed from US.1111 to US.2222","user_id":"US.2222",
                       "previous_user_id":"US.1111","parent_user_id":"US.ENT.4","previous_parent_user_id":"US.ENT.3",
                       "type":"user_changed_user_id"}},
            {"from":"16505551234","id":"wamid.S3","timestamp":"1","type":"system",
             "system":{"body":"opted out","type":"user_preference_changed"}}]}"#,
    );
    let events = parse(&body).unwrap();
    assert_eq!(
        events,
        vec![
            Event::UserIdChanged(UserIdChange {
                business: WABA.into(),
                user_id: Some("US.2222".into()),
                wa_id: Some("16505550000".into()),
                previous_wa_id: Some("16505551234".into()),
                ..UserIdChange::default()
            }),
            Event::UserIdChanged(UserIdChange {
                business: WABA.into(),
                previous_user_id: Some("US.1111".into()),
                user_id: Some("US.2222".into()),
                previous_parent_user_id: Some("US.ENT.3".into()),
                parent_user_id: Some("US.ENT.4".into()),
                ..UserIdChange::default()
            }),
        ]
    );
}

/// Meta's May 2026 `user_id_update` field (with and without the number).
#[test]
fn user_id_updates_report_changed_user_ids() {
    let body = envelope(
        "user_id_update",
        r#"{"messaging_product":"whatsapp","metadata":{"phone_number_id":"1"},
          "contacts":[{"profile":{"name":"A"},"wa_id":"16505551234"}],
          "user_id_update":[
            {"wa_id":"16505551234","detail":"User id for A has been updated.",
             "user_id":{"previous":"US.1111","current":"US.2222"},"timestamp":"1"},
            {"detail":"d","user_id":{"previous":"US.5555","current":"US.6666"},
             "parent_user_id":{"previous":"US.ENT.7","current":"US.ENT.8"},"timestamp":"1"},
            {"detail":"nothing usable","user_id":{"previous":""}}]}"#,
    );
    assert_eq!(
        parse(&body).unwrap(),
        vec![
            Event::UserIdChanged(UserIdChange {
                business: WABA.into(),
                previous_user_id: Some("US.1111".into()),
                user_id: Some("US.2222".into()),
                wa_id: Some("16505551234".into()),
                ..UserIdChange::default()
            }),
            Event::UserIdChanged(UserIdChange {
                business: WABA.into(),
                previous_user_id: Some("US.5555".into()),
                user_id: Some("US.6666".into()),
                previous_parent_user_id: Some("US.ENT.7".into()),
                parent_user_id: Some("US.ENT.8".into()),
                ..UserIdChange::default()
            }),
        ]
    );
}

/// Values of the wrong shape are absent, never an error.
#[test]
fn malformed_identities_are_absent() {
    let long = "X".repeat(200);
    let body = envelope(
        "messages",
        &format!(
            r#"{{"messages":[{{"from":"+12 34","from_user_id":"{long}","id":"wamid.M","timestamp":"1","type":"text",
               "text":{{"body":"x"}}}},{{"from":7,"from_user_id":["US.1"],"id":"wamid.N","type":"text","text":{{"body":"y"}}}}],
               "statuses":[{{"id":"wamid.S","status":"sent","recipient_id":{{}},"recipient_user_id":"US 1"}}]}}"#
        ),
    );
    let events = parse(&body).unwrap();
    assert!(matches!(&events[..], [Event::Status { .. }]), "{events:?}");
}

/// Events come in payload order (a message decided before a later change of its sender's id);
/// an entry whose id is not a business's (digits) teaches no ids; a May 2026
/// `user_changed_user_id` leaves the number in `from`; an update naming only the current id and
/// the number teaches the pair.
#[test]
fn ids_come_in_payload_order_and_only_for_a_business() {
    let value = r#"{"messaging_product":"whatsapp","metadata":{"phone_number_id":"1"},
      "messages":[
        {"from":"16505551234","from_user_id":"US.1111","id":"wamid.T","timestamp":"1","type":"text","text":{"body":"x"}},
        {"from":"16505551234","id":"wamid.S","timestamp":"1","type":"system",
         "system":{"body":"changed","user_id":"US.2222","type":"user_changed_user_id"}}]}"#;
    let kinds = |events: &[Event]| {
        events
            .iter()
            .map(|e| match e {
                Event::Identified(_) => "identified",
                Event::Inbound(_) => "inbound",
                Event::UserIdChanged(_) => "changed",
                _ => "other",
            })
            .collect::<Vec<_>>()
    };
    let events = parse(&envelope("messages", value)).unwrap();
    assert_eq!(kinds(&events), ["identified", "inbound", "changed"]);
    let Event::UserIdChanged(change) = &events[2] else { unreachable!() };
    assert_eq!((change.previous_wa_id.as_deref(), change.user_id.as_deref()), (Some("16505551234"), Some("US.2222")));
    let foreign = String::from_utf8(envelope("messages", value)).unwrap().replace(WABA, "not-a-waba\\u0000");
    assert_eq!(kinds(&parse(foreign.as_bytes()).unwrap()), ["inbound"]);
    let learn =
        envelope("user_id_update", r#"{"user_id_update":[{"wa_id":"16505551234","user_id":{"current":"US.3333"}}]}"#);
    assert_eq!(
        parse(&learn).unwrap(),
        vec![Event::UserIdChanged(UserIdChange {
            business: WABA.into(),
            user_id: Some("US.3333".into()),
            wa_id: Some("16505551234".into()),
            ..UserIdChange::default()
        })]
    );
}
