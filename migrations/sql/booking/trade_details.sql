-- Read model used by every function that answers with a trade.
CREATE VIEW trade_details AS
SELECT t.id, t.network_id, t.key, payer.code AS payer, payee.code AS payee, t.amount, t.status,
       t.posted_amount, t.description, t.external_ref, t.metadata, t.reverses_trade_id,
       t.kind, t.reason, t.limit_override, t.created_by, t.expires_at, t.created_at, t.resolved_at,
       (SELECT r.id FROM trades r WHERE r.reverses_trade_id = t.id) AS reversed_by,
       CASE WHEN t.kind IN ('transfer', 'request') THEN coalesce(
           (SELECT jsonb_agg(jsonb_build_object('rule', fr.code, 'account', fa.code,
                                                'amount', fc.amount, 'trade_id', fc.trade_id,
                                                'past_limit', fc.past_limit) ORDER BY fc.id)
            FROM fee_charges fc
            JOIN fee_rules fr ON fr.id = fc.rule_id
            JOIN accounts fa ON fa.id = fc.account_id
            WHERE fc.cause_trade_id = t.id), '[]'::jsonb)
       ELSE '[]'::jsonb END AS fees,
       CASE WHEN t.kind = 'fee' THEN
           (SELECT jsonb_build_object('rule', fr.code, 'kind', fr.kind,
                                      'cause_trade_id', fc.cause_trade_id, 'due_at', fc.due_at)
            FROM fee_charges fc JOIN fee_rules fr ON fr.id = fc.rule_id
            WHERE fc.trade_id = t.id) END AS fee
FROM trades t
JOIN accounts payer ON payer.id = t.payer_id
JOIN accounts payee ON payee.id = t.payee_id;
