-- v1 -> v2: Display pictures and files (issue 11): the avatar cache, the media store's index, users' own display pictures
-- Times are Unix milliseconds (BIGINT), as in v1.

-- Contacts' display pictures, one row per content: every login that sees
-- the same picture shares it, so it is fetched over MSN once.
CREATE TABLE avatars (
    -- hex SHA-1 of data: the msnobj's SHA1D (base64) decoded; what the
    -- frontends see as Contact.Avatar
    hash       TEXT   NOT NULL PRIMARY KEY,
-- only: sqlite
    data       BLOB   NOT NULL,
-- only: postgres
    data       bytea  NOT NULL,
    mime       TEXT   NOT NULL,
    size       BIGINT NOT NULL,
    fetched_at BIGINT NOT NULL
);

-- The index of the media directory (bridge.files.dir): files received from
-- MSN and files on their way to it. The bytes live on disk, not here.
CREATE TABLE media (
    -- 128 random bits, hex: the capability frontends put in URLs
    id         TEXT   NOT NULL PRIMARY KEY,
    -- the bridge user the file was received for or sent by
    frontend   TEXT   NOT NULL DEFAULT '',
    user_id    TEXT   NOT NULL DEFAULT '',
    name       TEXT   NOT NULL,
    size       BIGINT NOT NULL,
    mime       TEXT   NOT NULL,
    -- the file's name inside the media directory, so that the directory
    -- can move
    path       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX media_created_idx ON media (created_at);

-- The user's own display picture (a 96x96 PNG the core made), applied at
-- every sign-in. Kept per user, not per login, so that it survives a
-- logout and a login with the same or another passport.
CREATE TABLE display_pictures (
    frontend   TEXT   NOT NULL,
    user_id    TEXT   NOT NULL,
-- only: sqlite
    data       BLOB   NOT NULL,
-- only: postgres
    data       bytea  NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (frontend, user_id),
    CONSTRAINT display_pictures_user_fkey FOREIGN KEY (frontend, user_id)
        REFERENCES users (frontend, user_id) ON DELETE CASCADE ON UPDATE CASCADE
);
