-- A trade as the API answers it: the trade_details view without network_id.
-- PL/pgSQL, not SQL: a SQL-language function called from PL/pgSQL is planned again at every
-- call, which cost a quarter of a trade's time; PL/pgSQL keeps its plans.
CREATE FUNCTION mc_trade_json(p_trade_id uuid) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT to_jsonb(d) - 'network_id' FROM trade_details d WHERE d.id = p_trade_id);
END $$;
