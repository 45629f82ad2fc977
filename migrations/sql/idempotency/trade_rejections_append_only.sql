-- A trade key is booked at most once per network, and a refusal stays a refusal: the recorded
-- refusals (trade_rejections, keyed like trades) are never changed or removed, so a retry with the
-- same key always finds the first outcome. The rest of the rule is in booking/mc_create_trade.sql
-- (the advisory lock per key, the replay) and the unique keys of the migration.
CREATE TRIGGER trade_rejections_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON trade_rejections
    FOR EACH STATEMENT EXECUTE FUNCTION mc_refuse_change();
