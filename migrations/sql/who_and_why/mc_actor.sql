-- Who and why. The service sets these transaction-local settings for every write; the history
-- and audit triggers read them, so that history records the actor and reason of any change, even
-- one made by direct SQL (whose actor is then the database user).
--
-- The actor: `mutualcredit.actor` (`role:key_id` of an API key, `peer:<network>` of a signed
-- request, `system:<job>`, or what a transaction outside any request names itself, such as the
-- command line's `cli:<command>`), else `sql:<session user>`.
CREATE FUNCTION mc_actor() RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce(nullif(current_setting('mutualcredit.actor', true), ''), 'sql:' || session_user);
END $$;
