//! Property tests of everything that reads bytes from a server or a disk:
//! DDP frames and EJSON values, Rocket.Chat's REST bodies, Leantime's
//! JSON-RPC answers, IMAP headers and previews, folder names, the config
//! file and its editor. Whatever the
//! input (arbitrary bytes, or valid input with fields mutated, huge numbers,
//! deep nesting, invalid UTF-8, unknown charsets, cut-off MIME), a parser
//! gives a typed error or a sane value, and never panics.
//!
//! Case counts are small so that the whole file runs in a few seconds; the
//! fuzz targets (`fuzz/`, `scripts/fuzz`) search the same entry points far
//! longer.

use std::path::Path;
use std::time::Duration;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::Config as Cases;
use serde_json::{Value, json};

use vigie::config::{Config, ConfigError};
use vigie::fuzzing;
use vigie::imap::message::{PREVIEW_CHARS, summarize};
use vigie::imap::mutf7;
use vigie::leantime::rpc::{RequestError, parse_batch};
use vigie::rocketchat::ddp::{self, MeteorError, ServerFrame};
use vigie::rocketchat::rest::{self, RestError};
use vigie::rocketchat::wire::{self, Date};
use vigie::scheduler::{Schedule, ScheduleConfig};

fn cases(n: u32) -> Cases {
    // No regression files in the source tree: a failure prints its input,
    // which then becomes a named test.
    Cases { cases: n, failure_persistence: None, ..Cases::default() }
}

/// Numbers at and around every limit a parser may overflow on.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![0i64, -1, 1, i64::MIN, i64::MAX, 1_714_557_612_345, -62_135_596_800_000]).prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        Just(json!(1e308)),
    ]
}

/// Field names the parsers look for, and some they do not.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "msg", "id", "_id", "rid", "ts", "$date", "u", "username", "name", "mentions", "t", "tmid", "tshow",
            "editedAt", "e2e", "attachments", "result", "error", "reason", "message", "details", "timeToReset",
            "collection", "fields", "eventName", "args", "subs", "session", "version", "update", "remove",
            "lastMessage", "_updatedAt", "unread", "userMentions", "alert", "open", "fname", "ls", "payload",
            "sender", "type", "code", "data", "jsonrpc", "read", "module", "moduleId", "headline", "projectName",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,8}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        ".{0,16}".prop_map(Value::String),
        prop::sample::select(vec!["2024-05-01T10:00:12.345Z", "9999-99-99", "", "wait 18446744073709551 seconds", "-0"])
            .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(key(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A text cut at any byte, with any byte replaced: valid input damaged.
fn damaged(text: String) -> impl Strategy<Value = Vec<u8>> {
    let len = text.len();
    (0..=len, any::<prop::sample::Index>(), any::<u8>(), any::<bool>()).prop_map(move |(cut, at, byte, replace)| {
        let mut bytes = text.clone().into_bytes();
        if replace && !bytes.is_empty() {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        } else {
            bytes.truncate(cut);
        }
        bytes
    })
}

/// `[[[…]]]` or `{"a":{"a":…}}`, `depth` deep.
fn nested(depth: usize, object: bool) -> String {
    if object { format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)) } else { format!("{}{}", "[".repeat(depth), "]".repeat(depth)) }
}

// DDP frames and EJSON values.

