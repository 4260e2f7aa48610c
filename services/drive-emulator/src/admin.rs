//! The admin API under `/__emulator/`: fault injection, counters, revoking a user's tokens.
//!
//! Plain JSON, no authentication (the emulator is a local test tool). Errors are `{"error": "..."}` with 400.

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use crate::faults::Faults;
use crate::state::EmulatorState;

fn bad_request(message: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": message.to_string() }))
}

/// RFC 7386 merge patch: objects merge key by key, `null` removes (back to the default), anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// `GET /__emulator/faults`
pub async fn get_faults(state: web::Data<EmulatorState>) -> HttpResponse {
    HttpResponse::Ok().json(state.faults())
}

fn apply(state: &EmulatorState, faults: Faults) -> HttpResponse {
    match state.set_faults(faults.clone()) {
        Ok(()) => HttpResponse::Ok().json(faults),
        Err(e) => bad_request(e),
    }
}

/// `PUT /__emulator/faults`: replaces the whole configuration (absent fields = off).
pub async fn put_faults(state: web::Data<EmulatorState>, body: web::Bytes) -> HttpResponse {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(faults) => apply(&state, faults),
        Err(e) => bad_request(e),
    }
}

/// `PATCH /__emulator/faults`: a JSON merge patch on the current configuration.
pub async fn patch_faults(state: web::Data<EmulatorState>, body: web::Bytes) -> HttpResponse {
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return bad_request("expected a JSON object"),
        Err(e) => return bad_request(e),
    };
    let mut current = match serde_json::to_value(state.faults()) {
        Ok(v) => v,
        Err(e) => return bad_request(e),
    };
    merge(&mut current, &patch);
    match serde_json::from_value::<Faults>(current) {
        Ok(faults) => apply(&state, faults),
        Err(e) => bad_request(e),
    }
}

/// `DELETE /__emulator/faults`: back to no faults.
pub async fn clear_faults(state: web::Data<EmulatorState>) -> HttpResponse {
    apply(&state, Faults::default())
}

/// `GET /__emulator/oauth`: `{"auto_approve": bool}`.
pub async fn get_oauth(state: web::Data<EmulatorState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "auto_approve": state.auto_approve() }))
}

/// `PATCH /__emulator/oauth` with `{"auto_approve": false}` shows the consent page from now on.
pub async fn patch_oauth(state: web::Data<EmulatorState>, body: web::Bytes) -> HttpResponse {
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(e),
    };
    match patch.get("auto_approve") {
        Some(Value::Bool(on)) => state.set_auto_approve(*on),
        Some(_) => return bad_request("auto_approve must be a boolean"),
        None => {}
    }
    HttpResponse::Ok().json(json!({ "auto_approve": state.auto_approve() }))
}

/// `GET /__emulator/counters`
pub async fn get_counters(state: web::Data<EmulatorState>) -> HttpResponse {
    HttpResponse::Ok().json(state.counters())
}

/// `DELETE /__emulator/counters`: zeroes counters and the daily upload/download usage.
pub async fn reset_counters(state: web::Data<EmulatorState>) -> HttpResponse {
    state.reset_counters();
    HttpResponse::NoContent().finish()
}

/// `POST /__emulator/users/{email}/revoke`: every grant of the user dies (like revoking access in Google's UI).
pub async fn revoke_user(state: web::Data<EmulatorState>, email: web::Path<String>) -> HttpResponse {
    let revoked = state.revoke_user_tokens(&email);
    HttpResponse::Ok().json(json!({ "email": email.into_inner(), "revoked_grants": revoked }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch() {
        let mut v = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge(&mut v, &json!({"a": null, "b": {"c": 5}, "e": 6}));
        assert_eq!(v, json!({"b": {"c": 5, "d": 3}, "e": 6}));
    }
}
