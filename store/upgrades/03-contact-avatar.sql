-- v2 -> v3: Each contact's last known display picture, so that a restart shows it before their presence arrives
-- Plain ALTER TABLE ADD COLUMN with a constant default: the same in both dialects.

-- hex SHA-1 of the picture the contact last showed (a hash in the avatars
-- table, what frontends see as Contact.Avatar), '' for none or not known
ALTER TABLE contacts ADD COLUMN avatar_hash TEXT NOT NULL DEFAULT '';
