-- Read model used by every function that answers with a trade.
CREATE VIEW trade_details AS
SELECT t.id, t.network_id, t.key, payer.code AS payer, payee.code AS payee, t.amount, t.status,
       t.posted_amount, t.description, t.external_ref, t.metadata, t.reverses_trade_id,
       t.kind, t.reason, t.limit_override, t.created_by, t.expires_at, t.created_at, t.resolved_at,
       (SELECT r.id FROM trades r WHERE r.reverses_trade_id = t.id) AS reversed_by
FROM trades t
JOIN accounts payer ON payer.id = t.payer_id
JOIN accounts payee ON payee.id = t.payee_id;
