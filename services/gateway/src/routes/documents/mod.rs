//! The documents API (seed 004): the store as one tree of drive items, under
//! `/internal/services/documents/v1/companies/{company_id}`, where the company is the caller's tenant. Also
//! `GET /api/v2/me`, which tells a client its tenant (company) id.

pub mod access;
pub mod download;
pub mod dto;
pub mod handlers;

pub use handlers::*;