fn ddp_frame() -> impl Strategy<Value = Value> {
    let kinds = prop::sample::select(vec![
        "connected", "failed", "ping", "pong", "result", "ready", "nosub", "changed", "error", "added", "updated", "",
    ]);
    (kinds, btree_map(key(), json_value(), 0..6)).prop_map(|(kind, fields)| {
        let mut frame: serde_json::Map<String, Value> = fields.into_iter().collect();
        frame.insert("msg".to_owned(), Value::from(kind));
        Value::Object(frame)
    })
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn any_text_is_a_ddp_frame_or_a_typed_error(text in ".{0,200}") {
        let _ = ddp::parse(&text);
    }

    #[test]
    fn any_bytes_go_through_the_chat_watcher_without_panicking(data in vec(any::<u8>(), 0..400)) {
        fuzzing::ddp_frames(&data);
    }
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn frames_with_mutated_fields_are_a_frame_or_a_typed_error(frame in ddp_frame()) {
        let text = frame.to_string();
        let parsed = ddp::parse(&text);
        if let Ok(Some(ServerFrame::Result { error: Some(e), .. } | ServerFrame::Nosub { error: Some(e), .. })) = &parsed {
            let _ = (e.code(), e.describe(), e.rate_limit());
        }
        fuzzing::ddp_frames(text.as_bytes());
    }

    #[test]
    fn damaged_frames_are_a_frame_or_a_typed_error(bytes in ddp_frame().prop_flat_map(|f| damaged(f.to_string()))) {
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = ddp::parse(text);
        }
        fuzzing::ddp_frames(&bytes);
    }

    #[test]
    fn stream_events_with_mutated_records_reach_the_watcher_without_panicking(
        event in prop::sample::select(vec!["u1/subscriptions-changed", "u1/rooms-changed", "u1/notification", "u1/message"]),
        action in prop::sample::select(vec!["inserted", "updated", "removed", ""]),
        records in vec(json_value(), 0..4),
    ) {
        // Subscriptions first, so that room changes and notifications find
        // rooms to be judged against.
        let sub = json!({"msg": "changed", "collection": "stream-notify-user", "fields": {"eventName": "u1/subscriptions-changed",
            "args": ["inserted", {"_id": "s1", "rid": "R", "name": "general", "t": "c", "open": true, "unread": 1}]}});
        let mut frames = vec![sub.to_string()];
        for record in records {
            let args = if event.ends_with("notification") { json!([record]) } else { json!([action, record]) };
            frames.push(json!({"msg": "changed", "collection": "stream-notify-user", "fields": {"eventName": event, "args": args}}).to_string());
        }
        fuzzing::ddp_frames(frames.join("\n").as_bytes());
    }

    #[test]
    fn a_rate_limited_call_gives_a_wait_for_any_number_it_names(
        ms in number(),
        seconds in prop_oneof![any::<u64>().prop_map(|n| n.to_string()), ".{0,12}"],
    ) {
        let error = MeteorError {
            error: json!("too-many-requests"),
            reason: Some(format!("Error, too many requests. Please slow down. You must wait {seconds} seconds before trying again.")),
            message: None,
            details: Some(json!({ "timeToReset": ms })),
        };
        prop_assert!(error.rate_limit().is_some());
    }

    #[test]
    fn an_ejson_date_of_any_value_is_a_date_or_refused(value in json_value(), wrap in 0usize..4) {
        let mut value = value;
        for _ in 0..wrap {
            value = json!({ "$date": value });
        }
        if let Some(t) = wire::parse_date(&value) {
            let _ = Date(t).iso();
        }
        let _ = serde_json::from_value::<Date>(value);
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    for depth in [100, 129, 10_000, 200_000] {
        for object in [false, true] {
            let frame = format!("{{\"msg\":\"changed\",\"fields\":{{\"args\":[{}]}}}}", nested(depth, object));
            let parsed = ddp::parse(&frame);
            // serde_json stops at 128 levels, with an error.
            assert_eq!(parsed.is_err(), depth > 120, "depth {depth}: {parsed:?}");
            fuzzing::ddp_frames(frame.as_bytes());
            fuzzing::rocketchat_rest(nested(depth, object).as_bytes());
            fuzzing::leantime_batch(format!("\u{0}\u{1}\n{}", nested(depth, object)).as_bytes());
        }
    }
}

#[test]
fn a_rate_limit_wait_too_long_to_multiply_is_a_wait_not_a_panic() {
    let error = MeteorError {
        error: json!("too-many-requests"),
        reason: Some("You must wait 18446744073709552 seconds before trying again.".to_owned()),
        ..MeteorError::default()
    };
    assert_eq!(error.rate_limit(), Some(Duration::from_millis(u64::MAX)));
}

// Rocket.Chat's REST bodies.

