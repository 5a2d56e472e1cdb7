//! Signing in to Rocket.Chat with a user name and password, two-factor code
//! included, against the fake server of each generation: the settings
//! window's path to a token in the keyring.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use vigie::model::AccountId;
use vigie::rocketchat::TOKEN_SECRET;
use vigie::rocketchat::login::{SignIn, SignInError, sign_in_and_store};
use vigie::secrets::{MemorySecrets, SecretStore};

use crate::support::fake_rocketchat::{ALICE, CODE, FakeRocketChat, Generation, PASSWORD, TOKEN};

const GENERATIONS: [Generation; 3] = [Generation::V6, Generation::V7, Generation::V8];

fn stored(secrets: &MemorySecrets) -> Option<String> {
    secrets.get(&AccountId::new("chat"), TOKEN_SECRET).expect("read").map(|s| s.expose_secret().to_owned())
}

async fn sign_in(fake: &FakeRocketChat, secrets: &Arc<MemorySecrets>, password: &str, code: Option<&str>) -> Result<SignIn, SignInError> {
    let store: Arc<dyn SecretStore> = secrets.clone();
    sign_in_and_store(store, &AccountId::new("chat"), &fake.base_url(), "alice", &SecretString::from(password.to_owned()), code).await
}

#[tokio::test]
async fn a_password_sign_in_stores_the_token_and_names_the_user() {
    for generation in GENERATIONS {
        let fake = FakeRocketChat::start(generation).await.expect("the fake Rocket.Chat starts");
        let secrets = Arc::new(MemorySecrets::default());
        let outcome = sign_in(&fake, &secrets, PASSWORD, None).await;
        assert_eq!(outcome, Ok(SignIn::Done { user_id: ALICE.to_owned() }), "{generation:?}");
        assert_eq!(stored(&secrets).as_deref(), Some(TOKEN), "{generation:?}");
    }
}

#[tokio::test]
async fn two_factor_sign_in_asks_for_the_code_then_stores_the_token() {
    for generation in GENERATIONS {
        let fake = FakeRocketChat::start(generation).await.expect("the fake Rocket.Chat starts");
        fake.require_2fa();
        let secrets = Arc::new(MemorySecrets::default());
        let first = sign_in(&fake, &secrets, PASSWORD, None).await;
        assert_eq!(first, Ok(SignIn::CodeRequired { method: "totp".to_owned() }), "{generation:?}");
        assert_eq!(stored(&secrets), None, "nothing stored before the code");
        let wrong = sign_in(&fake, &secrets, PASSWORD, Some("000000")).await;
        assert_eq!(wrong, Err(SignInError::CodeInvalid { method: "totp".to_owned() }), "{generation:?}");
        let second = sign_in(&fake, &secrets, PASSWORD, Some(CODE)).await;
        assert_eq!(second, Ok(SignIn::Done { user_id: ALICE.to_owned() }), "{generation:?}");
        assert_eq!(stored(&secrets).as_deref(), Some(TOKEN));
        let body = fake.requests().last().expect("a request").body.clone();
        assert!(body.contains("\"code\":\"123456\""), "the code goes in the body: {body}");
    }
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_the_servers_words_and_stores_nothing() {
    for generation in GENERATIONS {
        let fake = FakeRocketChat::start(generation).await.expect("the fake Rocket.Chat starts");
        let secrets = Arc::new(MemorySecrets::default());
        let outcome = sign_in(&fake, &secrets, "hunter2", None).await;
        let Err(SignInError::BadCredentials(words)) = &outcome else { panic!("{generation:?}: {outcome:?}") };
        assert!(words.eq_ignore_ascii_case("unauthorized"), "{generation:?}: {words}");
        assert!(!outcome.as_ref().expect_err("refused").to_string().contains("hunter2"), "the password never shows");
        assert_eq!(stored(&secrets), None);
    }
}

#[tokio::test]
async fn an_e_mailed_code_is_asked_for_by_its_method() {
    let fake = FakeRocketChat::start(Generation::V7).await.expect("the fake Rocket.Chat starts");
    fake.require_2fa_by_email();
    let secrets = Arc::new(MemorySecrets::default());
    let first = sign_in(&fake, &secrets, PASSWORD, None).await;
    assert_eq!(first, Ok(SignIn::CodeRequired { method: "email".to_owned() }));
    let second = sign_in(&fake, &secrets, PASSWORD, Some(CODE)).await;
    assert_eq!(second, Ok(SignIn::Done { user_id: ALICE.to_owned() }));
    assert_eq!(stored(&secrets).as_deref(), Some(TOKEN));
}
