DROP TABLE document_tabs;
ALTER TABLE file_versions DROP COLUMN described_at;
ALTER TABLE file_versions DROP COLUMN image_refusal;
ALTER TABLE file_versions DROP COLUMN image;
DROP INDEX files_blob_idx;
DROP INDEX file_versions_blob_idx;
