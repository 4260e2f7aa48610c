-- provider_metadata is the caller's JSON, kept as sent. `jsonb` refuses the escape \u0000 (its text type cannot
-- hold NUL), which made a valid JSON object a server error; `json` keeps the text and accepts it. Nothing
-- queries inside the value, so nothing needs jsonb's operators.
ALTER TABLE jobs ALTER COLUMN provider_metadata TYPE json USING provider_metadata::json;
