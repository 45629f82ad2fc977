-- A peer's key is on record for good: never deleted, and what it is (the link, the id, the
-- public key, when it was registered) never changes. Its expiry, once the peer has rotated it
-- away, only comes closer: no later notice, replayed or forged, and no operator's registration
-- can make a retired key trusted again (a new key needs a new id).
CREATE FUNCTION mc_peer_keys_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       OR (NEW.link_id, NEW.key_id, NEW.public_key, NEW.created_at)
          IS DISTINCT FROM (OLD.link_id, OLD.key_id, OLD.public_key, OLD.created_at)
       OR (OLD.expires_at IS NOT NULL
           AND (NEW.expires_at IS NULL OR NEW.expires_at > OLD.expires_at)) THEN
        RAISE EXCEPTION 'key % of a peer is on record for good, and its expiry only comes closer',
            OLD.key_id
            USING ERRCODE = 'restrict_violation', TABLE = 'link_peer_keys',
                  CONSTRAINT = 'link_peer_keys_guard';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END $$;
