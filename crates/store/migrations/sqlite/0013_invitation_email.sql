-- An invitation may be for one e-mail address: only that address can accept it.
ALTER TABLE links ADD COLUMN email TEXT;
