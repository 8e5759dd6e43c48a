-- Issue 20: an app's own prefilled texts for reverse verification, per language (one
-- `language=text` line each; texts hold no control characters), and the optional text reply
-- sent after a reverse verification succeeds (NULL: only the free reaction).
ALTER TABLE apps ADD COLUMN reverse_texts TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN reverse_reply TEXT;