/// A record with the fields of a subscription, room or message, mutated.
fn record() -> impl Strategy<Value = Value> {
    btree_map(key(), json_value(), 0..6).prop_map(|fields| {
        let mut record = json!({"_id": "s1", "rid": "R", "name": "general", "t": "c", "msg": "hi", "ts": {"$date": 1}});
        for (k, v) in fields {
            record[k] = v;
        }
        record
    })
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn any_rest_answer_is_a_body_or_a_typed_error(
        status in prop_oneof![3 => Just(200u16), 1 => Just(401), 1 => Just(429), 1 => any::<u16>()],
        reset in prop::option::of(prop_oneof![any::<i64>().prop_map(|n| n.to_string()), ".{0,12}"]),
        body in prop_oneof![vec(any::<u8>(), 0..200), json_value().prop_map(|v| v.to_string().into_bytes())],
    ) {
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let now = jiff::Timestamp::now();
        match rest::classify("x", status, reset.as_deref(), json, now) {
            Ok(body) => {
                prop_assert!((200..300).contains(&status));
                let _ = (rest::subscription_delta(&body), rest::rooms(&body), rest::synced_messages(&body));
                let _ = (rest::room_of_message(&body, "M"), rest::me(body));
            }
            Err(RestError::RateLimited(wait)) => {
                prop_assert_eq!(status, 429);
                prop_assert!(wait >= Duration::from_secs(1));
            }
            Err(RestError::Unauthorized(_)) => prop_assert_eq!(status, 401),
            Err(_) => {}
        }
        let mut data = vec![0u8];
        data.extend_from_slice(reset.unwrap_or_default().replace('\n', " ").as_bytes());
        data.push(b'\n');
        data.extend_from_slice(&body);
        fuzzing::rocketchat_rest(&data);
    }

    #[test]
    fn a_rate_limit_reset_of_any_number_gives_a_wait_of_a_second_or_more(reset in any::<i64>(), now in any::<i64>()) {
        let now = jiff::Timestamp::from_millisecond(now % 253_402_207_200_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        prop_assert!(rest::rate_limit_wait(Some(&reset.to_string()), "", now) >= Duration::from_secs(1));
    }

    #[test]
    fn records_with_mutated_fields_are_read_or_refused_typed(records in vec(record(), 0..3)) {
        let body = json!({"update": records, "remove": records, "result": {"updated": records}, "message": records.first()});
        if let Ok(delta) = rest::subscription_delta(&body) {
            for sub in &delta.update {
                let _ = (sub.display_name(), sub.counts_for_badge(), sub.is_silenced(), sub.updated_at.map(Date::iso));
            }
        }
        if let Ok(messages) = rest::synced_messages(&body) {
            for message in &messages {
                prop_assert!(!message.preview().contains('\n'));
            }
        }
        let _ = (rest::rooms(&body), rest::room_of_message(&body, "M"));
    }
}

#[test]
fn a_rate_limit_reset_too_far_in_the_past_to_subtract_is_a_short_wait() {
    let now = jiff::Timestamp::from_millisecond(1_714_557_612_321).expect("time");
    assert_eq!(rest::rate_limit_wait(Some("-9223372036854775808"), "", now), Duration::from_secs(1));
}

// Leantime's JSON-RPC answers.

fn envelope() -> impl Strategy<Value = Value> {
    let id = prop_oneof![number(), Just(Value::Null), "[0-9]{1,3}".prop_map(Value::String), ".{0,4}".prop_map(Value::String)];
    let error = prop_oneof![
        Just(Value::Null),
        (number(), ".{0,16}", json_value()).prop_map(|(code, message, data)| json!({"code": code, "message": message, "data": data})),
        json_value(),
    ];
    (id, json_value(), error, any::<bool>()).prop_map(|(id, result, error, with_result)| {
        let mut e = json!({"jsonrpc": "2.0", "id": id});
        if with_result {
            e["result"] = result;
        }
        if !error.is_null() {
            e["error"] = error;
        }
        e
    })
}

fn leantime_status() -> impl Strategy<Value = u16> {
    prop_oneof![3 => Just(200u16), 1 => Just(401), 1 => Just(429), 1 => any::<u16>()]
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn any_answer_to_a_batch_is_one_result_per_call_or_a_typed_error(
        status in leantime_status(),
        retry_after in prop::option::of(prop_oneof![any::<u64>().prop_map(|n| n.to_string()), ".{0,12}"]),
        body in prop_oneof![".{0,200}", vec(envelope(), 0..5).prop_map(|b| Value::Array(b).to_string()), envelope().prop_map(|e| e.to_string())],
        n in 0usize..5,
    ) {
        match parse_batch(status, retry_after.as_deref(), &body, n) {
            Ok(results) => prop_assert_eq!(results.len(), n),
            Err(RequestError::RateLimited { .. } | RequestError::TooManyFailedSignIns) => prop_assert_eq!(status, 429),
            Err(_) => {}
        }
    }

    #[test]
    fn any_bytes_go_through_the_tasks_watcher_without_panicking(data in vec(any::<u8>(), 0..400)) {
        fuzzing::leantime_batch(&data);
    }

    #[test]
    fn mutated_answers_to_a_poll_reach_the_watcher_without_panicking(
        shape in any::<u8>(),
        answers in vec(envelope(), 0..4),
        rows in vec(btree_map(key(), json_value(), 0..6).prop_map(|m| Value::Object(m.into_iter().collect())), 0..3),
    ) {
        let mut answers = answers;
        // One well-formed answer at each position, holding mutated rows.
        for (i, answer) in answers.iter_mut().enumerate() {
            answer["id"] = json!(i);
            answer["result"] = Value::Array(rows.clone());
        }
        let mut data = vec![0u8, shape | 1, b'\n'];
        data.extend_from_slice(Value::Array(answers).to_string().as_bytes());
        fuzzing::leantime_batch(&data);
    }
}

#[test]
fn a_retry_after_of_any_length_is_honoured_without_overflowing_the_clock() {
    let answer = parse_batch(429, Some("18446744073709551615"), "{}", 1);
    let Err(RequestError::RateLimited { retry_after }) = answer else { panic!("rate limited: {answer:?}") };
    let now = tokio::time::Instant::now();
    let mut schedule = Schedule::new(ScheduleConfig::polling(Duration::from_secs(60)), now);
    let until = schedule.failed(now, Some(retry_after));
    assert!(until >= now + Duration::from_secs(86_400 * 30), "a wait that long is still a long wait");
}

// IMAP headers, previews and folder names.

fn charset() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "UTF-8", "utf-8", "ISO-8859-1", "iso-8859-15", "windows-1252", "KOI8-R", "Shift_JIS", "GB2312", "Big5",
            "EUC-KR", "UTF-7", "UTF-16", "x-unknown", "", "utf-8*fr", "us-ascii",
        ])
        .prop_map(str::to_owned),
        "[A-Za-z0-9_*-]{0,20}",
    ]
}

