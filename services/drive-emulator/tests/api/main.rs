//! HTTP tests of the emulator: a real server on 127.0.0.1:0 per test, driven with reqwest.

mod drives;
mod exports;
mod faults;
mod files;
mod helpers;
mod oauth;
mod query;
mod storage;
mod uploads;
