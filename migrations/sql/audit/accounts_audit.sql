-- Balances move with trades, which have their own records: only the account's settings here.
-- The columns named are all the others, so a booking (which sets balances and holds only) never
-- runs this trigger, and any other change of an account does.
CREATE TRIGGER accounts_audit
    AFTER INSERT
          OR UPDATE OF id, network_id, code, name, kind, status, credit_limit, balance_max,
                       revert_at, revert_credit_limit, revert_balance_max, created_at
    ON accounts
    FOR EACH ROW EXECUTE FUNCTION mc_audit_change(
        'balance', 'pending_debits', 'pending_credits');