/// An RFC 2047 encoded word, well formed or not.
fn encoded_word() -> impl Strategy<Value = String> {
    let payload = prop_oneof!["[ -~]{0,30}", "[A-Za-z0-9+/=]{0,40}", vec(any::<u8>(), 0..20).prop_map(|b| b.iter().map(|x| format!("={x:02X}")).collect())];
    (charset(), prop::sample::select(vec!["B", "Q", "b", "q", "X", ""]), payload)
        .prop_map(|(charset, encoding, payload)| format!("=?{charset}?{encoding}?{payload}?="))
}

fn header_value() -> impl Strategy<Value = String> {
    vec(prop_oneof![2 => encoded_word(), 1 => "[ -~]{0,12}", 1 => ".{0,6}"], 0..5).prop_map(|parts| parts.join(" "))
}

/// A header with mutated values, and a body that may be a multipart cut
/// short anywhere.
fn message() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let boundary = prop_oneof!["[A-Za-z0-9'()+_,./:=?-]{1,20}", ".{0,8}"];
    let encoding = prop::sample::select(vec!["base64", "quoted-printable", "8bit", "7bit", "binary", "x-bogus", ""]);
    (
        header_value(),
        header_value(),
        "[ -~]{0,40}",
        boundary,
        prop::option::of(charset()),
        encoding,
        vec(any::<u8>(), 0..300),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|(from, subject, date, boundary, charset, encoding, part, cut, multipart)| {
            let mut header = format!("From: {from} <a@example.test>\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{date}>\r\nMIME-Version: 1.0\r\n");
            let part_head = format!(
                "Content-Type: text/plain; charset=\"{}\"\r\nContent-Transfer-Encoding: {encoding}\r\n",
                charset.unwrap_or_default()
            );
            let mut body = Vec::new();
            if multipart {
                header.push_str(&format!("Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"));
                body.extend_from_slice(format!("--{boundary}\r\n{part_head}\r\n").as_bytes());
                body.extend_from_slice(&part);
                body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--{boundary}--\r\n").as_bytes());
            } else {
                header.push_str(&part_head);
                header.push_str("\r\n");
                body.extend_from_slice(&part);
            }
            let cut = cut.index(body.len() + 1);
            body.truncate(cut);
            (header.into_bytes(), body)
        })
}

