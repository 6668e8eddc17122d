-- 0002_request_blobs: requests stored once per distinct part.
--
-- Agents resend the whole conversation with every request, so keeping each
-- request as sent grows with the square of a session's length. From this
-- version the writer keeps each distinct part of a request (a message, a
-- tool, a piece of a long prompt) once in `blobs`, and the turn keeps a small
-- tree of references to them (src/compact.rs describes the format).
--
-- `turns.request_encoding` says how `turns.request_json` is read:
--   0  the request as sent, possibly not JSON (every turn recorded before
--      this version, and requests that are not JSON objects)
--   1  a compact node whose blob references rebuild the request.
-- Adding a column with a constant default rewrites no row, so upgrading a
-- large store is instant; its old turns are simply read as they were.

CREATE TABLE blobs (
    id       INTEGER PRIMARY KEY,
    -- SHA-256 of the JSON text this blob stands for.
    hash     BLOB    NOT NULL UNIQUE CHECK (length(hash) = 32),
    -- 0: body is that JSON text; 1: body is a node referring to other blobs.
    encoding INTEGER NOT NULL,
    body     TEXT    NOT NULL
) STRICT;

ALTER TABLE turns ADD COLUMN request_encoding INTEGER NOT NULL DEFAULT 0;
