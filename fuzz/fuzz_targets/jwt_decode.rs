//! Token strings through `Jwt::decode` and `Jwt::verify_access`, with the validation
//! the stack uses (HS256 from the keyring, issuer, audience, expiry, key id).
//!
//! Properties: nothing panics; a token that decodes is exactly the token signing its
//! claims gives (no other spelling of a header, payload or signature verifies); a
//! token that `verify_access` accepts is an access token that also decodes.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use portcullis::jwt::{Claims, Jwt, JwtConfig, JwtKeys, MemoryRevocationStore, TokenType};
use portcullis_fuzz::{keyring, runtime, write_seeds};

fn jwt() -> &'static Jwt {
    static JWT: OnceLock<Jwt> = OnceLock::new();
    JWT.get_or_init(|| {
        let jwt = Jwt::new(
            JwtConfig::default(),
            JwtKeys::from_keyring(&keyring()),
            Arc::new(MemoryRevocationStore::default()),
        );
        // Tokens that verify for decades, signed with the fixed key.
        let pair = runtime().block_on(jwt.issue(42)).unwrap();
        let mut seeds = Vec::new();
        for token in [&pair.access_token, &pair.refresh_token] {
            let mut claims = jwt.decode(token).unwrap();
            claims.exp = 4_000_000_000;
            seeds.push(jwt.sign_claims(&claims).unwrap().into_bytes());
            claims.exp = 1;
            seeds.push(jwt.sign_claims(&claims).unwrap().into_bytes());
        }
        write_seeds("jwt_decode", &seeds);
        jwt
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let jwt = jwt();
    let decoded: Option<Claims> = jwt.decode(token).ok();
    if let Some(claims) = &decoded {
        assert_eq!(
            jwt.sign_claims(claims).unwrap(),
            token,
            "a second spelling of a token verifies"
        );
    }
    if let Ok(claims) = runtime().block_on(jwt.verify_access(token)) {
        assert_eq!(claims.typ, TokenType::Access);
        assert!(
            decoded.is_some(),
            "verify_access accepted what decode refuses"
        );
    }
});