fn assert_sane(summary: &vigie::imap::message::Summary) -> Result<(), TestCaseError> {
    prop_assert!(summary.preview.chars().count() <= PREVIEW_CHARS);
    for line in [&summary.sender, &summary.subject, &summary.preview] {
        prop_assert!(!line.contains(['\r', '\n']), "one line: {:?}", line);
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn any_header_and_text_give_a_one_line_summary(header in vec(any::<u8>(), 0..600), text in vec(any::<u8>(), 0..300)) {
        assert_sane(&summarize(&header, &text))?;
    }

    #[test]
    fn mutated_headers_and_cut_mime_give_a_one_line_summary((header, body) in message()) {
        assert_sane(&summarize(&header, &body))?;
        let mut data = u16::try_from(header.len()).unwrap_or(u16::MAX).to_be_bytes().to_vec();
        data.extend_from_slice(&header);
        data.extend_from_slice(&body);
        fuzzing::imap_message(&data);
    }

    #[test]
    fn damaged_headers_give_a_one_line_summary(bytes in message().prop_flat_map(|(h, b)| damaged(String::from_utf8_lossy(&[h, b].concat()).into_owned()))) {
        let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").map_or(bytes.len(), |at| at + 4);
        assert_sane(&summarize(&bytes[..split], &bytes[split..]))?;
    }

    #[test]
    fn any_folder_name_decodes_or_is_refused(wire in ".{0,40}") {
        let _ = mutf7::decode(&wire);
    }

    #[test]
    fn every_folder_name_reads_back_as_it_was_written(name in "\\PC{0,30}") {
        prop_assert_eq!(mutf7::decode(&mutf7::encode(&name)), Some(name));
    }
}

// The config file and its editor.

/// A TOML scalar of any type, at and past every limit.
fn toml_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        prop::sample::select(vec!["9223372036854775807", "-9223372036854775808", "18446744073709551616", "0", "-1", "1e400", "nan", "inf", "-inf", "0.01", "true", "[]", "{}", "\"\"", "1979-05-27T07:32:00Z"]).prop_map(str::to_owned),
        "[ -~&&[^\"\\\\]]{0,12}".prop_map(|s| format!("\"{s}\"")),
        prop::sample::select(vec!["\"mail\"", "\"chat\"", "\"tasks\"", "\"count\"", "\"dot\"", "\"ignore\"", "\"api-key\"", "\"starttls\"", "\"22:00\"", "\"24:61\"", "\"-1:-1\"", "\"https://x.example\"", "\"http://[::1\""]).prop_map(str::to_owned),
    ]
}

fn config_text() -> impl Strategy<Value = String> {
    let field = prop::sample::select(vec![
        "id", "name", "source", "enabled", "badge", "poll_interval_secs", "server", "username", "auth", "port", "tls",
        "folders", "previews", "burst_threshold", "every_secs", "from", "to", "start_hidden", "user_id", "assigned_tasks",
        "requests_per_minute", "open_in", "sender_contains", "refresh",
    ]);
    let table = prop::sample::select(vec![
        "[[account]]", "[account.mail]", "[account.chat]", "[account.tasks]", "[account.chat.rooms]", "[notifications]",
        "[notifications.quiet_hours]", "[app]", "[demo]", "[[hint]]", "[account]",
    ]);
    let account = (0u32..3, prop::sample::select(vec!["mail", "chat", "tasks", "sms"]), prop::option::of(toml_scalar()))
        .prop_map(|(id, source, interval)| {
            let interval = interval.map(|v| format!("poll_interval_secs = {v}\n")).unwrap_or_default();
            format!("[[account]]\nid = \"a{id}\"\nsource = \"{source}\"\nserver = \"https://s.example\"\n{interval}")
        });
    let line = prop_oneof![
        3 => (field, toml_scalar()).prop_map(|(f, v)| format!("{f} = {v}\n")),
        1 => table.prop_map(|t| format!("{t}\n")),
        2 => account,
        1 => "[ -~]{0,20}\n",
    ];
    vec(line, 0..14).prop_map(|lines| lines.concat())
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn any_text_is_a_config_or_a_typed_error(text in prop_oneof![".{0,300}", config_text()]) {
        match Config::parse(Path::new("config.toml"), &text) {
            Ok(_) | Err(ConfigError::Parse { .. } | ConfigError::Invalid { .. }) => {}
            Err(other) => prop_assert!(false, "parsing text gave {other:?}"),
        }
    }

    #[test]
    fn the_editor_takes_any_file_and_writes_back_what_it_reads(text in prop_oneof![".{0,300}", config_text()]) {
        fuzzing::config_file(text.as_bytes());
    }

    #[test]
    fn any_bytes_go_through_the_config_reader_and_editor(data in vec(any::<u8>(), 0..300)) {
        fuzzing::config_file(&data);
    }
}

#[test]
fn a_poll_interval_too_long_for_the_clock_is_refused() {
    for secs in ["86401", "9223372036854775807"] {
        let text = format!("[[account]]\nid = \"pm\"\nsource = \"tasks\"\nserver = \"https://pm.example\"\npoll_interval_secs = {secs}\n");
        let refused = Config::parse(Path::new("config.toml"), &text);
        assert!(matches!(refused, Err(ConfigError::Invalid { field: "poll_interval_secs", line: 5, .. })), "{secs}: {refused:?}");
    }
}
